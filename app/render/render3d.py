"""PyVista renders and VTX files of the 3D model (layer, slab): u(t) and D on the x-z plane
and the mid-plane (nm, s).

The mesh is the half cylinder 0 <= z <= Z_top (:mod:`app.numerics.cylinder`): every picture shows
the physical cylinder -Z_top..Z_top, the half and its mirror image in the mid-plane z = 0.
The x-z plane (y = 0) is thin, 2 Z_top (10 or 30 nm) tall against 2R wide, so its pictures
show |x| <= :data:`VIEW_HALF_WIDTH` and stretch z by a whole factor (:meth:`View.stretch`)
until they are about half as tall as wide; each picture says so. The faces of the dot layer,
|z| = z0 / 2, are drawn as black lines.

:class:`Recorder` is called at every output time of a solve (collectively): it writes the
VTX file of u(t), gathers u to rank 0 (:class:`app.render.render2d.RankZeroGrid`) and keeps only its
two slices there; the VTX file of D (the 3x3 tensor, D^zz and D^rr = e_r . D . e_r) is
written once. :meth:`Recorder.media` renders on rank 0, where :func:`app.render.render2d.available`:

- ``<stem>.gif``: the x-z plane at every output time (fixed colour scale [0, 1], t and h/h0);
- ``<stem>_slices.png``: the x-z plane and the mid-plane at t = 0 and where h/h0 first falls
  to :data:`PANEL_LEVELS`;
- ``<stem>_D.png``: D^zz and D^rr on the x-z plane, one logarithmic colour scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.render import render2d as render
from app.runtime import compat
from app.runtime.output import atomic_write

#: the x-z pictures show |x| <= this (nm), or the whole radius if smaller: the dot (l0 = 30 nm)
VIEW_HALF_WIDTH = 60.0
#: the panels of <stem>_slices.png: t = 0, then the first output times with h/h0 at or below these
PANEL_LEVELS = (0.75, 0.5, 0.25)
#: the mid-plane pictures show |x|, |y| <= this (nm), or the whole radius if smaller
MIDPLANE_HALF_WIDTH = 60.0
CMAP_U, CMAP_D = "YlOrRd", "viridis"
U_TITLE = "u = <I_z>/<I_z>(0)"


# --- geometry (rank 0, no display needed) -------------------------------------------------------


def _with(grid, arrays: dict[str, np.ndarray]):
    g = grid.copy(deep=False)
    for name, values in arrays.items():
        g.point_data[name] = values
    return g


def mirrored(half):
    """A surface of the half cylinder z >= 0 and its mirror image z -> -z, as one PolyData."""
    other = half.copy()
    other.points[:, 2] *= -1.0
    return half.merge(other)


def xz_plane(grid, arrays: dict[str, np.ndarray]):
    """The plane y = 0 of the half cylinder ``grid`` with ``arrays`` (point data), mirrored:
    a PolyData spanning -Z_top <= z <= Z_top."""
    return mirrored(_with(grid, arrays).slice(normal=(0.0, 1.0, 0.0), origin=(0.0, 0.0, 0.0)))


def midplane(grid, arrays: dict[str, np.ndarray]):
    """The face z = 0 of the half cylinder ``grid`` (its vertices exactly), with ``arrays``."""
    surface = compat.extract_surface(_with(grid, arrays))
    top = float(grid.bounds[5])
    bottom = np.flatnonzero(np.abs(surface.cell_centers().points[:, 2]) <= 1e-9 * max(top, 1.0))
    return compat.extract_surface(surface.extract_cells(bottom))


class Slicer:
    """The x-z plane and the mid-plane of one half-cylinder grid, for many sets of values on it
    (rank 0): the cells that touch y = 0 and the faces at z = 0 are found once, each carrying
    its points' indices in the grid, so a new state slices only those."""

    def __init__(self, grid):
        g = _with(grid, {"grid_id": np.arange(grid.n_points)})
        y = grid.points[grid.cell_connectivity, 1]
        starts = compat.cell_offsets(grid)[:-1]
        crossing = (np.minimum.reduceat(y, starts) <= 0.0) & (np.maximum.reduceat(y, starts) >= 0.0)
        self.band = g.extract_cells(np.flatnonzero(crossing))
        self.base = midplane(g, {})

    def xz(self, arrays: dict[str, np.ndarray]):
        ids = self.band.point_data["grid_id"]
        return xz_plane(self.band, {name: values[ids] for name, values in arrays.items()})

    def mid(self, arrays: dict[str, np.ndarray]):
        ids = self.base.point_data["grid_id"]
        return _with(self.base, {name: values[ids] for name, values in arrays.items()})


