"""Renders and VTX files of the 3D model (app/render/render3d.py) on a tiny slab (R = 15 nm), the
gathered tetrahedral grid, and the 3D media of a decay preset. Every test runs on one rank
and under mpirun -n 2 (gathers and writers are collective); the pictures themselves need
an X server or Xvfb (render.available()) and are skipped, on every rank, without one."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app import config as app_config
from app.numerics.fem import DiffusionProblem
from app.physics.geometry import continuum_initial_state
from app.render import render2d as render
from app.render import render3d
from app.studies import catalogue as app_preset
from app.studies import figures, report

COMM = MPI.COMM_WORLD
R, TOP, FACE = 15.0, 15.0, 5.0  # the tiny slab: radius, top face, face of the dot layer (nm)
TINY = {
    "domain": {"geometry": "slab", "radius": R, "barrier": TOP - FACE},
    "initial": {"r0": 7.5, "profile": "uniform"},
    "mesh": {"h_min": 2.0, "h_max": 5.0, "fine_radius": 5.0, "coarse_radius": 10.0, "dz_face": 0.25},
    "diffusion": {"source": "lattice", "form": "tensor", "cache": ""},
    "solver": {"t_end": 1.0, "outputs_per_decade": 4},
}


def can_render() -> bool:
    """The same answer on every rank: rank 0's."""
    return COMM.bcast(render.available() if COMM.rank == 0 else None, root=0)


def tiny(mesh_dir, **changes) -> app_config.Config:
    data = app_config.merge(TINY, {"mesh": {"directory": str(mesh_dir)}, "output": {"progress": False}})
    return app_config.validate(app_config.merge(data, changes))


@pytest.fixture(scope="module")
def slab(mesh_dir):
    return DiffusionProblem(tiny(mesh_dir), COMM).setup()


# --- the gathered grid and its slices ------------------------------------------------------------


def test_gathered_tetrahedra_hold_every_point_with_its_value(slab):
    grid = render.RankZeroGrid(slab.V)
    values = grid.values(slab.u)
    n_cells = slab.mesh.topology.index_map(3).size_global
    if COMM.rank == 0:
        assert grid.grid.n_points == slab.V.dofmap.index_map.size_global
        assert grid.grid.n_cells == n_cells
        assert set(np.unique(grid.grid.celltypes)) == {10}  # VTK_TETRA
        pts = grid.grid.points
        exact = continuum_initial_state(slab.config)(pts.T)
        inside = np.hypot(pts[:, 0], pts[:, 1]) < R - 1e-6  # u = 0 on the rim
        assert np.allclose(values[inside], exact[inside], atol=1e-12)
        assert np.all(values[~inside] == 0.0)
        assert grid.grid.bounds[4] == 0.0 and grid.grid.bounds[5] == pytest.approx(TOP)
    else:
        assert grid.grid is None and values is None


def test_the_2d_grid_is_still_triangles():
    m = dmesh.create_unit_square(COMM, 4, 3)
    V = fem.functionspace(m, ("Lagrange", 1))
    f = fem.Function(V)
    f.interpolate(lambda x: x[0] + 2 * x[1])
    grid = render.RankZeroGrid(V)
    values = grid.values(f)
    if COMM.rank == 0:
        assert grid.grid.n_points == 20 and grid.grid.n_cells == 24
        assert set(np.unique(grid.grid.celltypes)) == {5}  # VTK_TRIANGLE
        assert np.allclose(values, grid.grid.points[:, 0] + 2 * grid.grid.points[:, 1])


