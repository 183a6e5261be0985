"""The one time stepper: M u' + K u = s(t) b with a PETSc TS, for every discretisation.

The stepper knows nothing of where its operator came from (PETSc's TS tutorials'
pattern): the finite-element problem (:mod:`app.numerics.fem`) and the lattice master
equation (:mod:`app.numerics.master`) each supply

- ``M`` and ``K``, assembled PETSc matrices with the same nonzero pattern (the mass and
  stiffness matrices; for the lattice, diag(orbit sizes) and minus the weighted rate
  matrix),
- the state ``u`` (a PETSc Vec, advanced in place), and
- a weight vector ``w`` for the observable h = w . u (reported as h(t)/h(0)),

and the stepper integrates from 0 with adaptive steps (BDF3 by default), solving each
step's linear system by Krylov + hypre BoomerAMG. The Jacobian shift M + K is formed
from the stored matrices, never re-assembled: by a copy and an AXPY, or, when M is
diagonal (the lattice; a lumped mass), by rewriting J's diagonal alone (O(unknowns), where
the copy costs O(nonzeros) every step); the AMG hierarchy is
rebuilt only when the shift has moved by more than ``solver.pc_rebuild_ratio`` since it
was built. Output times are hit by the TS's own interpolation, without shortening steps.
Units: s.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from app.config import Solver
from app.runtime.progress import bar as progress_bar

_prefix_counter = itertools.count()


@dataclass
class Trajectory:
    """What the stepper produced. ``h`` is h(t)/h(0) at ``times`` (s), or h(t)/h_ref when the
    solve was given one; ``h_raw`` is h(t) = w . u itself. The problem turns it into the
    public :class:`app.numerics.result.Result`."""

    times: np.ndarray
    h: np.ndarray
    stats: dict = field(default_factory=dict)
    h_raw: np.ndarray | None = None


def _reason_name(enum, value: int) -> str:
    """The name of a PETSc converged-reason value, e.g. DIVERGED_ITS."""
    names = [k for k in dir(enum) if not k.startswith("_") and getattr(enum, k) == value]
    return names[0] if names else str(value)


#: BoomerAMG for a symmetric operator (finite elements and the lattice): HMIS coarsening,
#: extended+i interpolation with at most four weights a row, and a Chebyshev smoother
#: (matrix-vector products where the default hybrid Gauss-Seidel sweeps row by row).
#: Whole process, 2 ranks, alternated with BoomerAMG's defaults (docs/performance.md): the
#: 2D disk with 1.8e5 dofs 25.6 -> 17.1 s, the 3D slab R = 60 nm 44.5-50.0 -> 32.9-33.2 s.
#: A non-symmetric operator (the paper form, GMRES) keeps BoomerAMG's defaults.
SYMMETRIC_AMG = {
    "pc_hypre_boomeramg_coarsen_type": "HMIS",
    "pc_hypre_boomeramg_interp_type": "ext+i",
    "pc_hypre_boomeramg_P_max": 4,
    "pc_hypre_boomeramg_truncfactor": 0.3,
    "pc_hypre_boomeramg_relax_type_all": "Chebyshev",
}


def default_options(solver: Solver, symmetric: bool) -> dict:
    """The stepper's own PETSc options (no prefix); a discretisation's and then
    ``solver.petsc_options`` are laid over them."""
    opts = {
        "ts_type": solver.ts_type,
        "ts_adapt_type": "basic",
        "ts_max_snes_failures": -1,
        "ts_max_steps": 1_000_000,
        "snes_type": "ksponly",
        "ksp_type": "cg" if symmetric else "gmres",
        "ksp_rtol": 1e-10,
        "pc_type": "hypre",
        "pc_hypre_type": "boomeramg",
        **(SYMMETRIC_AMG if symmetric else {}),
    }
    if solver.ts_type == "bdf":
        opts["ts_bdf_order"] = 3
    return opts


def release_garbage(comm: MPI.Comm) -> None:
    """Free the PETSc objects of problems no longer referenced; collective on ``comm``.

    petsc4py destroys an object that lives on more than one rank only in
    ``garbage_cleanup`` (destruction is collective, and Python frees objects at different
    moments on different ranks), so without this every finished solve of a figure, sweep
    or error estimate kept its matrices until exit (a lattice disk of R = 150 nm on 2 ranks:
    33 MB more per solve). On one rank objects are freed at once and nothing is done.
    """
    if comm.size > 1:
        gc.collect()
        PETSc.garbage_cleanup(comm)


class TimeStepper:
    """PETSc TS for M u' + K u = s(t) b (linear, constant M and K).

    Parameters
    ----------
    comm:
        The communicator of M, K and u.
    M, K:
        Assembled matrices, M nonsingular, same nonzero pattern (K's pattern contains M's).
    u:
        Initial state; advanced in place by :meth:`solve`.
    weight:
        h = weight . u.
    solver:
        ``[solver]`` settings (tolerances, TS type, PETSc options laid over the defaults).
    symmetric:
        M and K symmetric: CG instead of GMRES by default.
    source:
        Optional ``(b, s)``: a Vec b and a function s(t) adding s(t) b to the right-hand side.
    mass_pattern:
        How M's nonzero pattern relates to K's (SAME for finite elements, SUBSET for a
        diagonal M).
    diagonal_mass:
        M is diagonal (its off-diagonal entries, if stored, are zero) and K has every
        diagonal entry: J = K + shift M differs from K on the diagonal alone, which is all
        that is rewritten when the shift changes.
    K_pc:
        Optional stand-in for K in the preconditioner, P = K_pc + shift M (a sparser
        operator with the same action on smooth states, for a cheaper AMG); default K.
    defaults:
        PETSc options of the discretisation laid over the stepper's own defaults (and
        under ``solver.petsc_options``).
    total:
        Optional weight of the total polarisation (total . u): its value at the start and
        the end, and the smallest u at the output times, go into the statistics (a
        non-physical state is reported, not hidden).
    layer:
        Optional weight of the polarisation in the dot layer (needs ``total``): at every
        output time the shares of the initial total in the layer, in the host crystal and
        lost through the rim go into ``stats["budget"]``.
    scale:
        The scale of u the absolute tolerance is relative to (``solver.atol`` times it);
        default max |u| at the start. A state that starts at 0 (the pump phase) needs one.
    """

    def __init__(
        self,
        comm: MPI.Comm,
        M: PETSc.Mat,
        K: PETSc.Mat,
        u: PETSc.Vec,
        weight: PETSc.Vec,
        solver: Solver,
        *,
        symmetric: bool = True,
        source: tuple[PETSc.Vec, Callable[[float], float]] | None = None,
        mass_pattern=PETSc.Mat.Structure.SAME_NONZERO_PATTERN,
        diagonal_mass: bool = False,
        K_pc: PETSc.Mat | None = None,
        defaults: dict | None = None,
        total: PETSc.Vec | None = None,
        layer: PETSc.Vec | None = None,
        scale: float | None = None,
    ):
        self.comm = comm
        self.M, self.K, self.u, self.w = M, K, u, weight
        self.solver = solver
        self.symmetric = symmetric
        self.mass_pattern = mass_pattern
        self.b, self._source_time = source if source is not None else (None, None)
        self._defaults = dict(defaults or {})
        self.total = total
        self.layer = layer
        self.scale = scale
        self.K_pc = K if K_pc is None else K_pc
        self.J = K.duplicate(copy=True)
        self.P = self.K_pc.duplicate(copy=True)
        # diag(K), diag(M) and a work vector: J's diagonal for any shift, the rest of J untouched
        self._diagonals = (K.getDiagonal(), M.getDiagonal(), K.createVecLeft()) if diagonal_mass else None
        self._shift = None
        self._pc_shift = None
        self.pc_builds = 0
        self._create_ts()

    def petsc_defaults(self) -> dict:
        """The named PETSc defaults; ``solver.petsc_options`` is laid over them."""
        return default_options(self.solver, self.symmetric)

    def _create_ts(self) -> None:
        s = self.solver
        self.options_prefix = f"overhauser{next(_prefix_counter)}_"
        opts = PETSc.Options()
        merged = {**self.petsc_defaults(), **self._defaults, **s.petsc_options}
        if merged.get("pc_type") != "hypre":  # a factorisation: no AMG options, unless the user's
            merged = {k: v for k, v in merged.items() if not k.startswith("pc_hypre") or k in s.petsc_options}
        self.petsc_options = merged
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
        umax = self.u.norm(PETSc.NormType.INFINITY) if self.scale is None else self.scale
        ts.setTolerances(rtol=s.rtol, atol=s.atol * max(umax, np.finfo(float).tiny))
        ts.setFromOptions()
        for key in self.petsc_options:
            opts.delValue(self.options_prefix + key)
        self.ts = ts

    # --- TS callbacks -------------------------------------------------------------------

    def _ifunction(self, ts, t, u, udot, F):
        self.M.mult(udot, F)
        self.K.multAdd(u, F, F)
        if self.b is not None:
            F.axpy(-self._source_time(t), self.b)

    def _ijacobian(self, ts, t, u, udot, shift, J, P):
        if shift != self._shift:
            if self._diagonals is not None:  # J's off-diagonal part is K's, set once
                k_diag, m_diag, d = self._diagonals
                d.waxpy(shift, m_diag, k_diag)
                J.setDiagonal(d, addv=PETSc.InsertMode.INSERT_VALUES)
            else:
                self.K.copy(J, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
                J.axpy(shift, self.M, structure=self.mass_pattern)
            self._shift = shift
        # P (what the AMG hierarchy is built from) is a separate matrix. An AMG built for
        # shift s0 preconditions shift M + K well while shift / s0 stays within [1/q, q];
        # only then is P left untouched, and PETSc keeps the hierarchy (PCSetUp sees an
        # unchanged P). Otherwise P is refreshed and the hierarchy rebuilt.
        q = self.solver.pc_rebuild_ratio
        s0 = self._pc_shift
        if s0 is None or not (1.0 / q <= shift / s0 <= q):
            if self.K_pc is self.K:
                J.copy(P, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            else:
                self.K_pc.copy(P, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
                P.axpy(shift, self.M, structure=self.mass_pattern)
            self._pc_shift = shift
            self.pc_builds += 1
        return True

    # --- time integration ---------------------------------------------------------------

    def observe(self, vec: PETSc.Vec | None = None) -> float:
        """h = w . u for the state ``vec`` (default u); collective."""
        return self.w.dot(self.u if vec is None else vec)

    def solve(
        self,
        times,
        progress: bool = False,
        on_output: Callable[[float, PETSc.Vec], None] | None = None,
        desc: str = "solve",
        h_ref: float | None = None,
        label: str = "h/h0",
    ) -> Trajectory:
        """Integrate to the last of ``times``; h(t)/h(0) at each of them, and statistics.

        ``h_ref``: normalise h by it instead of by h(0) (a state that starts at 0); ``label``
        names the normalised h in the progress bar.
        ``on_output(t, vec)`` is called at every output time with the state there
        (collectively, on every rank). Progress (tqdm) on rank 0 only.
        """
        release_garbage(self.comm)  # the problems solved before this one on this comm
        times = np.asarray(times, dtype=float)
        ts = self.ts
        ts.setMaxTime(float(times[-1]))
        h = np.full(times.shape, np.nan)
        h_raw = np.full(times.shape, np.nan)
        h0 = self.observe() if h_ref is None else h_ref
        work = self.u.duplicate()
        pending = iter(enumerate(times))
        state = {"next": next(pending, None)}

        bar = None
        if progress and self.comm.rank == 0:
            bar = progress_bar(len(times), desc, "out")

        u0_max = self.u.norm(PETSc.NormType.INFINITY)
        integral0 = self.total.dot(self.u) if self.total is not None else None
        state["min_u"] = np.inf
        shares = []

        def record(i, t_out, vec):
            h_raw[i] = self.observe(vec)
            h[i] = h_raw[i] / h0
            state["min_u"] = min(state["min_u"], vec.min()[1])
            if self.layer is not None:
                total, layer = self.total.dot(vec) / integral0, self.layer.dot(vec) / integral0
                shares.append((layer, total - layer, 1.0 - total))
            if on_output is not None:
                on_output(t_out, vec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"t={t_out:.3g} s {label}={h[i]:.4f}", refresh=False)

        ksp = ts.getSNES().getKSP()

        def monitor(ts_, step, t, u):
            reason = ksp.getConvergedReason()
            # the step's linear solve failed (or stopped at its iteration limit without a
            # tolerance, which only a direct solve may): the step is not to be trusted
            stopped = reason == PETSc.KSP.ConvergedReason.CONVERGED_ITS and ksp.getType() != "preonly"
            if step > 0 and (reason < 0 or stopped):
                state["failure"] = (
                    f"the linear solve of step {step} (t = {t:.4g} s) did not converge "
                    f"(KSP reason {_reason_name(PETSc.KSP.ConvergedReason, reason)}, "
                    f"{ksp.getIterationNumber()} iterations of {ksp.getType()}/{ksp.getPC().getType()})"
                )
                raise StopIteration
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
            ts.solve(self.u)
        except PETSc.Error:
            if "failure" not in state:  # PETSc gave up (e.g. every retry of a step rejected)
                state["failure"] = (
                    f"the time stepper failed at t = {ts.getTime():.4g} s after {ts.getStepNumber()} steps "
                    f"({_reason_name(PETSc.TS.ConvergedReason, ts.getConvergedReason())}; last linear solve: "
                    f"KSP reason {_reason_name(PETSc.KSP.ConvergedReason, ksp.getConvergedReason())} after "
                    f"{ksp.getIterationNumber()} iterations)"
                )
        finally:
            ts.cancelMonitor()
            if bar is not None:
                bar.close()
        if "failure" in state:
            raise RuntimeError(state["failure"])
        t_reached, t_end = float(ts.getTime()), float(times[-1])
        if t_reached < t_end * (1 - 1e-9):  # a truncated run is an error, never a NaN CSV
            raise RuntimeError(
                f"the time stepper stopped at t = {t_reached:.4g} s, before t_end = {t_end:g} s "
                f"({_reason_name(PETSc.TS.ConvergedReason, ts.getConvergedReason())} after "
                f"{ts.getStepNumber()} steps; the limit is ts_max_steps)"
            )
        wall = time.perf_counter() - t0
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
            "dofs": int(self.u.getSize()),
            "ranks": int(self.comm.size),
            "u0_max": float(u0_max),
            "min_u_over_outputs": float(state["min_u"]),
            "petsc_options": {k: str(v) for k, v in self.petsc_options.items()},
        }
        if self.total is not None:
            stats["integral_start"] = float(integral0)
            stats["integral_end"] = float(self.total.dot(self.u))
        if self.layer is not None:
            b = np.array(shares)
            stats["budget"] = {"t_s": times, "layer": b[:, 0], "host": b[:, 1], "lost_through_rim": b[:, 2]}
        if ts.getConvergedReason() < 0:
            raise RuntimeError(f"time stepper failed (TS converged reason {ts.getConvergedReason()})")
        return Trajectory(times=times, h=h, stats=stats, h_raw=h_raw)
