"""Writing results: rank 0 only, each file written to a temporary name and renamed.

A run that fails part-way never leaves a half-written CSV or JSON behind, and the
results of an earlier run stay as they were until the new ones are complete.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import os
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np


def atomic_write(path: str | Path, write, binary: bool = False) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_room(path: str | Path) -> None:
    """Before a cache entry is (re)written (rank 0's writers call this): an empty directory
    that took the entry's name is removed, with one line; a directory with contents is not
    ours to remove, so IsADirectoryError says which path to remove."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        if any(path.iterdir()):
            raise IsADirectoryError(f"cache entry {path} is a directory with contents, not a cache file: remove it "
                                    "and run again")  # fmt: skip
        path.rmdir()
        print(f"cache entry {path} was an empty directory: removed and rebuilt", flush=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(path: str | Path, columns: dict[str, np.ndarray]) -> None:
    """CSV with a one-line header of column names (quoted where they hold commas)."""
    names = list(columns)
    data = np.column_stack([np.asarray(columns[n], dtype=float) for n in names])

    def write(f):
        csv.writer(f, lineterminator="\n").writerow(names)
        np.savetxt(f, data, delimiter=",", fmt="%.10e")

    atomic_write(Path(path), write)


def write_table(path: str | Path, header: list[str], rows: list[list]) -> None:
    """CSV of rows that mix text and numbers (numbers with 10 significant digits)."""

    def cell(v):
        return f"{v:.10g}" if isinstance(v, float) else v

    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([[cell(v) for v in row] for row in rows])

    atomic_write(Path(path), write)


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Inverse of :func:`write_csv`."""
    with open(path, newline="") as f:
        names = next(csv.reader(f))
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {n: data[:, i] for i, n in enumerate(names)}


def write_json(path: str | Path, obj) -> None:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    atomic_write(Path(path), lambda f: json.dump(obj, f, indent=2, default=default, allow_nan=True))


def check_writable(directory: str | Path) -> str | None:
    """None if ``directory`` can be created and written to, else a one-line reason (rank 0)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe."):
            pass
    except OSError as exc:
        return f"--out: expected a writable directory, got {str(directory)!r} ({exc.strerror or exc})"
    return None


def check_creatable(directory: str | Path, key: str) -> str | None:
    """None if ``directory`` is a writable directory or could be made one, else a one-line
    reason naming ``key`` (rank 0). Unlike :func:`check_writable` it leaves nothing behind:
    a cache directory is only made by the run that writes into it."""
    directory = Path(directory)
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the deepest part of the path there already is
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"{key}: expected a writable directory, got {str(directory)!r} ({exc.strerror or exc})"
    return None


def versions() -> dict[str, str]:
    """Versions of the packages a result depends on.

    Collective the first time (it imports petsc4py.PETSc, which initialises PETSc): call it
    on every rank, never inside ``if rank == 0``.
    """
    out = {"python": platform.python_version()}
    for name, module in [
        ("fenics-dolfinx", "dolfinx"),
        ("petsc4py", "petsc4py"),
        ("mpi4py", "mpi4py"),
        ("gmsh", "gmsh"),
        ("numpy", "numpy"),
        ("scipy", "scipy"),
        ("pydantic", "pydantic"),
    ]:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            try:
                out[name] = str(__import__(module).__version__)
            except (ImportError, AttributeError):
                out[name] = "unknown"
    try:
        from petsc4py import PETSc

        out["petsc"] = ".".join(str(v) for v in PETSc.Sys.getVersion())
    except ImportError:
        pass
    return out


#: the lock a run holds on its output directory for as long as it runs (rank 0)
LOCK_NAME = ".overhauser.lock"
_held_locks: list = []


def lock_output(directory: str | Path) -> str | None:
    """Hold an exclusive lock on ``directory`` until the process ends; None, or a one-line
    reason if another run holds it (rank 0 only). The kernel releases it however the
    holder ends, so a killed run never leaves a stale lock."""
    path = Path(directory) / LOCK_NAME
    f = path.open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another run"
        f.close()
        return f"--out: expected a directory no other run is writing to, got {str(directory)!r} (in use by {holder})"
    f.seek(0)
    f.truncate()
    f.write(f"{holder_text()}\n")
    f.flush()
    _held_locks.append(f)
    return None


def holder_text() -> str:
    """Who holds an output lock, as a person can find it: the run's start time and host, and
    its PID unless it runs in scripts/fenicsx's sandbox, whose PIDs are its own (FENICSX_ROOT)."""
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    pid = "" if os.environ.get("FENICSX_ROOT") else f", PID {os.getpid()}"
    return f"a run started {started} on {platform.node()}{pid}"


def release_locks() -> None:
    """Release the output locks this process holds (the end of a run)."""
    while _held_locks:
        _held_locks.pop().close()


def staging_dir(out: str | Path, name: str) -> Path:
    """A fresh hidden directory in ``out`` where a result ``name`` is made (rank 0)."""
    path = Path(out) / f".staging-{name}"
    shutil.rmtree(path, ignore_errors=True)  # what an interrupted run left
    path.mkdir(parents=True)
    return path


def publish(made: str | Path, final: str | Path) -> None:
    """Replace ``final`` by the complete directory ``made`` (rank 0): the earlier result
    stays whole until the new one is, and the swap is two renames."""
    made, final = Path(made), Path(final)
    old = final.with_name(f".old-{final.name}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    made.rename(final)
    shutil.rmtree(old, ignore_errors=True)