def test_the_xz_plane_is_mirrored_to_span_minus_z_to_z_and_the_midplane_is_z0(slab):
    grid = render.RankZeroGrid(slab.V)
    values = grid.values(slab.u)
    if COMM.rank != 0:
        return
    plane = render3d.xz_plane(grid.grid, {"u": values})
    x0, x1, y0, y1, z0, z1 = plane.bounds
    assert (z0, z1) == pytest.approx((-TOP, TOP)) and (x0, x1) == pytest.approx((-R, R), abs=0.25)  # chords of the rim
    assert y0 == pytest.approx(0.0, abs=1e-9) and y1 == pytest.approx(0.0, abs=1e-9)
    # the mirror image: u(x, -z) = u(x, z), and both halves are there
    pts, u = plane.points, plane.point_data["u"]
    upper = {(round(x, 6), round(z, 6)): v for (x, _, z), v in zip(pts, u, strict=True) if z > 1e-9}
    lower = {(round(x, 6), round(-z, 6)): v for (x, _, z), v in zip(pts, u, strict=True) if z < -1e-9}
    assert upper.keys() == lower.keys() and len(upper) > 100
    assert all(abs(upper[k] - lower[k]) < 1e-12 for k in upper)
    # the initial state: u0's Gaussian inside the layer (P1, interpolated where the plane cuts
    # edges), zero beyond the first level above the face
    inside = (np.abs(pts[:, 2]) < FACE - 0.3) & (np.abs(pts[:, 0]) < R - 2.5)
    assert np.allclose(u[inside], np.exp(-(pts[inside, 0] ** 2) / 7.5**2), atol=0.03)
    assert np.all(u[np.abs(pts[:, 2]) > FACE + 0.3] == 0.0)

    mid = render3d.midplane(grid.grid, {"u": values})
    assert mid.bounds[4] == 0.0 and mid.bounds[5] == 0.0
    on_base = np.count_nonzero(grid.grid.points[:, 2] == 0.0)
    assert mid.n_points == on_base and mid.bounds[1] == pytest.approx(R, abs=0.25)

    # the Slicer (cells found once, for every output time) cuts the same planes
    def rows(poly):
        return sorted(map(tuple, np.round(np.column_stack([poly.points, poly.point_data["u"]]), 9)))

    slicer = render3d.Slicer(grid.grid)
    assert slicer.band.n_cells < grid.grid.n_cells / 3
    assert set(rows(slicer.xz({"u": values}))) == set(rows(plane))
    assert rows(slicer.mid({"u": values})) == rows(mid)


def test_view_clips_wide_planes_and_stretches_thin_ones():
    slab60 = render3d.View(radius=60.0, top=15.0, face=5.0)
    assert slab60.half_width == 60.0 and slab60.stretch == 2
    assert slab60.note() == "view: |x| <= R; z stretched x2"
    wide = render3d.View(radius=300.0, top=5.0, face=5.0)
    assert wide.half_width == 60.0 and wide.stretch == 6
    assert "|x| <= 60 nm of R = 300 nm" in wide.note()
    assert render3d.View(radius=15.0, top=15.0, face=5.0).stretch == 1


def test_panels_at_t0_and_where_h_falls_to_each_level():
    h = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.45, 0.3, 0.2, 0.1])
    assert render3d.panel_indices(h) == [0, 3, 5, 7]
    assert render3d.panel_indices(np.array([1.0, 0.99, 0.98])) == [0, 2]  # never that low: the last


def test_radial_and_zz_components_of_a_tensor():
    m = dmesh.create_box(COMM, [[-1.0, -1.0, 0.0], [1.0, 1.0, 1.0]], [4, 4, 2], dmesh.CellType.tetrahedron)
    T = fem.functionspace(m, ("Lagrange", 1, (3, 3)))
    D = fem.Function(T)
    D.interpolate(lambda x: np.tile(np.array([1.0, 0.5, 0.0, 0.5, 3.0, 0.0, 0.0, 0.0, 7.0])[:, None], (1, x.shape[1])))
    zz, rr = render3d.components(D)
    x = zz.function_space.tabulate_dof_coordinates()
    assert np.allclose(zz.x.array, 7.0)
    r2 = x[:, 0] ** 2 + x[:, 1] ** 2
    off = r2 > 1e-12
    expected = (x[off, 0] ** 2 + x[off, 0] * x[off, 1] + 3 * x[off, 1] ** 2) / r2[off]
    assert np.allclose(rr.x.array[off], expected)
    assert np.allclose(rr.x.array[~off], 1.0)  # on the axis: D^xx


# --- the recorder of a solve: VTX files and pictures ---------------------------------------------


