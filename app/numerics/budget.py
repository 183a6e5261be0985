"""Pre-flight: how big a job is, known before anything is meshed or allocated.

The size of the mesh (closed-form cell estimates under the size field), the lattice's
memory (:func:`app.numerics.master.check_budget`), and the number of unknowns that decides
how many ranks solve a case (:mod:`app.numerics.fewer_ranks`). A job over
``solver.max_memory_gb`` is refused in one line (ConfigError) before any work.
"""

from __future__ import annotations

import math

from mpi4py import MPI

from app.config import Config, ConfigError
from app.numerics import master
from app.numerics import mesh as app_mesh
from app.numerics.cylinder import level_count

#: bytes per triangle of a 2D run, all ranks together (mesh, P1 u, P2 D and D^ab, M, K, J, P,
#: AMG): a generous bound, so that only runaway meshes are refused
BYTES_PER_CELL = 4000
#: the same for a tetrahedron of a 3D run (P1 u, P1 3x3 D, ~1/5 of a vertex per cell)
BYTES_PER_TET = 1500
#: more levels in z than this and a refusal names the dz keys (the defaults make 10-40)
MANY_LEVELS = 1000


def estimate_triangles(cfg: Config) -> float:
    """Triangles of the disk mesh: area / (sqrt(3)/4 h^2) under the size field h(r)."""
    m, R = cfg.mesh, cfg.domain.radius
    rf, rc = min(m.fine_radius, R), min(m.coarse_radius, R)
    tri = math.sqrt(3) / 4
    cells = math.pi * rf**2 / (tri * m.h_min**2)
    if rc > rf:  # h grows linearly from h_min at rf to h_max at rc
        r = [rf + (rc - rf) * (i + 0.5) / 64 for i in range(64)]
        h = [m.h_min + (m.h_max - m.h_min) * (x - rf) / (rc - rf) for x in r]
        cells += sum(2 * math.pi * x * (rc - rf) / 64 / (tri * hh**2) for x, hh in zip(r, h, strict=True))
    cells += math.pi * max(R**2 - rc**2, 0.0) / (tri * m.h_max**2)
    return cells


def estimate_cells(cfg: Config) -> float:
    """Cells of the mesh: triangles of the disk, or 3 tetrahedra per prism of the extruded cylinder."""
    cells = estimate_triangles(cfg)
    if cfg.geometry.dim == 3:
        cells *= 3 * (level_count(cfg) - 1)
    return cells


def check_mesh(cfg: Config) -> None:
    """ConfigError (one line) when the mesh would not fit in ``solver.max_memory_gb``."""
    limit = cfg.solver.max_memory_gb
    per_cell = BYTES_PER_TET if cfg.geometry.dim == 3 else BYTES_PER_CELL
    cells, most = estimate_cells(cfg), limit * 1e9 / per_cell
    if cells > most:
        d, me = cfg.domain, cfg.mesh
        why = f"domain.radius = {d.radius:g}, mesh.h_min = {me.h_min:g}, mesh.h_max = {me.h_max:g}"
        if cfg.geometry.dim == 3:
            levels = level_count(cfg) - 1
            if levels > MANY_LEVELS:  # the size in z, not the disk's, is what is too small
                why = (f"{levels:.3g} levels in z from mesh.dz_layer = {me.dz_layer:g}, mesh.dz_face = {me.dz_face:g}, "
                       f"mesh.dz_host = {me.dz_host:g}")  # fmt: skip
            else:
                why += f", {levels} levels in z"
        raise ConfigError(
            f"mesh: expected at most {most:.3g} cells (solver.max_memory_gb = {limit:g}), got about {cells:.3g} ({why})"
        )


def check(cfg: Config) -> None:
    """The size of ``cfg``'s job against ``solver.max_memory_gb``: the lattice's operator, or
    the mesh (ConfigError, the same on every rank, before anything is allocated)."""
    if cfg.diffusion.form == "master":
        master.check_budget(cfg)
    else:
        check_mesh(cfg)


def unknowns(cfg: Config, comm: MPI.Comm) -> int:
    """The number of unknowns of ``cfg``'s problem, known before it is built (collective: the
    mesh is made and cached first if missing; the problem's set-up then reads it from the cache)."""
    if cfg.diffusion.form == "master":
        return int(master.estimate(cfg)["unknowns"])
    spec = app_mesh.spec_of(cfg)
    nodes = app_mesh.node_count(spec, cfg.mesh.directory, comm)
    return nodes * cfg.mesh.degree**spec.gdim  # Lagrange degree k: about k^d dofs per vertex
