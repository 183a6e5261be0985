"""Tests of the environment itself (scripts/fenicsx), run from outside the sandbox.

They need no FEniCSx on the host, only pytest: ``make test-sandbox`` (part of
``make test``) runs them with ``--confcutdir=tests/sandbox`` so that the MPI fixtures of
``tests/conftest.py`` are not loaded. The suite that runs inside the environment skips
this folder (``tests/conftest.py``: ``collect_ignore``).
"""

from __future__ import annotations

import os
import subprocess

import pytest

#: what scripts/fenicsx asks before it runs a command directly, without a sandbox
HOST_HAS_DOLFINX = """
import dolfinx
major, minor = (int(p) for p in dolfinx.__version__.split(".")[:2])
assert (major, minor) >= (0, 9)
"""


def pytest_collection_modifyitems(config, items):
    """Where the host has FEniCSx (the Docker image, your own install), scripts/fenicsx
    runs commands directly: there is no sandbox to test, so these tests are skipped."""
    if os.environ.get("FENICSX_FORCE_ROOT") == "1" or os.environ.get("FENICSX_SUITE"):
        return
    direct = subprocess.run(["python3", "-c", HOST_HAS_DOLFINX], capture_output=True).returncode == 0
    if direct:
        skip = pytest.mark.skip(reason="the host imports dolfinx: scripts/fenicsx runs commands directly, no sandbox")
        for item in items:
            item.add_marker(skip)