@dataclass(frozen=True)
class View:
    """What the x-z pictures show: |x| <= half_width, -top <= z <= top, z stretched (nm)."""

    radius: float
    top: float  # Z_top, the top face of the cylinder
    face: float  # z0 / 2, the face of the dot layer

    @property
    def half_width(self) -> float:
        return min(VIEW_HALF_WIDTH, self.radius)

    @property
    def stretch(self) -> int:
        """z is drawn this many times taller: the picture about half as tall as wide."""
        return max(1, round(self.half_width / (2.0 * self.top)))

    def note(self) -> str:
        clipped = f"|x| <= {self.half_width:g} nm of R = {self.radius:g} nm" if self.half_width < self.radius else "|x| <= R"
        return f"view: {clipped}; z stretched x{self.stretch}" if self.stretch > 1 else f"view: {clipped}"

    def fit(self, plane):
        """The x-z plane clipped to the view, z stretched."""
        w = self.half_width
        cut = plane.clip(normal=(1.0, 0.0, 0.0), origin=(w, 0.0, 0.0), invert=True)
        cut = cut.clip(normal=(-1.0, 0.0, 0.0), origin=(-w, 0.0, 0.0), invert=True)
        cut.points[:, 2] *= self.stretch
        return cut


# --- pictures (rank 0, a display) ----------------------------------------------------------------

XZ_SIZE, MID_SIZE = (1000, 420), (420, 420)


def _ticks(half: float) -> tuple[np.ndarray, str]:
    """Round tick values within [-half, half] (4 to 9 of them) and their format."""
    for step in (0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 250.0, 500.0):
        n = int(np.floor(half / step + 1e-9))
        if 2 * n + 1 <= 9:
            return step * np.arange(-n, n + 1), "{:z.0f}" if step.is_integer() else "{:z.1f}"  # z: never "-0"
    return np.array([-half, 0.0, half]), "{:z.3g}"


class _Picture:
    """One off-screen window showing one surface: its values and texts change between screenshots."""

    def __init__(self, size):
        self.pl = render._plotter(size)
        self.size = size
        self.mesh = None
        self.scalars = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pl.close()

    def surface(self, mesh, scalars: str, **kwargs) -> None:
        self.mesh, self.scalars = mesh, scalars
        self.pl.add_mesh(mesh, scalars=scalars, lighting=False, **kwargs)

    def text(self, name: str, text: str, position, font_size: int = 10) -> None:
        self.pl.add_text(text, position=position, font_size=font_size, color="black", name=name)

    def shoot(self, values: np.ndarray | None = None) -> np.ndarray:
        if values is not None:
            self.mesh.point_data[self.scalars][:] = values
        if not getattr(self, "_shown", False):
            self.pl.show(auto_close=False)  # initialise the off-screen window once
            self._shown = True
        self.pl.render()
        return self.pl.screenshot(return_img=True)


def _frame(pl, size, plane: str, half_h: float, half_v: float, centre, fill) -> float:
    """A parallel camera on the plane ``xz`` (x right, z up, seen from -y) or ``xy`` (from +z)
    framing the box |h| <= half_h, |v| <= half_v so that its centre sits at ``centre`` and it
    fills at most ``fill`` of the window (fractions); the world length of one pixel."""
    width, height = size
    scale = max(half_h * height / (fill[0] * width), half_v / fill[1])  # half the visible height
    dh = (0.5 - centre[0]) * 2 * scale * width / height
    dv = (0.5 - centre[1]) * 2 * scale
    far = 10.0 * max(half_h, half_v)
    if plane == "xz":
        pl.camera_position = [(dh, -far, dv), (dh, 0.0, dv), (0.0, 0.0, 1.0)]
    else:
        pl.camera_position = [(dh, dv, far), (dh, dv, 0.0), (0.0, 1.0, 0.0)]
    pl.camera.parallel_projection = True
    pl.camera.parallel_scale = scale
    return 2 * scale / height


