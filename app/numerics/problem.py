"""The problem base that both discretisations extend: an explicit, timed set-up pipeline and
the shared solve.

A discretisation (the finite elements, :mod:`app.numerics.fem`; the lattice master equation,
:mod:`app.numerics.master`) lists its ``create_<name>`` stages in :meth:`Problem.stages`, the
last of which makes ``self.stepper`` (:class:`app.numerics.stepper.TimeStepper`) from its
matrices, state ``self.state`` and observable weight. ``setup()`` runs them in order and
times each; ``solve()`` integrates and returns the public :class:`app.numerics.result.Result`.
Units: nm, s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from mpi4py import MPI
from petsc4py import PETSc

from app.config import Config
from app.numerics.result import Result


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
    and wrap ``on_output`` in :meth:`output_callback`.
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

    def solve(self, times=None, progress: bool | None = None, on_output: Callable | None = None, desc: str = "solve") -> Result:
        """Integrate to the last of ``times`` (default log-spaced, ``Solver.output_times``).

        ``on_output(t, u)`` is called at every output time with the state (collectively, on
        every rank). Progress on rank 0 when ``progress`` (default ``output.progress``).
        Returns h(t)/h(0) at those times and the statistics.
        """
        if not self._is_setup:
            self.setup()
        times = self.config.solver.output_times() if times is None else times
        if progress is None:
            progress = self.config.output.progress
        run = self.stepper.solve(times, progress=progress, on_output=self.output_callback(on_output), desc=desc)
        self.finish()
        stats = run.stats
        stats["wall_setup_s"] = dict(self.timings)
        stats.update(self.statistics())
        return Result(self.config, run.times, run.h, stats)
