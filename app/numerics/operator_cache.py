"""On-disk cache of the lattice master equation's rate operator K (PETSc binary).

An entry is a directory ``<cache>/master-<digest>/`` holding ``K.bin`` (written and read by
PETSc's own binary viewer, collectively, in any number of ranks) and ``meta.json`` (the
full key and the SHA-256 of ``K.bin``). The key holds every parameter that changes K: the
whole ``[model]`` section, the geometry (R, Z, boundary), the folding, and the version of
the code that builds it. An entry whose key or checksum does not match, or that cannot be
read, is reported and rebuilt, never trusted.

Writers never meet: each builds its entry in a private temporary directory and renames it
into place in one step; if another run got there first, the entry it published is kept
and the temporary one removed. So several ranks or runs writing at once leave one
complete entry, and a reader never sees a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from petsc4py import PETSc

#: bump when app/numerics/master.py or the rates change what K holds
OPERATOR_VERSION = 1


def digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def entry_dir(directory: str | Path, key: dict) -> Path:
    return Path(directory) / f"master-{digest(key)}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def status(entry: Path, key: dict) -> str:
    """'hit', 'miss', 'stale' or 'corrupt' (rank 0 only: it reads the whole file)."""
    meta_path = entry / "meta.json"
    if not entry.exists():
        return "miss"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            return "stale"
        if meta.get("sha256") != _sha256(entry / "K.bin"):
            return "corrupt"
    except (OSError, ValueError, AttributeError):
        return "corrupt"
    return "hit"


def load(entry: Path, sizes, comm) -> PETSc.Mat:
    """K from a checked entry, rows distributed as ``sizes`` ((own, N), (own, N)); collective."""
    viewer = PETSc.Viewer().createBinary(str(entry / "K.bin"), mode="r", comm=comm)
    K = PETSc.Mat().create(comm=comm)
    K.setSizes(sizes)
    K.setType(PETSc.Mat.Type.AIJ)
    K.load(viewer)
    viewer.destroy()
    return K


def save(entry: Path, key: dict, K: PETSc.Mat, comm) -> None:
    """Publish K as the entry for ``key``; collective. Never raises for a lost race."""
    tmp = None
    if comm.rank == 0:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent)
    tmp = Path(comm.bcast(tmp, root=0))
    viewer = PETSc.Viewer().createBinary(str(tmp / "K.bin"), mode="w", comm=comm)
    K.view(viewer)
    viewer.destroy()
    comm.barrier()
    if comm.rank == 0:
        try:
            meta = {"key": key, "sha256": _sha256(tmp / "K.bin")}
            (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True, indent=1))
            os.chmod(tmp, 0o755)
            if entry.exists() and status(entry, key) != "hit":
                shutil.rmtree(entry, ignore_errors=True)  # stale or corrupt: replaced
            try:
                os.rename(tmp, entry)
            except OSError:  # another run published this entry first: keep theirs
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    comm.barrier()