def _axes(pl, plane: str, half_h: float, half_v: float, unit: float, titles, stretch: float = 1.0) -> None:
    """A frame round the box |h| <= half_h, |v| <= half_v with ticks and labels in nm outside it
    (v drawn ``stretch`` times taller than it is: the labels are the true values) and the axis
    titles: h below, v above the left side. ``unit``: the world length of one pixel."""
    import pyvista as pv

    front = 1e-3 * max(half_h, half_v)  # towards the camera, so never hidden by the surface

    def at(h, v):
        h, v = np.broadcast_arrays(np.asarray(h, float), np.asarray(v, float))
        return np.column_stack([h, np.full(h.shape, -front), v] if plane == "xz" else [h, v, np.full(h.shape, front)])

    H, V = half_h, half_v * stretch
    pl.add_mesh(pv.lines_from_points(at([-H, H, H, -H, -H], [-V, -V, V, V, -V])), color="black", line_width=1)
    hs, hfmt = _ticks(half_h)
    vs, vfmt = _ticks(half_v)
    tick = 6 * unit
    ends = np.vstack([at(hs, -V), at(hs, -V - tick), at(-H, vs * stretch), at(-H - tick, vs * stretch)])
    n_h, n_v = len(hs), len(vs)
    pairs = [(i, n_h + i) for i in range(n_h)] + [(2 * n_h + i, 2 * n_h + n_v + i) for i in range(n_v)]
    pl.add_mesh(pv.PolyData(ends, lines=np.array([(2, a, b) for a, b in pairs]).ravel()), color="black", line_width=1)
    style = dict(font_size=15, text_color="black", shape=None, show_points=False, always_visible=True, bold=False)
    pl.add_point_labels(at(hs, -V - 1.6 * tick), [hfmt.format(x) for x in hs], justification_horizontal="center",
                        justification_vertical="top", **style)  # fmt: skip
    pl.add_point_labels(at(-H - 1.6 * tick, vs * stretch), [vfmt.format(x) for x in vs], justification_horizontal="right",
                        justification_vertical="center", **style)  # fmt: skip
    pl.add_point_labels(at(0.0, -V - 5.5 * tick), [titles[0]], justification_horizontal="center",
                        justification_vertical="top", **style)  # fmt: skip
    pl.add_point_labels(at(-H, V + 1.6 * tick), [titles[1]], justification_horizontal="center",
                        justification_vertical="bottom", **style)  # fmt: skip


def _scalar_bar(title: str, fmt: str, n_labels: int) -> dict:
    return dict(title=title, color="black", vertical=True, fmt=fmt, position_x=0.85, position_y=0.16,
                width=0.05, height=0.72, title_font_size=16, label_font_size=14, n_labels=n_labels)  # fmt: skip


def _xz_picture(plane, scalars: str, view: View, bar_title: str, size=XZ_SIZE, **kwargs) -> _Picture:
    """A picture of ``scalars`` on the (mirrored) x-z plane: axes in nm (true z), the faces drawn."""
    import pyvista as pv

    pic = _Picture(size)
    w, s, top = view.half_width, view.stretch, view.top
    bar = _scalar_bar(bar_title, kwargs.pop("bar_fmt", "%.1f"), kwargs.pop("bar_labels", 6))
    pic.surface(view.fit(plane), scalars, scalar_bar_args=bar, **kwargs)
    for zf in (view.face, -view.face):  # just in front of the plane, so never hidden by it
        pic.pl.add_mesh(pv.Line((-w, -1e-3 * w, zf * s), (w, -1e-3 * w, zf * s)), color="black", line_width=2)
    unit = _frame(pic.pl, size, "xz", w, top * s, centre=(0.45, 0.56), fill=(0.70, 0.56))
    _axes(pic.pl, "xz", w, top, unit, ("x (nm)", "z (nm)"), stretch=s)
    pic.text("view", f"{view.note()}; black lines: faces of the dot layer, |z| = {view.face:g} nm",
             "lower_left", 9)  # fmt: skip
    return pic


def _midplane_picture(plane, radius: float, size=MID_SIZE) -> _Picture:
    """u on the mid-plane z = 0 seen from above (colour scale [0, 1], no bar), axes in nm."""
    hw = min(MIDPLANE_HALF_WIDTH, radius)
    pic = _Picture(size)
    pic.surface(plane, "u", cmap=CMAP_U, clim=[0.0, 1.0], show_scalar_bar=False)
    unit = _frame(pic.pl, size, "xy", hw, hw, centre=(0.57, 0.47), fill=(0.64, 0.62))
    _axes(pic.pl, "xy", hw, hw, unit, ("x (nm)", "y (nm)"))
    return pic


