"""The diffusion problem on the disk, solved with a PETSc TS (nm, s).

One object, one explicit pipeline (``setup``):

    mesh -> spaces -> diffusion field -> forms -> time stepper -> observables

then ``solve()`` integrates from 0 to ``solver.t_end`` and records h(t)/h(0) at
log-spaced output times. The continuum forms are those of MODEL.md section 5:

- ``paper``:        (du/dt, v) + (D grad u, grad v) + (v grad D, grad u) = 0
- ``conservative``: (du/dt, v) + (D grad u, grad v) = 0
- ``tensor``:       (du/dt, v) + (D^ab grad u, grad v) = 0

Mass M and stiffness K are assembled once; the TS sees the implicit system
F(t, u, u') = M u' + K u (- s(t) b for a manufactured source) = 0 whose Jacobian
shift M + K is formed from M and K by a matrix copy and an AXPY, never re-assembled.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app import mesh as app_mesh
from app.config import Config
from app.observables import hyperfine_profile

_prefix_counter = itertools.count()


@dataclass
class Result:
    """What a solve produced. ``h`` is h(t)/h(0) at ``times`` (s)."""

    times: np.ndarray
    h: np.ndarray
    stats: dict = field(default_factory=dict)


def assemble_vector(form) -> PETSc.Vec:
    """Assemble a linear form and add the ghost contributions to their owners."""
    vec = fem_petsc.assemble_vector(fem.form(form))
    vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    return vec


def scalar_of(D):
    """Isotropic part of a diffusion coefficient: D itself, or the half-trace of a tensor."""
    return ufl.tr(D) / 2 if ufl.shape(D) == (2, 2) else D


def tensor_of(D):
    """Tensor form of a diffusion coefficient: D itself, or D * identity for a scalar."""
    return D if ufl.shape(D) == (2, 2) else D * ufl.Identity(2)


class DiffusionProblem:
    """Polarisation diffusion on the disk.

    Parameters
    ----------
    config:
        The validated configuration.
    comm:
        Communicator the mesh is distributed over.
    diffusion:
        D in nm^2/s: a number, a constant 2x2 array, a DOLFINx Function (scalar or 2x2
        tensor valued) on this problem's mesh, or a callable ``f(problem) -> Function``
        called once the mesh exists. ``None`` takes ``[diffusion]`` from the configuration.
    initial:
        Callable ``x -> u0`` for interpolation (x of shape (3, N)); default the Gaussian
        exp(-(x^2 + y^2) / r0^2).
    source:
        Optional manufactured source ``(g, s)``: a UFL expression g(x) and a function s(t),
        adding s(t) g to the right-hand side. For verification.
    mesh:
        Optional prebuilt ``(mesh, cell_tags, facet_tags)``; default the Gmsh disk.
    """

    def __init__(
        self,
        config: Config,
        comm: MPI.Comm = MPI.COMM_WORLD,
        *,
        diffusion=None,
        initial: Callable | None = None,
        source: tuple | None = None,
        mesh=None,
    ):
        self.config = config
        self.comm = comm
        self._diffusion_input = diffusion
        self._initial = initial
        self._source = source
        self._mesh_input = mesh
        self.timings: dict[str, float] = {}
        self._is_setup = False

    # --- pipeline -----------------------------------------------------------------------

    def setup(self) -> DiffusionProblem:
        for stage in (
            self.create_mesh,
            self.create_spaces,
            self.create_diffusion,
            self.create_forms,
            self.create_time_stepper,
            self.create_observables,
        ):
            t0 = time.perf_counter()
            stage()
            self.timings[stage.__name__.removeprefix("create_")] = time.perf_counter() - t0
        self._is_setup = True
        return self

    def create_mesh(self) -> None:
        if self._mesh_input is not None:
            self.mesh, self.cell_tags, self.facet_tags = self._mesh_input
        else:
            spec = app_mesh.DiskSpec.from_config(self.config)
            self.mesh, self.cell_tags, self.facet_tags = app_mesh.disk_mesh(
                spec, self.config.mesh.directory, self.comm
            )

    def create_spaces(self) -> None:
        self.V = fem.functionspace(self.mesh, ("Lagrange", self.config.mesh.degree))
        self.x = ufl.SpatialCoordinate(self.mesh)
        tdim = self.mesh.topology.dim
        self.mesh.topology.create_connectivity(tdim - 1, tdim)
        rim = dmesh.exterior_facet_indices(self.mesh.topology)
        self.bcs = []
        if self.config.domain.boundary == "dirichlet":
            dofs = fem.locate_dofs_topological(self.V, tdim - 1, rim)
            self.bcs = [fem.dirichletbc(PETSc.ScalarType(0), dofs, self.V)]
        self.u = fem.Function(self.V, name="u")

    def create_diffusion(self) -> None:
        """The diffusion field D (nm^2/s) as a UFL object: Constant or Function."""
        D = self._diffusion_input
        if D is None:
            d = self.config.diffusion
            if d.source == "constant":
                D = d.constant
            else:
                from app import field as app_field  # lattice field (DOLFINx side)

                D = app_field.lattice_diffusion(self)
        if callable(D) and not isinstance(D, fem.Function):
            D = D(self)
        if isinstance(D, fem.Function):
            self.D = D
        else:
            self.D = fem.Constant(self.mesh, np.asarray(D, dtype=PETSc.ScalarType))
        if ufl.shape(self.D) not in ((), (2, 2)):
            raise ValueError(f"diffusion: expected a scalar or a 2x2 tensor, got shape {ufl.shape(self.D)}")

    def create_forms(self) -> None:
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        form = self.config.diffusion.form
        if form == "paper":
            D = scalar_of(self.D)
            k = D * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
            if isinstance(self.D, fem.Function):
                k += v * ufl.inner(ufl.grad(D), ufl.grad(u)) * ufl.dx
        elif form == "conservative":
            k = scalar_of(self.D) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
        else:  # tensor
            k = ufl.inner(tensor_of(self.D) * ufl.grad(u), ufl.grad(v)) * ufl.dx
        self.symmetric = form != "paper"
        self.a_mass = fem.form(u * v * ufl.dx)
        self.a_stiff = fem.form(k)

        self.M = fem_petsc.assemble_matrix(self.a_mass, bcs=self.bcs, diagonal=1.0)
        self.M.assemble()
        self.K = fem_petsc.assemble_matrix(self.a_stiff, bcs=self.bcs, diagonal=0.0)
        self.K.assemble()
        self.J = self.K.duplicate(copy=True)
        self.P = self.K.duplicate(copy=True)
        self._shift = None
        self._pc_shift = None
        self.pc_builds = 0

        self.b = None
        if self._source is not None:
            g, self._source_time = self._source
            self.b = assemble_vector(g * v * ufl.dx)
            fem_petsc.set_bc(self.b, self.bcs)

        # initial state
        r0 = self.config.initial.r0
        init = self._initial or (lambda x: np.exp(-(x[0] ** 2 + x[1] ** 2) / r0**2))
        self.u.interpolate(init)
        if self.bcs:
            self.bcs[0].set(self.u.x.array)  # u = 0 on the rim, also at t = 0
        self.u.x.scatter_forward()

    def petsc_defaults(self) -> dict:
        """The named PETSc defaults; ``solver.petsc_options`` is laid over them."""
        s = self.config.solver
        opts = {
            "ts_type": s.ts_type,
            "ts_adapt_type": "basic",
            "ts_max_snes_failures": -1,
            "ts_max_steps": 1_000_000,
            "snes_type": "ksponly",
            "ksp_type": "cg" if self.symmetric else "gmres",
            "ksp_rtol": 1e-10,
            "pc_type": "hypre",
            "pc_hypre_type": "boomeramg",
        }
        if s.ts_type == "bdf":
            opts["ts_bdf_order"] = 3
        return opts

    def create_time_stepper(self) -> None:
        s = self.config.solver
        self.options_prefix = f"overhauser{next(_prefix_counter)}_"
        opts = PETSc.Options()
        self.petsc_options = {**self.petsc_defaults(), **s.petsc_options}
        for key, value in self.petsc_options.items():
            opts[self.options_prefix + key] = value

        ts = PETSc.TS().create(self.comm)
        ts.setOptionsPrefix(self.options_prefix)
        ts.setProblemType(PETSc.TS.ProblemType.LINEAR)
        self._F = self.K.createVecLeft()
        ts.setIFunction(self._ifunction, self._F)
        ts.setIJacobian(self._ijacobian, self.J, self.P)
        ts.setTime(0.0)
        ts.setTimeStep(s.dt0)
        ts.setMaxTime(s.t_end)
        ts.setExactFinalTime(PETSc.TS.ExactFinalTime.MATCHSTEP)
        umax = self.comm.allreduce(float(np.max(np.abs(self.u.x.array), initial=0.0)), op=MPI.MAX)
        ts.setTolerances(rtol=s.rtol, atol=s.atol * max(umax, np.finfo(float).tiny))
        ts.setFromOptions()
        for key in self.petsc_options:
            opts.delValue(self.options_prefix + key)
        self.ts = ts

    def create_observables(self) -> None:
        v = ufl.TestFunction(self.V)
        weight = hyperfine_profile(self.x, self.config.model.l0) * v * ufl.dx(metadata={"quadrature_degree": 6})
        self.w = assemble_vector(weight)
        self.total = assemble_vector(v * ufl.dx)

    # --- TS callbacks -------------------------------------------------------------------

    def _ifunction(self, ts, t, u, udot, F):
        self.M.mult(udot, F)
        self.K.multAdd(u, F, F)
        if self.b is not None:
            F.axpy(-self._source_time(t), self.b)

    def _ijacobian(self, ts, t, u, udot, shift, J, P):
        if shift != self._shift:
            self.K.copy(J, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            J.axpy(shift, self.M, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            self._shift = shift
        # P (what the AMG hierarchy is built from) is a separate matrix. An AMG built for
        # shift s0 preconditions shift M + K well while shift / s0 stays within [1/q, q];
        # only then is P left untouched, and PETSc keeps the hierarchy (PCSetUp sees an
        # unchanged P). Otherwise P is refreshed and the hierarchy rebuilt.
        q = self.config.solver.pc_rebuild_ratio
        s0 = self._pc_shift
        if s0 is None or not (1.0 / q <= shift / s0 <= q):
            J.copy(P, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            self._pc_shift = shift
            self.pc_builds += 1
        return True

    # --- observables --------------------------------------------------------------------

    def overhauser(self, vec: PETSc.Vec | None = None) -> float:
        """h = integral of exp(-r^2/l0^2) u dA for the state ``vec`` (default u); collective."""
        return self.w.dot(self.u.x.petsc_vec if vec is None else vec)

    def integral(self, vec: PETSc.Vec | None = None) -> float:
        """Integral of u over the disk, nm^2; collective."""
        return self.total.dot(self.u.x.petsc_vec if vec is None else vec)

    # --- time integration ---------------------------------------------------------------

    def solve(
        self, times=None, progress: bool | None = None, on_output: Callable | None = None, desc: str = "solve"
    ) -> Result:
        """Integrate to the last of ``times`` (default log-spaced, see Solver.output_times).

        ``on_output(t, u)`` is called at every output time with the state as a Function
        (collectively, on every rank). Returns h(t)/h(0) at those times and solver stats.
        """
        if not self._is_setup:
            self.setup()
        times = np.asarray(self.config.solver.output_times() if times is None else times, dtype=float)
        if progress is None:
            progress = self.config.output.progress
        ts = self.ts
        ts.setMaxTime(float(times[-1]))
        h = np.full(times.shape, np.nan)
        h0 = self.overhauser()
        work = self.u.x.petsc_vec.duplicate()
        out = fem.Function(self.V, name="u") if on_output else None
        pending = iter(enumerate(times))
        state = {"next": next(pending, None)}

        bar = None
        if progress and self.comm.rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=len(times), unit="out", desc=desc, leave=False, dynamic_ncols=True)

        def record(i, t_out, vec):
            h[i] = self.overhauser(vec) / h0
            if on_output is not None:
                vec.copy(out.x.petsc_vec)
                out.x.scatter_forward()
                on_output(t_out, out)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"t={t_out:.3g} s h/h0={h[i]:.4f}", refresh=False)

        def monitor(ts_, step, t, u):
            while state["next"] is not None and state["next"][1] <= t * (1 + 1e-12):
                i, t_out = state["next"]
                if step == 0 or abs(t_out - t) <= 1e-12 * max(abs(t), 1.0):
                    record(i, t_out, u)
                else:
                    ts_.interpolate(t_out, work)
                    record(i, t_out, work)
                state["next"] = next(pending, None)

        ts.setMonitor(monitor)
        t0 = time.perf_counter()
        try:
            ts.solve(self.u.x.petsc_vec)
        finally:
            ts.cancelMonitor()
            if bar is not None:
                bar.close()
        wall = time.perf_counter() - t0
        self.u.x.scatter_forward()
        work.destroy()
        steps = ts.getStepNumber()
        stats = {
            "steps_accepted": int(steps),
            "steps_rejected": int(ts.getStepRejections()),
            "linear_iterations": int(ts.getKSPIterations()),
            "preconditioner_builds": int(self.pc_builds),
            "snes_failures": int(ts.getSNESFailures()),
            "converged_reason": int(ts.getConvergedReason()),
            "t_final_s": float(ts.getTime()),
            "wall_solve_s": wall,
            "wall_per_step_s": wall / max(steps, 1),
            "wall_setup_s": dict(self.timings),
            "dofs": int(self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs),
            "ranks": int(self.comm.size),
        }
        if ts.getConvergedReason() < 0:
            raise RuntimeError(f"time stepper failed (TS converged reason {ts.getConvergedReason()})")
        return Result(times=times, h=h, stats=stats)
