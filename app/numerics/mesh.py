"""The mesh cache: the Gmsh mesh of a spec (:mod:`app.numerics.disk`, :mod:`app.numerics.cylinder`), made once.

Rank 0 builds the Gmsh model and writes it to ``<directory>/<name>.msh``, where the name
encodes every parameter, atomically, with a last section (which Gmsh ignores) holding
the parameters and the SHA-256 of the rest. An existing file is reused only if both
match; a truncated, garbage or different mesh under the name is reported in one line and
rebuilt, never trusted. Rank 0 turns it once into ``<name>.arrays``, which every rank then
reads its own part of (:mod:`app.numerics.mesh_arrays`): the mesh is the same whatever the number of
ranks, and no rank reads or sends the whole of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from mpi4py import MPI

from app.numerics import mesh_arrays
from app.numerics.cylinder import CylinderSpec
from app.numerics.disk import DiskSpec
from app.runtime.output import make_room
from app.runtime.scheduler import sleeping_barrier

#: the cache's own section at the end of each .msh: the spec and the SHA-256 of the rest
META_BEGIN, META_END = "$OverhauserMesh", "$EndOverhauserMesh"
MESH_FORMAT = 1


def spec_of(config, sublattice: str | None = None):
    """The Gmsh mesh a configuration asks for: the disk in 2D, the cylinder in 3D (GaAs,
    lattice-matched: with the faces of ``sublattice``'s planes, MODEL.md 11)."""
    if config.geometry.dim == 3:
        return CylinderSpec.from_config(config, sublattice)
    return DiskSpec.from_config(config)


def spec_record(spec) -> dict:
    """The spec as its JSON round trip (tuples become lists), as the cache stores it."""
    return json.loads(json.dumps(asdict(spec), sort_keys=True))


def _write_msh(spec, path: Path) -> None:
    """Build the Gmsh model and write it atomically (rank 0 only; not collective)."""
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        spec.build()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.msh")
        try:
            gmsh.write(str(tmp))
            body = tmp.read_bytes()
            meta = {"format": MESH_FORMAT, "spec": spec_record(spec), "sha256": hashlib.sha256(body).hexdigest()}
            with tmp.open("ab") as f:  # Gmsh ignores sections it does not know
                f.write(f"{META_BEGIN}\n{json.dumps(meta, sort_keys=True)}\n{META_END}\n".encode())
            make_room(path)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        gmsh.finalize()


def check_msh(path: Path, spec) -> str:
    """'hit', 'miss', 'stale' (another mesh under this name) or 'corrupt' (truncated, garbage)."""
    if not path.exists():
        return "miss"
    try:
        data = path.read_bytes()
        at = data.rindex(META_BEGIN.encode())
        meta = json.loads(data[at + len(META_BEGIN) : data.rindex(META_END.encode())])
        if hashlib.sha256(data[:at]).hexdigest() != meta["sha256"]:
            return "corrupt"
        if meta.get("format") != MESH_FORMAT or meta.get("spec") != spec_record(spec):
            return "stale"
    except (OSError, ValueError, KeyError, TypeError):
        return "corrupt"
    return "hit"


def cached_mesh(spec, directory: str | Path = "meshes", comm: MPI.Comm = MPI.COMM_WORLD):
    """Distributed DOLFINx mesh of ``spec`` (a DiskSpec or a CylinderSpec): ``(mesh, cell_tags, facet_tags)``.

    The rim facets carry tag :data:`RIM_TAG`. Rank 0 makes what is missing: the .msh (Gmsh)
    and from it the arrays every rank then reads its part of (:mod:`app.numerics.mesh_arrays`).
    """
    return mesh_arrays.read(ensure_cached(spec, directory, comm), comm, spec.gdim)


def node_count(spec, directory: str | Path = "meshes", comm: MPI.Comm = MPI.COMM_WORLD) -> int:
    """The number of nodes of ``spec``'s mesh, made and cached first if missing (collective)."""
    path = ensure_cached(spec, directory, comm)
    n = mesh_arrays.node_count(path) if comm.rank == 0 else None
    return comm.bcast(n, root=0)


#: rank 0's files checked in this process: path -> (size, mtime_ns, spec record), so that a
#: job that asks for the same mesh again (its size first, then its solves) hashes it once
_checked: dict[Path, tuple] = {}


def _check_once(arrays: Path, record: dict) -> str:
    try:
        st = arrays.stat()
    except OSError:
        return "miss"
    if _checked.get(arrays) == (st.st_size, st.st_mtime_ns, record):
        return "hit"
    status = mesh_arrays.check(arrays, record)
    if status == "hit":
        _checked[arrays] = (st.st_size, st.st_mtime_ns, record)
    return status


def ensure_cached(spec, directory: str | Path = "meshes", comm: MPI.Comm = MPI.COMM_WORLD) -> Path:
    """The checked ``.arrays`` file of ``spec``, which rank 0 makes if it is missing, stale or
    corrupt (collective; RuntimeError on every rank if it cannot)."""
    directory = Path(directory)
    msh = directory / f"{spec.name}.msh"
    arrays = mesh_arrays.path_for(directory, spec.name)
    error = None
    if comm.rank == 0:
        record = spec_record(spec)
        status = _check_once(arrays, record)
        if status in ("stale", "corrupt"):
            print(f"mesh cache {arrays} is {status}: rebuilt", flush=True)
        if status != "hit":
            try:
                status = check_msh(msh, spec)
                if status in ("stale", "corrupt"):
                    print(f"mesh cache {msh} is {status}: rebuilt", flush=True)
                if status != "hit":
                    directory.mkdir(parents=True, exist_ok=True)
                    _write_msh(spec, msh)
                mesh_arrays.write(arrays, mesh_arrays.from_gmsh(msh, spec.gdim), record)
            except Exception as exc:  # reported on every rank below, never a hang
                error = f"mesh: could not write {msh}: {exc}"
    sleeping_barrier(comm)  # the other ranks leave their cores to Gmsh meanwhile
    error = comm.bcast(error, root=0)
    if error:
        raise RuntimeError(error)
    return arrays


def disk_mesh(spec: DiskSpec, directory: str | Path = "meshes", comm: MPI.Comm = MPI.COMM_WORLD):
    """Distributed DOLFINx mesh of the disk (see :func:`cached_mesh`)."""
    return cached_mesh(spec, directory, comm)