def test_recorder_writes_vtx_of_u_and_d_and_the_pictures(slab, shared_tmp):
    rec = render3d.Recorder(slab, shared_tmp / "case")
    try:
        res = slab.solve(on_output=rec)
    finally:
        rec.close()
    COMM.barrier()
    for path in rec.paths:  # u(t) and D, written by every rank
        assert path.name in ("case_u.bp", "case_D.bp") and (path / "md.idx").exists()
    assert len(rec.paths) == 2
    if COMM.rank == 0:
        assert len(rec.frames) == len(res.t)
        assert [f[0] for f in rec.frames] == pytest.approx(list(res.t))
        assert rec.frames[-1][1] == pytest.approx(res.h[-1], rel=1e-12)
        assert rec.D.bounds[4:] == pytest.approx((-TOP, TOP))
        assert rec.D.point_data["D_zz"].min() > 0 and rec.D.point_data["D_rr"].min() > 0
    if not can_render():
        pytest.skip("no X server or Xvfb: pictures not rendered")
    if COMM.rank != 0:
        return
    made = rec.media(shared_tmp, "case", "tiny slab")
    gif, (slices, d_png) = made["animation"], made["images"]
    frames = iio.imread(gif, index=None)
    assert gif.read_bytes()[:6] == b"GIF89a" and frames.shape[0] == len(res.t)
    assert frames.shape[1:3] == (render3d.XZ_SIZE[1], render3d.XZ_SIZE[0])
    assert not np.array_equal(frames[0], frames[-1])  # the polarisation moved
    rows = len(render3d.panel_indices(res.h))
    img = iio.imread(slices)
    assert img.shape[0] > rows * render3d.XZ_SIZE[1] and img.shape[1] == render3d.XZ_SIZE[0] + render3d.MID_SIZE[0]
    assert img.std() > 20 and slices.stat().st_size > 50_000  # not blank
    img = iio.imread(d_png)
    assert img.shape[0] > 2 * render3d.XZ_SIZE[1] and img.std() > 20 and d_png.stat().st_size > 30_000


# --- a 3D decay preset: the figure's media ------------------------------------------------------

PRESET = """
[figure]
kind = "decay"
title = "tiny 3D"
animate = ["slab"]

[config]
diffusion = { source = "lattice", form = "tensor", cache = "" }
domain = { radius = 15.0 }
initial = { r0 = 7.5 }
mesh = { h_min = 2.0, h_max = 5.0, fine_radius = 5.0, coarse_radius = 10.0, dz_face = 0.25, directory = "MESHES" }
solver = { t_end = 0.1, outputs_per_decade = 4 }
output = { progress = false }

[[curve]]
label = "slab"
domain = { geometry = "slab", barrier = 10.0 }
"""


def run_tiny_preset(path, out, mesh_dir) -> dict:
    if COMM.rank == 0:
        path.write_text(PRESET.replace("MESHES", str(mesh_dir)))
    COMM.barrier()
    preset = app_preset.resolve(app_preset.load_preset(str(path)))
    return figures.run_preset(preset, out, COMM)


def test_a_3d_decay_preset_renders_its_animated_curve(shared_tmp, mesh_dir):
    info = run_tiny_preset(shared_tmp / "tiny3d.toml", shared_tmp / "out", mesh_dir)
    out = shared_tmp / "out"
    media = info["media"]["slab"]
    assert media["vtx"] == ["tiny3d/tiny3d_slab_u.bp", "tiny3d/tiny3d_slab_D.bp"]
    assert all((out / p / "md.idx").exists() for p in media["vtx"])
    if not can_render():
        pytest.skip("no X server or Xvfb: pictures not rendered")
    assert media["animation"] == "tiny3d/tiny3d_slab.gif"
    assert media["images"] == ["tiny3d/tiny3d_slab_slices.png", "tiny3d/tiny3d_slab_D.png"]
    for p in [media["animation"], *media["images"]]:
        assert (out / p).stat().st_size > 20_000
    if COMM.rank == 0:
        summary = report.summary_markdown([info])
        assert "[slices](tiny3d/tiny3d_slab_slices.png)" in summary and "[D](tiny3d/tiny3d_slab_D.png)" in summary


def test_without_a_display_one_line_and_the_rest_is_written(shared_tmp, mesh_dir, monkeypatch, capsys):
    monkeypatch.setattr(render, "available", lambda: False)
    info = run_tiny_preset(shared_tmp / "tiny3d.toml", shared_tmp / "out", mesh_dir)
    out = shared_tmp / "out" / "tiny3d"
    assert info["media"] == {"slab": {"vtx": ["tiny3d/tiny3d_slab_u.bp", "tiny3d/tiny3d_slab_D.bp"]}}
    assert (out / "tiny3d.csv").exists() and (out / "tiny3d.png").exists()
    assert json.loads((out / "run.json").read_text())["curves"][0]["geometry"].startswith("slab")
    assert not list(out.glob("*.gif")) and not list(out.glob("*_slices.png"))
    if COMM.rank == 0:
        lines = [ln for ln in capsys.readouterr().out.splitlines() if "X server" in ln]
        assert lines == ["tiny3d: no X server or Xvfb: animations not rendered (VTX files written)"]