def _header(text: str, width: int, height: int = 40) -> np.ndarray:
    with _Picture((width, height)) as pic:
        pic.text("header", text, "upper_left", 12)
        return pic.shoot()


def _png(path, image) -> None:
    import imageio.v3 as iio

    data = iio.imwrite("<bytes>", image, extension=".png")
    atomic_write(path, lambda f: f.write(data), binary=True)


def _gif(path, images) -> None:
    import imageio.v3 as iio

    data = iio.imwrite("<bytes>", np.stack(images), extension=".gif", duration=180, loop=0)
    atomic_write(path, lambda f: f.write(data), binary=True)


def _pad_width(images):
    width = max(i.shape[1] for i in images)
    return [np.pad(i, ((0, 0), (0, width - i.shape[1]), (0, 0)), constant_values=255) for i in images]


def panel_indices(h: np.ndarray, levels=PANEL_LEVELS) -> list[int]:
    """t = 0 and the first output times at which h/h0 falls to each of ``levels`` (those reached);
    the last output time in place of the levels never reached."""
    picks = [0]
    for level in levels:
        below = np.flatnonzero(np.asarray(h) <= level)
        if len(below) and int(below[0]) not in picks:
            picks.append(int(below[0]))
    if len(picks) < 1 + len(levels) and len(h) - 1 not in picks:
        picks.append(len(h) - 1)
    return sorted(picks)


def _stamp(t: float, h: float) -> str:
    return f"t = {t:.3g} s    h/h0 = {h:.3f}"


def animation(frames, view: View, path, title: str) -> None:
    """GIF of u on the x-z plane: one frame per (t, h/h0, fitted plane), colour scale [0, 1]."""
    with _xz_picture(frames[0][2], "u", view, U_TITLE, cmap=CMAP_U, clim=[0.0, 1.0]) as pic:
        pic.text("title", title, "upper_left", 11)
        images = []
        for t, h, plane, _ in frames:
            pic.text("stamp", _stamp(t, h), "upper_right", 11)
            images.append(pic.shoot(view.fit(plane).point_data["u"]))
    _gif(path, images)


def slices(frames, view: View, path, title: str) -> None:
    """PNG: one row per panel time, the x-z plane beside the mid-plane, each time stamped."""
    picks = panel_indices(np.array([f[1] for f in frames]))
    with (
        _xz_picture(frames[0][2], "u", view, U_TITLE, cmap=CMAP_U, clim=[0.0, 1.0]) as xz,
        _midplane_picture(frames[0][3], view.radius) as mid,
    ):
        xz.text("title", "x-z plane y = 0", "upper_left", 11)
        rows = []
        for i in picks:
            t, h, plane, mplane = frames[i]
            xz.text("stamp", _stamp(t, h), "upper_right", 11)
            mid.text("title", f"mid-plane z = 0 (same colour scale)\n{_stamp(t, h)}", "upper_left", 10)
            rows.append(np.hstack([xz.shoot(view.fit(plane).point_data["u"]), mid.shoot(mplane.point_data["u"])]))
    header = _header(f"{title}: u on the x-z plane and the mid-plane, fixed colour scale [0, 1]", rows[0].shape[1])
    _png(path, np.vstack([header, *rows]))


def diffusion(plane, view: View, path, title: str, zz_what: str = "D^zz") -> None:
    """PNG: D^zz above D^rr on the x-z plane, one logarithmic colour scale; ``zz_what``
    names the D^zz shown (the planes' one when the solve used it)."""
    both = np.concatenate([plane.point_data["D_zz"], plane.point_data["D_rr"]])
    both = both[both > 0]
    lo, hi = (np.floor(np.log10(both.min())), np.ceil(np.log10(both.max()))) if len(both) else (-1.0, 1.0)
    clim = [10.0**lo, 10.0**hi]  # whole decades, each labelled
    pictures = []
    for name, label, what in (("D_zz", "D^zz", zz_what), ("D_rr", "D^rr", "D^rr = e_r . D . e_r (radial)")):
        with _xz_picture(plane, name, view, f"{label} (nm^2/s)", cmap=CMAP_D, clim=clim, log_scale=True,
                         bar_fmt="%g", bar_labels=int(hi - lo) + 1) as pic:  # fmt: skip
            pic.text("title", f"{what} on the x-z plane y = 0 (log colour scale)", "upper_left", 11)
            pictures.append(pic.shoot())
    header = _header(f"{title}: the lattice diffusion tensor", pictures[0].shape[1])
    _png(path, np.vstack([header, *pictures]))


