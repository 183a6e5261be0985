"""PyVista renders: the D(x, y) surface and the spreading polarisation (nm); 3D in :mod:`app.render.render3d`.

Rendering happens on rank 0 only. Distributed DOLFINx data reach it through
:class:`RankZeroGrid`, whose gathers are collective and are called on every rank. VTK here
needs an X server; when there is no DISPLAY, :func:`ensure_display` starts a private Xvfb
(ended at exit, and by the kernel if its rank dies), so no ``xvfb-run`` is needed. Without Xvfb the renders are skipped with
one line of warning and everything else is still written.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from app.runtime import compat
from app.runtime.output import atomic_write

_xvfb: subprocess.Popen | None = None


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies, however it dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _display_answers() -> bool:
    """Does the X server of DISPLAY accept a connection? (VTK aborts the process if not.)"""
    try:
        x11 = ctypes.CDLL("libX11.so.6")
    except OSError:
        return True  # no Xlib to ask: leave it to VTK
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    if not display:
        return False
    x11.XCloseDisplay(display)
    return True


def ensure_display() -> str | None:
    """A usable DISPLAY (starting Xvfb if there is none, or if it does not answer), or None.

    Called before every window: an X server that went away (the private Xvfb killed from
    outside, a stale DISPLAY) is replaced, with a line on stderr, instead of VTK aborting.
    """
    global _xvfb
    if _xvfb is not None and _xvfb.poll() is not None:
        print(f"render: the private Xvfb ended (exit code {_xvfb.returncode}); starting another", file=sys.stderr)
        os.environ.pop("DISPLAY", None)
        _xvfb = None
    if os.environ.get("DISPLAY"):
        if _display_answers():
            return os.environ["DISPLAY"]
        print(f"render: the X server of DISPLAY={os.environ['DISPLAY']} does not answer; starting Xvfb", file=sys.stderr)
        os.environ.pop("DISPLAY")
    exe = shutil.which("Xvfb")
    if exe is None:
        return None
    r, w = os.pipe()
    _xvfb = subprocess.Popen(
        # -maxclients: VTK aborted 1 run in 5 mid-job with "bad X server connection" while the
        # server was up; suspected: the windows of a long job hold more X connections than the
        # default 256 (not proven; with 2048, 6 runs of 6 passed)
        [exe, "-displayfd", str(w), "-screen", "0", "1600x1200x24", "-nolisten", "tcp", "-maxclients", "2048"],
        pass_fds=(w,),
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    buf = b""
    while not buf.endswith(b"\n"):
        c = os.read(r, 1)
        if not c:
            break
        buf += c
    os.close(r)
    if not buf.strip():
        return None
    os.environ["DISPLAY"] = ":" + buf.decode().strip()
    atexit.register(_xvfb.terminate)
    return os.environ["DISPLAY"]


def available() -> bool:
    """True if PyVista can render here (rank-local: call it on rank 0)."""
    try:
        import pyvista  # noqa: F401
    except ImportError:
        return False
    return ensure_display() is not None


class RankZeroGrid:
    """The mesh of a Lagrange space (triangles in 2D, tetrahedra in 3D), and values of
    functions on it, gathered to rank 0: one point per global degree of freedom.

    Construction and :meth:`values` are collective.
    """

    def __init__(self, V):
        from dolfinx import plot

        comm = V.mesh.comm
        self.comm = comm
        imap = V.dofmap.index_map
        n_owned = imap.size_local
        tdim = V.mesh.topology.dim
        n_cells = V.mesh.topology.index_map(tdim).size_local
        topology, cell_types, x = plot.vtk_mesh(V, np.arange(n_cells, dtype=np.int32))
        l2g = imap.local_to_global(np.arange(n_owned + imap.num_ghosts, dtype=np.int32))
        # (n, a, b, ...) per cell: n = 3 for triangles, 4 for tetrahedra (more for P2, P3)
        cells = topology.reshape(-1, 1 + V.dofmap.dof_layout.num_dofs)
        cells = np.column_stack([cells[:, 0], l2g[cells[:, 1:]]])
        self.n_global = imap.size_global
        self._owned_global = l2g[:n_owned]
        self._n_owned = n_owned
        parts = comm.gather((cells, cell_types, self._owned_global, x[:n_owned]), root=0)
        self.grid = None
        if comm.rank == 0:
            import pyvista as pv

            points = np.zeros((self.n_global, 3))
            for _, _, gidx, pts in parts:
                points[gidx] = pts
            # dof coordinates are pushed forward from the reference cell, with round-off
            # (1e-17 nm): a point on a plane of symmetry (the mid-plane z = 0) is put on it
            points[np.abs(points) <= 1e-12 * np.abs(points).max()] = 0.0
            all_cells = np.concatenate([p[0] for p in parts]).ravel()
            all_types = np.concatenate([p[1] for p in parts])
            self.grid = pv.UnstructuredGrid(all_cells, all_types, points)

    def values(self, f) -> np.ndarray | None:
        """Point values of the P1 function ``f`` in the grid's order on rank 0, else None."""
        parts = self.comm.gather((self._owned_global, f.x.array[: self._n_owned].copy()), root=0)
        if self.comm.rank != 0:
            return None
        out = np.zeros(self.n_global)
        for gidx, vals in parts:
            out[gidx] = vals
        return out


def _plotter(window_size):
    import pyvista as pv

    if ensure_display() is None:
        raise RuntimeError("render: no X server answers and Xvfb could not start")

    pl = pv.Plotter(off_screen=True, window_size=window_size)
    pl.set_background("white")
    return pl


