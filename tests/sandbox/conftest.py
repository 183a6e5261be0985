"""Tests of the environment itself (scripts/fenicsx), run from outside the sandbox.

They need no FEniCSx on the host, only pytest: ``make test-sandbox`` (part of
``make test``) runs them with ``--confcutdir=tests/sandbox`` so that the MPI fixtures of
``tests/conftest.py`` are not loaded. The suite that runs inside the environment skips
this folder (``tests/conftest.py``: ``collect_ignore``).
"""
