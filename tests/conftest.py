"""Test helpers that work the same on one rank and under ``mpirun -n 2``.

- Only rank 0 reports; other ranks run quietly, and print their own failures (prefixed
  with the rank) at the end, so a failure on rank 1 alone is never invisible.
- Temporary directories are made on rank 0 and broadcast, so every rank uses the same one.
- ``serial`` tests (subprocesses, the CLI) are skipped under mpirun; ``parallel`` tests
  are skipped on one rank.
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


def pytest_runtest_logreport(report):
    if COMM.rank > 0 and report.failed:
        _failures.append((f"{report.nodeid} ({report.when})", report.longreprtext))


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
