"""Gmsh disk mesh, fine at the dot centre and coarse at the rim (lengths in nm).

Rank 0 builds the Gmsh model and writes it to ``<directory>/<name>.msh``, where the name
encodes every parameter, atomically, with a last section (which Gmsh ignores) holding
the parameters and the SHA-256 of the rest. An existing file is reused only if both
match; a truncated, garbage or different mesh under the name is reported in one line and
rebuilt, never trusted. Rank 0 turns it once into ``<name>.arrays``, which every rank then
reads its own part of (:mod:`app.mesh_arrays`): the mesh is the same whatever the number of
ranks, and no rank reads or sends the whole of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mpi4py import MPI

from app import fewer_ranks, mesh_arrays

#: physical group tags written to the .msh
DISK_TAG = 1
RIM_TAG = 2
#: the cache's own section at the end of each .msh: the spec and the SHA-256 of the rest
META_BEGIN, META_END = "$OverhauserMesh", "$EndOverhauserMesh"
MESH_FORMAT = 1


def number_tag(x: float) -> str:
    """A number as it appears in a mesh file name: 2.5 -> '2p5'."""
    return f"{x:g}".replace(".", "p")


@dataclass(frozen=True)
class DiskSpec:
    """Geometry and size field of the disk mesh, nm."""

    radius: float = 300.0
    h_min: float = 2.0
    h_max: float = 20.0
    fine_radius: float = 60.0
    coarse_radius: float = 200.0

    @classmethod
    def from_config(cls, config) -> DiskSpec:
        m = config.mesh
        return cls(config.domain.radius, m.h_min, m.h_max, m.fine_radius, m.coarse_radius)

    @property
    def name(self) -> str:
        f = number_tag
        return (
            f"disk_R{f(self.radius)}_hmin{f(self.h_min)}_hmax{f(self.h_max)}"
            f"_rf{f(self.fine_radius)}_rc{f(self.coarse_radius)}"
        )

    gdim = 2

    def build(self) -> None:
        """Make the Gmsh model of the disk in the current (initialised) Gmsh session."""
        import gmsh

        gmsh.model.add("disk")
        disk = base_disk(self)
        gmsh.model.addPhysicalGroup(2, [disk], DISK_TAG, name="disk")
        rim = [c[1] for c in gmsh.model.getBoundary([(2, disk)], oriented=False)]
        gmsh.model.addPhysicalGroup(1, rim, RIM_TAG, name="rim")
        gmsh.model.mesh.generate(2)


def spec_of(config):
    """The Gmsh mesh a configuration asks for: the disk, or the cylinder in 3D."""
    if config.domain.geometry == "disk":
        return DiskSpec.from_config(config)
    from app.cylinder import CylinderSpec

    return CylinderSpec.from_config(config)


def base_disk(spec) -> int:
    """The OCC disk of ``spec.radius`` with a node at the centre and the size field of ``spec``
    (h_min within fine_radius, growing linearly to h_max at coarse_radius); returns its tag."""
    import gmsh

    occ = gmsh.model.occ
    disk = occ.addDisk(0.0, 0.0, 0.0, spec.radius, spec.radius)
    centre = occ.addPoint(0.0, 0.0, 0.0)
    occ.synchronize()
    gmsh.model.mesh.embed(0, [centre], 2, disk)  # a node exactly at the dot centre
    field = gmsh.model.mesh.field
    dist = field.add("Distance")
    field.setNumbers(dist, "PointsList", [centre])
    thr = field.add("Threshold")
    field.setNumber(thr, "InField", dist)
    field.setNumber(thr, "SizeMin", spec.h_min)
    field.setNumber(thr, "SizeMax", spec.h_max)
    field.setNumber(thr, "DistMin", spec.fine_radius)
    field.setNumber(thr, "DistMax", spec.coarse_radius)
    field.setAsBackgroundMesh(thr)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay
    return disk


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
    and from it the arrays every rank then reads its part of (:mod:`app.mesh_arrays`).
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
    fewer_ranks.sleeping_barrier(comm)  # the other ranks leave their cores to Gmsh meanwhile
    error = comm.bcast(error, root=0)
    if error:
        raise RuntimeError(error)
    return arrays


def disk_mesh(spec: DiskSpec, directory: str | Path = "meshes", comm: MPI.Comm = MPI.COMM_WORLD):
    """Distributed DOLFINx mesh of the disk (see :func:`cached_mesh`)."""
    return cached_mesh(spec, directory, comm)
