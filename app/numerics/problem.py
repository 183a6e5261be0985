"""The problem base that both discretisations extend: an explicit, timed set-up pipeline and
the shared solve.

A discretisation (the finite elements, :mod:`app.numerics.fem`; the lattice master equation,
:mod:`app.numerics.master`) lists its ``create_<name>`` stages in :meth:`Problem.stages`, the
last of which makes ``self.stepper`` (:class:`app.numerics.stepper.TimeStepper`) from its
matrices, state ``self.state`` and observable weight. ``setup()`` runs them in order and
times each; ``solve()`` integrates and returns the public :class:`app.numerics.result.Result`.

The pump phase (MODEL.md 12, ``[pump]``): ``pump()`` integrates M u' + (K + R) u = b from
u = 0 to ``pump.t_pump`` with the discretisation's reaction R and source b
(:meth:`Problem.pump_operator`), leaving the pumped state in ``state``; ``restart()`` then
makes the decay's stepper from it (its tolerances scaled to it), and ``solve(h_ref=...)``
integrates the decay. :func:`app.numerics.discretisation.solve_once` runs the two phases.
Units: nm, s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from mpi4py import MPI
from petsc4py import PETSc

from app.config import Config
from app.numerics.result import Result
from app.numerics.stepper import Trajectory
from app.physics import pump as pump_physics

#: the pump phase's TS tolerances, relative to ``solver.rtol`` and ``solver.atol``. The pump's
#: local errors are not damped away as the decay's are, they add up: without diffusion (disk,
#: lumped mass, Gamma t_pump = 2 at the centre) the largest nodal error against the closed form
#: is 3.3e-4 at the solver's tolerances (20 steps), 6.9e-5 at a tenth (30 steps), 1.4e-5 at a
#: hundredth (46 steps); a tenth keeps it near the decay's time error (docs/pump.md)
PUMP_TOLERANCE = 0.1


def run_stages(stages: Iterable[Callable[[], None]], timings: dict[str, float]) -> None:
    """Call each ``create_<name>`` stage in order; its wall time (s) goes to ``timings[name]``."""
    for stage in stages:
        t0 = time.perf_counter()
        stage()
        timings[stage.__name__.removeprefix("create_")] = time.perf_counter() - t0


class Problem:
    """One configuration on one communicator: ``setup()`` then ``solve()``.

    Subclasses define :meth:`stages`, the PETSc state ``state`` and weight ``w`` (h = w . u),
    ``total`` (the weight of the integral of u), and may add statistics in :meth:`statistics`
    and wrap ``on_output`` in :meth:`output_callback`. For the pump phase they define
    :meth:`new_stepper`, :meth:`pump_operator`, ``r2`` (the weight of the integral of
    (x^2 + y^2) u) and :meth:`cuts`.
    """

    def __init__(self, config: Config, comm: MPI.Comm = MPI.COMM_WORLD, isotope: str | None = None):
        self.config = config
        self.comm = comm
        self.isotope = isotope  # the real crystal's isotope this problem carries; None: the article's nucleus
        self.timings: dict[str, float] = {}
        self._is_setup = False

    # --- pipeline -----------------------------------------------------------------------

    def stages(self) -> tuple[Callable[[], None], ...]:
        """The ``create_<name>`` methods of the set-up, in order."""
        raise NotImplementedError

    def setup(self):
        """Run the stages in order (each timed in ``timings``); returns the problem."""
        run_stages(self.stages(), self.timings)
        self._is_setup = True
        return self

    def create_time_stepper(self) -> None:
        """The last stage: the discretisation's stepper (``new_stepper``) for the decay."""
        self.stepper = self.new_stepper()
        self.ts = self.stepper.ts
        self.petsc_options = self.stepper.petsc_options

    # --- observables --------------------------------------------------------------------

    def overhauser(self, vec: PETSc.Vec | None = None) -> float:
        """h = w . u for the state ``vec`` (default the current state); collective."""
        return self.w.dot(self.state if vec is None else vec)

    def integral(self, vec: PETSc.Vec | None = None) -> float:
        """The integral (or lattice sum) of u for the state ``vec``; collective."""
        return self.total.dot(self.state if vec is None else vec)

    # --- time integration ---------------------------------------------------------------

    def output_callback(self, on_output: Callable | None) -> Callable | None:
        """``on_output`` as the stepper calls it, ``(t, Vec)``; the default passes the Vec."""
        return on_output

    def finish(self) -> None:
        """After the time loop (the finite elements update their ghost values)."""

    def statistics(self) -> dict:
        """Statistics of the discretisation added to the stepper's (after the set-up's times)."""
        return {}

    def solve(
        self, times=None, progress: bool | None = None, on_output: Callable | None = None, desc: str = "solve",
        h_ref: float | None = None,
    ) -> Result:
        """Integrate to the last of ``times`` (default log-spaced, ``Solver.output_times``).

        ``on_output(t, u)`` is called at every output time with the state (collectively, on
        every rank). Progress on rank 0 when ``progress`` (default ``output.progress``).
        Returns h(t)/h(0) at those times (h(t)/h_ref when given) and the statistics.
        """
        if not self._is_setup:
            self.setup()
        times = self.config.solver.output_times() if times is None else times
        if progress is None:
            progress = self.config.output.progress
        run = self.stepper.solve(times, progress=progress, on_output=self.output_callback(on_output), desc=desc,
                                 h_ref=h_ref)  # fmt: skip
        self.finish()
        stats = run.stats
        stats["wall_setup_s"] = dict(self.timings)
        stats.update(self.statistics())
        return Result(self.config, run.times, run.h, stats)

    # --- the pump phase (MODEL.md 12) -----------------------------------------------------

    def new_stepper(self, K=None, *, K_pc=None, source=None, scale: float | None = None, budget: bool = True,
                    solver=None):
        """A :class:`app.numerics.stepper.TimeStepper` on this problem's M and state, with the
        operator ``K`` (default the problem's own), a ``source`` ``(b, s)``, the tolerances'
        ``scale``, ``solver`` settings other than ``[solver]``'s and, with ``budget``, the dot
        layer's share at every output."""
        raise NotImplementedError

    def pump_operator(self):
        """``(K + R, b, K_pc + R or None)`` of the pump phase: the reaction R (the rate
        Gamma(x), :func:`app.physics.pump.rate`) and the source b = P_inf (Gamma, v)."""
        raise NotImplementedError

    def set_state(self, vec) -> None:
        """Copy ``vec`` (a state of a problem on the same mesh or lattice and ranks) into the state."""
        vec.copy(self.state)
        self.finish()

    def restart(self) -> None:
        """A new time stepper from the current state (its tolerances relative to it), t = 0."""
        self.stepper = self.new_stepper()
        self.ts = self.stepper.ts

    def pump(self, times=None, progress: bool | None = None, desc: str = "pump") -> Trajectory:
        """The pump phase from u = 0 to ``pump.t_pump`` (default output times:
        :func:`app.physics.pump.output_times`), at :data:`PUMP_TOLERANCE` times the solver's
        tolerances (atol relative to P_inf); the state is left at the pumped state.
        Returns the trajectory: ``h`` is h / h_sat (:meth:`saturation`), ``h_raw`` h = w . u."""
        if not self._is_setup:
            self.setup()
        cfg = self.config
        times = pump_physics.output_times(cfg) if times is None else times
        if progress is None:
            progress = cfg.output.progress
        K, b, K_pc = self.pump_operator()
        self.state.zeroEntries()
        self.finish()
        s = cfg.solver
        solver = s.model_copy(update={"rtol": s.rtol * PUMP_TOLERANCE, "atol": s.atol * PUMP_TOLERANCE})
        stepper = self.new_stepper(K, K_pc=K_pc, source=(b, _one), scale=cfg.pump.p_inf, budget=False, solver=solver)
        run = stepper.solve(times, progress=progress, desc=desc, h_ref=self.saturation(), label="h/h_sat")
        self.finish()
        run.stats["wall_setup_s"] = dict(self.timings)
        run.stats.update(self.statistics())
        return run

    def saturation(self) -> float:
        """h with every nucleus at P_inf: P_inf sum(w); collective."""
        return self.config.pump.p_inf * self.w.sum()

    def profile(self) -> dict:
        """The state's total, its (x^2 + y^2)-moment, u at the centre and its cuts
        (:meth:`cuts`), on every rank; collective."""
        return {"total": self.total.dot(self.state), "r2": self.r2.dot(self.state), **self.cuts()}

    def cuts(self) -> dict:
        """u at the centre (``u_centre``), and u against r in the mid-plane (``r_nm``,
        ``u_mid``; every node or site there) and, in 3D, against z on the axis (``z_nm``,
        ``u_axis``), on every rank; collective."""
        raise NotImplementedError


def _one(t: float) -> float:
    return 1.0
