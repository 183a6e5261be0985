"""Test helpers that work the same on one rank and under ``mpirun -n 2``.

- Only rank 0 reports; other ranks run quietly, and print their own failures (prefixed
  with the rank) at the end, so a failure on rank 1 alone is never invisible.
- Temporary directories are made on rank 0 and broadcast, so every rank uses the same one.
- ``serial`` tests (subprocesses, the CLI) are skipped under mpirun; ``parallel`` tests
  are skipped on one rank.
- Under mpirun, after each test the ranks agree whether it failed on any of them, so that
  ``-x`` (``--maxfail``) stops every rank together instead of leaving the others waiting in
  the next test's first collective.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from mpi4py import MPI

COMM = MPI.COMM_WORLD

#: tests of the environment run from outside it (make test-sandbox), not in here
collect_ignore = ["sandbox"]


_failures: list[tuple[str, str]] = []


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if COMM.rank > 0:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)


_failed_here: set[str] = set()


def pytest_runtest_logreport(report):
    if report.failed:
        _failed_here.add(report.nodeid)
    if COMM.rank > 0 and report.failed:
        _failures.append((f"{report.nodeid} ({report.when})", report.longreprtext))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield
    if COMM.size > 1:  # every rank runs every collected item's protocol once: a safe collective
        elsewhere = COMM.allreduce(int(item.nodeid in _failed_here)) > 0
        if elsewhere and item.config.option.maxfail and item.nodeid not in _failed_here:
            item.session.shouldstop = f"{item.nodeid} failed on another rank"


def pytest_sessionfinish(session, exitstatus):
    if COMM.rank > 0 and _failures:
        lines = [f"[rank {COMM.rank}] FAILED {name}\n{text}" for name, text in _failures]
        sys.stderr.write("\n".join(lines) + f"\n[rank {COMM.rank}] {len(_failures)} failed\n")
        sys.stderr.flush()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "serial" in item.keywords and COMM.size > 1:
            item.add_marker(pytest.mark.skip(reason="serial test: runs in the one-rank pass"))
        if "parallel" in item.keywords and COMM.size < 2:
            item.add_marker(pytest.mark.skip(reason="needs mpirun -n 2: runs in the MPI pass"))


@contextmanager
def shared_tmpdir(prefix: str):
    """A temporary directory made on rank 0, the same path on every rank, removed after."""
    path = Path(COMM.bcast(tempfile.mkdtemp(prefix=prefix) if COMM.rank == 0 else None, root=0))
    try:
        yield path
    finally:
        COMM.barrier()
        if COMM.rank == 0:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def mesh_dir():
    """One mesh cache for the whole session, the same directory on every rank."""
    with shared_tmpdir("overhauser-meshes-") as path:
        yield path


@pytest.fixture
def shared_tmp():
    """A fresh temporary directory, the same on every rank."""
    with shared_tmpdir("overhauser-test-") as path:
        yield path