def surface(x, y, D, path: str | Path, title: str, scale: str = "linear", bulk: float | None = None) -> None:
    """3D surface of D(x, y) on a regular grid, warped by value (or by log10 D), with a colour bar."""
    import pyvista as pv

    X, Y = np.meshgrid(x, y, indexing="ij")
    height = np.log10(D) if scale == "log" else D
    grid = pv.StructuredGrid(X, Y, height)
    grid.point_data["D (nm^2/s)"] = D.ravel(order="F")
    span = float(x.max() - x.min())
    zspan = float(height.max() - height.min()) or 1.0
    pl = _plotter((1100, 850))
    pl.add_mesh(
        grid,
        scalars="D (nm^2/s)",
        cmap="viridis",
        log_scale=(scale == "log"),
        smooth_shading=True,
        scalar_bar_args=dict(title="D (nm^2/s)", color="black", vertical=True, fmt="%.3g"),
    )
    zscale = 0.6 * span / zspan
    pl.set_scale(zscale=zscale)
    ztitle = "log10 D (nm^2/s)" if scale == "log" else "D (nm^2/s)"
    # no tick labels on the scaled z axis (PyVista 0.49 labels it in scaled coordinates,
    # which misleads): the colour bar gives D
    pl.show_grid(xtitle="x (nm)", ytitle="y (nm)", ztitle=ztitle, color="black", font_size=10, show_zlabels=False)
    pl.add_text(title, font_size=12, color="black")
    if bulk is not None:
        pl.add_text(f"bulk D = {bulk:.2f} nm^2/s", position="lower_left", font_size=9, color="black")
    # from above and in front, like the article's figures
    zmid = 0.5 * (height.max() + height.min()) * zscale
    direction = np.array([-0.45, -0.75, 0.55])
    direction /= np.linalg.norm(direction)
    pl.camera_position = [tuple(np.array([0.0, 0.0, zmid]) + 3.0 * span * direction), (0.0, 0.0, zmid), (0, 0, 1)]
    _screenshot(pl, path)


def _screenshot(pl, path) -> None:
    img = pl.screenshot(return_img=True)
    pl.close()
    import imageio.v3 as iio

    atomic_write(path, lambda f: f.write(iio.imwrite("<bytes>", img, extension=".png")), binary=True)


def animation(
    grid,
    frames: list[tuple[float, float, np.ndarray]],
    path: str | Path,
    title: str,
    view_radius: float = 150.0,
) -> None:
    """GIF of u(x, y, t): one frame per (t, h/h0, values), fixed colour scale [0, 1], time stamp."""
    import imageio.v3 as iio

    grid = grid.copy()
    grid.point_data["u"] = frames[0][2]
    pl = _plotter((640, 560))
    pl.add_mesh(
        grid,
        scalars="u",
        cmap="YlOrRd",
        clim=[0.0, 1.0],
        lighting=False,
        scalar_bar_args=dict(title="polarisation u = <I_z>/<I_z>(0, 0, 0)", color="black", fmt="%.1f"),
    )
    pl.view_xy()
    pl.camera.parallel_projection = True
    pl.camera.parallel_scale = view_radius
    pl.add_text(title, font_size=11, color="black", position="upper_left")
    pl.show(auto_close=False)  # initialise the off-screen window before repeated screenshots
    images = []
    for t, h, values in frames:
        grid.point_data["u"][:] = values
        pl.add_text(f"t = {t:.3g} s   h/h0 = {h:.3f}   (view: |x|, |y| <= {view_radius:g} nm)",
                    position="lower_left", font_size=10, color="black", name="stamp")  # fmt: skip
        pl.render()
        images.append(pl.screenshot(return_img=True))
    pl.close()
    data = iio.imwrite("<bytes>", np.stack(images), extension=".gif", duration=180, loop=0)
    atomic_write(path, lambda f: f.write(data), binary=True)


class Recorder:
    """VTX files of u(t) and D, and rank 0's frames for the animation, during one solve (2D).

    Construction and calls are collective; :meth:`media` is rank 0's. :mod:`app.render.render3d`
    subclasses it: :meth:`_diffusion_functions` (what of D goes into VTX) and :meth:`_frame`
    (what rank 0 keeps of each output) are what differ.
    """

    def __init__(self, problem, base: Path):
        from dolfinx import fem

        comm = problem.comm
        self.problem = problem
        self.grid = RankZeroGrid(problem.V)
        self.u = fem.Function(problem.V, name="u")
        self.frames: list[tuple] = []
        self.paths = [base.with_name(base.name + "_u.bp"), base.with_name(base.name + "_D.bp")]
        self.writer = compat.vtx_writer(comm, self.paths[0], [self.u])
        self.field = getattr(problem, "lattice_field", None)
        if self.field is not None:
            with compat.vtx_writer(comm, self.paths[1], self._diffusion_functions(self.field)) as w:
                w.write(0.0)
        else:
            self.paths.pop()
        self.h0 = problem.overhauser()

    def _diffusion_functions(self, field) -> list:
        return [field.scalar, field.tensor]

    def _frame(self, t: float, h: float, values: np.ndarray) -> tuple:
        return (t, h, values)

    def __call__(self, t, u):
        self.u.x.array[:] = u.x.array
        self.writer.write(t)
        h = self.problem.overhauser(u.x.petsc_vec) / self.h0
        values = self.grid.values(u)
        if values is not None:
            self.frames.append(self._frame(t, h, values))

    def close(self):
        self.writer.close()

    def media(self, directory: Path, stem: str, title: str) -> dict:
        """Render the animation into ``directory`` (rank 0, needs a display); ``{"animation": path}``."""
        gif = directory / f"{stem}.gif"
        animation(self.grid.grid, self.frames, gif, title)
        return {"animation": gif}
