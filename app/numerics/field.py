"""The lattice diffusion field in DOLFINx spaces (nm, nm^2/s).

``interpolate_lattice(...)`` fills a scalar Lagrange function with the isotropic D and a
2x2 tensor Lagrange function with D^ab (on a 3D mesh: a 3x3 tensor function with D^ab(x,
y, z) of MODEL.md 10, and no scalar), evaluating :func:`app.physics.lattice.diffusion_tensor` (3D:
:func:`app.physics.lattice.diffusion_tensor_3d`) only at the degrees of freedom each rank owns
(ghosts arrive by a scatter), so no rank computes the whole field and the result does not
depend on the number of ranks. In 3D heights within 1e-9 nm of each other are made one
first (:func:`snap_heights`), so the few levels of an extruded mesh each build their height
terms once.

Evaluated fields are cached on disk (``diffusion.cache``), keyed by every parameter that
affects them: the whole ``[model]`` section, the mesh (its file name encodes every
geometry parameter), the degree and the version of the lattice code. A cache file holds
the points with their values and a checksum; one whose metadata or checksum does not
match, or that cannot be read, is reported and recomputed, never trusted. Points are
matched by position (KD-tree), so a cache written on 8 ranks serves 1 rank and back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.config import Model
from app.physics import crystal, lattice
from app.runtime.output import atomic_write, make_room
from app.runtime.progress import bar as progress_bar

#: bump when lattice.py changes what it computes
LATTICE_VERSION = 1
#: stored components of D^ab: 2D xx, xy, yy; 3D also xz, yz, zz
COMPONENTS = {2: ((0, 0), (0, 1), (1, 1)), 3: ((0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2))}
#: points closer than this (nm) are the same point
MATCH_TOL = 1e-7


@dataclass
class LatticeField:
    """D as DOLFINx functions, and what it cost."""

    scalar: fem.Function | None  # isotropic D = (D^xx + D^yy) / 2 (2D only)
    tensor: fem.Function  # D^ab, 2x2 or 3x3
    evaluated: int  # points this rank evaluated (0 when all came from the cache)
    owned: int  # points this rank owns
    cache: str  # "off", "hit", "miss", "stale", "corrupt"
    zz: fem.Function | None = None  # 3D, diffusion.zz = "planes": D^zz of the lattice's planes (DG1)


def cache_key(model: Model, mesh_name: str, degree: int, isotope: str | None = None) -> dict:
    if isotope is not None:  # the real crystal: one field per isotope
        return {**cache_key(model, mesh_name, degree), "isotope": isotope}
    return {
        "lattice_version": LATTICE_VERSION,
        "model": model.model_dump(mode="json"),
        "mesh": mesh_name,
        "degree": degree,
    }


def _digest(points: np.ndarray, values: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(points, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return h.hexdigest()


def cache_path(directory: str | Path, key: dict) -> Path:
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(directory) / f"lattice-field-{name}.npz"


def _load(path: Path, key: dict, points: np.ndarray, ncomp: int | None = None):
    """(values for ``points`` or None, status) from a cache file; never raises. ``ncomp``:
    the values' columns (default: the tensor components of the points' dimension)."""
    if not path.exists():
        return None, "miss"
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            cpts, cvals = data["points"], data["values"]
        if meta.get("key") != key:
            return None, "stale"
        ncomp = len(COMPONENTS[points.shape[1]]) if ncomp is None else ncomp
        if meta.get("sha256") != _digest(cpts, cvals) or cvals.shape != (len(cpts), ncomp) or cpts.ndim != 2:
            return None, "corrupt"
    except Exception:
        return None, "corrupt"
    if cpts.shape[1] != points.shape[1]:
        return None, "stale"
    if len(points) == 0:
        return np.zeros((0, ncomp)), "hit"
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(cpts).query(points, k=1)
    if not np.all(dist <= MATCH_TOL):
        return None, "miss"
    return cvals[idx], "hit"


def _save(path: Path, key: dict, points: np.ndarray, values: np.ndarray) -> None:
    order = np.lexsort(points.T[::-1])
    points, values = points[order], values[order]
    meta = json.dumps({"key": key, "sha256": _digest(points, values)}, sort_keys=True)
    make_room(path)
    atomic_write(path, lambda f: np.savez(f, points=points, values=values, meta=np.array(meta)), binary=True)


def snap_heights(z: np.ndarray, comm=None, tol: float = 1e-9) -> np.ndarray:
    """Heights within ``tol`` nm of each other made one, the lowest of their cluster over all
    ranks of ``comm`` (collective; the result does not depend on the partition): the midpoints
    of an extruded mesh's edges differ in their last bits, and each distinct height builds its
    own height terms. Heights that are equal already are left as they are."""
    z = np.asarray(z, dtype=float)
    local = np.unique(z)
    every = np.unique(np.concatenate(comm.allgather(local))) if comm is not None else local
    if len(every) == 0:
        return z.copy()
    start = np.concatenate([[True], np.diff(every) > tol])
    representative = every[start][np.cumsum(start) - 1]
    return representative[np.searchsorted(every, z)]


def _evaluate(points: np.ndarray, model: Model, comm, progress: bool, isotope: str | None = None) -> np.ndarray:
    """(N, C): the components of :data:`COMPONENTS` at this rank's points, in chunks with a bar
    on rank 0. In 3D the chunks follow the points sorted by height, so each holds few heights
    (lattice.rates builds its height terms per distinct height of a call)."""
    dim = points.shape[1]
    comps = COMPONENTS[dim]
    tensor = lattice.diffusion_tensor if dim == 2 else lattice.diffusion_tensor_3d
    if isotope is not None:  # the real crystal (MODEL.md 11), per isotope
        pick = crystal.diffusion_tensor if dim == 2 else crystal.diffusion_tensor_3d

        def tensor(pts, model):
            return pick(pts, model, isotope)
    order = np.argsort(points[:, 2], kind="stable") if dim == 3 else np.arange(len(points))
    out = np.empty((len(points), len(comps)))
    chunk = 8192
    bar = None
    if progress and comm.rank == 0 and len(points) > 4 * chunk:
        bar = progress_bar(len(points), f"lattice D{' ' + isotope if isotope else ''} (rank 0)", "pt")
    for s in range(0, len(points), chunk):
        sel = order[s : s + chunk]
        D = tensor(points[sel], model)
        out[sel] = np.stack([D[:, a, b] for a, b in comps], axis=1)
        if bar is not None:
            bar.update(min(chunk, len(points) - s))
    if bar is not None:
        bar.close()
    return out


def _cached(points, key, cache_dir, compute, comm, what: str, ncomp: int | None = None):
    """(values, this rank's cache status, points evaluated here): this rank's values for its
    ``points`` from the cache file of ``key`` in ``cache_dir``, else ``compute()``d; the file
    is (re)written by rank 0 with every rank's points when any rank missed. Collective."""
    use_cache = bool(cache_dir) and key is not None
    values, status = (None, "off")
    if use_cache:
        path = cache_path(cache_dir, key)
        values, status = _load(path, key, points, ncomp)
    evaluated = 0
    if values is None:
        values = compute()
        evaluated = len(points)
    # collective from here on, whatever each rank found
    statuses = comm.allgather(status)
    if use_cache:
        if any(s in ("stale", "corrupt") for s in statuses) and comm.rank == 0:
            worst = "corrupt" if "corrupt" in statuses else "stale"
            print(f"{what} cache {path} is {worst}: recomputed and rewritten", flush=True)
        if any(s != "hit" for s in statuses):
            all_points = comm.gather(points, root=0)
            all_values = comm.gather(values, root=0)
            if comm.rank == 0:
                _save(path, key, np.concatenate(all_points), np.concatenate(all_values))
            comm.barrier()
    return values, status, evaluated


def interpolate_lattice(
    mesh,
    model: Model,
    degree: int = 2,
    *,
    mesh_name: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    isotope: str | None = None,
) -> LatticeField:
    """Scalar (2D only) and tensor Lagrange functions of degree ``degree`` holding the lattice D
    (of ``isotope`` for the real crystal, :mod:`app.physics.crystal`; None: the article's).

    Collective. ``mesh_name`` (required for caching) must identify the mesh uniquely.
    """
    comm = mesh.comm
    dim = mesh.geometry.dim
    V = fem.functionspace(mesh, ("Lagrange", degree))
    T = fem.functionspace(mesh, ("Lagrange", degree, (dim, dim)))
    n_owned = V.dofmap.index_map.size_local
    assert T.dofmap.index_map.size_local == n_owned and T.dofmap.index_map_bs == dim * dim
    points = V.tabulate_dof_coordinates()[:n_owned, :dim].copy()
    if dim == 3:
        points[:, 2] = snap_heights(points[:, 2], comm)

    key = cache_key(model, mesh_name, degree, isotope) if mesh_name is not None else None
    values, status, evaluated = _cached(
        points, key, cache_dir, lambda: _evaluate(points, model, comm, progress, isotope), comm, "lattice field"
    )

    tensor = fem.Function(T, name="D_tensor")
    full = tensor.x.array[: dim * dim * n_owned].reshape(n_owned, dim, dim)
    for c, (a, b) in enumerate(COMPONENTS[dim]):
        full[:, a, b] = full[:, b, a] = values[:, c]
    tensor.x.scatter_forward()
    scalar = None
    if dim == 2:
        scalar = fem.Function(V, name="D")
        scalar.x.array[:n_owned] = 0.5 * (values[:, 0] + values[:, 2])
        scalar.x.scatter_forward()
    return LatticeField(scalar, tensor, evaluated, n_owned, status)


def planes_zz(
    mesh, model: Model, *, mesh_name: str | None = None, cache_dir=None, progress: bool = False, isotope: str | None = None
):
    """D^zz with the resistance of the lattice's planes (:func:`app.physics.crystal.plane_flux_zz`:
    the article's lattice, or ``isotope``'s sublattice in GaAs) on a 3D mesh: (a DG1 Function,
    this rank's cache status).

    In each tetrahedron D^zz is linear in (x, y) and constant in z: at a vertex (x, y) it is
    the harmonic mean of the piecewise-constant D_p over the cell's heights [z_lo, z_hi] (the
    exact series resistance; one D_p where the cell lies between two planes). The cells of
    an extruded mesh have their vertices on vertical lines, so the linear interpolant of
    these vertex values does not vary with z. D_p is evaluated once per vertical line of
    this rank's cells and per interval, and cached like the field (its own file).
    Collective.
    """
    comm = mesh.comm
    Q = fem.functionspace(mesh, ("Discontinuous Lagrange", 1))
    n_cells = mesh.topology.index_map(mesh.topology.dim).size_local
    cell_dofs = Q.dofmap.list[:n_cells]
    xyz = Q.tabulate_dof_coordinates()
    z = xyz[cell_dofs, 2]  # DG1's dofs are each cell's vertices
    z_lo, z_hi = snap_heights(z.min(axis=1), comm), snap_heights(z.max(axis=1), comm)
    spacing, offset = crystal.planes(model, isotope)  # interval p: offset + spacing p < z < offset + spacing (p + 1)
    local = (int(np.floor((z_lo.min() - offset) / spacing)), int(np.ceil((z_hi.max() - offset) / spacing))) if n_cells else (0, 0)
    p_lo, p_hi = comm.allreduce(local[0], op=MPI.MIN), comm.allreduce(local[1], op=MPI.MAX)
    intervals = np.arange(p_lo, max(p_hi, p_lo + 1))
    xy_all = np.round(xyz[cell_dofs.ravel(), :2], 9)
    xy, xy_index = np.unique(xy_all, axis=0, return_inverse=True)
    xy_index = xy_index.reshape(cell_dofs.shape)

    def compute():
        if progress and comm.rank == 0:
            who = f" {isotope}" if isotope else ""
            print(f"lattice D^zz{who} of the planes: {len(xy)} vertical lines x {len(intervals)} intervals (rank 0)", flush=True)
        return crystal.plane_flux_zz(xy, intervals, model, isotope)

    key = None
    if mesh_name is not None:
        key = {**cache_key(model, mesh_name, 1, isotope), "zz": "planes", "intervals": [int(p_lo), int(intervals[-1])]}
    D_p, status, _ = _cached(xy, key, cache_dir, compute, comm, "lattice D^zz", ncomp=len(intervals))
    inverse = 1.0 / D_p  # (lines, P)
    zz = fem.Function(Q, name="D_zz")
    levels, level_of = np.unique(np.column_stack([z_lo, z_hi]), axis=0, return_inverse=True)
    level_of = level_of.reshape(-1)
    for j, (lo, hi) in enumerate(levels):
        top, bottom = offset + spacing * (intervals + 1), offset + spacing * intervals
        overlap = np.clip(np.minimum(hi, top) - np.maximum(lo, bottom), 0.0, None) / (hi - lo)
        cells = np.flatnonzero(level_of == j)
        zz.x.array[cell_dofs[cells].ravel()] = 1.0 / (inverse[xy_index[cells].ravel()] @ overlap)
    zz.x.scatter_forward()
    return zz, status


def lattice_diffusion(problem):
    """The D a DiffusionProblem needs for its form: scalar for paper/conservative, else tensor."""
    cfg = problem.config
    name = None if problem._mesh_input is not None else problem.mesh_spec().name
    field = interpolate_lattice(
        problem.mesh,
        cfg.model,
        cfg.diffusion.degree,
        mesh_name=name,
        cache_dir=cfg.diffusion.cache or None,
        progress=cfg.output.progress,
        isotope=problem.isotope,
    )
    problem.lattice_field = field
    if cfg.diffusion.form != "tensor":
        return field.scalar
    if problem.mesh.geometry.dim == 3 and cfg.diffusion.zz == "planes":
        field.zz, _ = planes_zz(problem.mesh, cfg.model, mesh_name=name, cache_dir=cfg.diffusion.cache or None,
                                progress=cfg.output.progress, isotope=problem.isotope)  # fmt: skip
        D = field.tensor
        return ufl.as_matrix([[D[0, 0], D[0, 1], D[0, 2]], [D[1, 0], D[1, 1], D[1, 2]], [D[2, 0], D[2, 1], field.zz]])
    return field.tensor