# --- during a solve (collective) and after it (rank 0) --------------------------------------------


class Recorder(render.Recorder):
    """VTX files of u(t) and D (tensor, D^zz, D^rr), and the x-z plane and mid-plane of u at
    every output time (rank 0 keeps only the slices, not the whole 3D field).

    Construction and calls are collective; the slices live on rank 0; :meth:`media` is rank 0's.
    """

    def __init__(self, problem, base: Path):
        super().__init__(problem, base)
        self.D = None  # rank 0: the x-z plane of D^zz and D^rr
        values = None
        if self.field is not None:  # collective gathers of D^zz and D^rr
            values = {f.name: self.grid.values(_on(problem.V, f)) for f in self._components}
        self.slicer = self.view = None  # rank 0
        if problem.comm.rank == 0:
            self.slicer = Slicer(self.grid.grid)
            if values is not None:
                self.D = self.slicer.xz(values)
            b = self.grid.grid.bounds
            self.view = View(radius=float(b[1]), top=float(b[5]), face=problem.config.model.z0 / 2)

    def _diffusion_functions(self, field) -> list:
        self._components = components(field.tensor, field.zz)
        self._zz_what = "D^zz" if field.zz is None else "D^zz across the lattice's planes (as solved)"
        return [field.tensor, *self._components]

    def _frame(self, t, h, values) -> tuple:
        return (t, h, self.slicer.xz({"u": values}), self.slicer.mid({"u": values}))

    def media(self, directory: Path, stem: str, title: str) -> dict:
        """Render the animation and the pictures into ``directory`` (rank 0, needs a display);
        the paths written, as ``{"animation": path, "images": [paths]}``."""
        gif, panels = directory / f"{stem}.gif", directory / f"{stem}_slices.png"
        animation(self.frames, self.view, gif, title)
        slices(self.frames, self.view, panels, title)
        written = {"animation": gif, "images": [panels]}
        if self.D is not None:
            written["images"].append(directory / f"{stem}_D.png")
            diffusion(self.D, self.view, written["images"][-1], title, self._zz_what)
        return written


def components(tensor, zz=None):
    """D^zz and D^rr = e_r . D . e_r (D^xx on the axis) of a 3x3 tensor Function, as scalar
    Functions of the same degree (local: each rank its own and its ghost dofs). ``zz``: the
    D^zz the solve uses when it is not the tensor's own (diffusion.zz = "planes", a DG1
    Function, taken at the vertices from one of the cells that meet there)."""
    from dolfinx import fem

    mesh = tensor.function_space.mesh
    degree = tensor.function_space.ufl_element().basix_element.degree
    S = fem.functionspace(mesh, ("Lagrange", degree))
    x = S.tabulate_dof_coordinates()
    D = tensor.x.array.reshape(-1, 3, 3)
    assert len(D) == len(x), "tensor and scalar spaces of one degree share their dof layout"
    r2 = x[:, 0] ** 2 + x[:, 1] ** 2
    axis = r2 < 1e-18
    r2 = np.where(axis, 1.0, r2)
    rr = (x[:, 0] ** 2 * D[:, 0, 0] + 2 * x[:, 0] * x[:, 1] * D[:, 0, 1] + x[:, 1] ** 2 * D[:, 1, 1]) / r2
    zz_f, rr_f = fem.Function(S, name="D_zz"), fem.Function(S, name="D_rr")
    if zz is None:
        zz_f.x.array[:] = D[:, 2, 2]
    else:
        zz_f.interpolate(zz)
    rr_f.x.array[:] = np.where(axis, D[:, 0, 0], rr)
    return zz_f, rr_f


def _on(V, f):
    """``f`` in the space V (itself when it is already there): the values RankZeroGrid gathers."""
    from dolfinx import fem

    if f.function_space == V:
        return f
    g = fem.Function(V, name=f.name)
    g.interpolate(f)
    return g
