"""The explicit set-up pipeline shared by every discretisation: ordered stages, each timed,
and the choice of the problem (the discretisation) that solves a configuration."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def run_stages(stages: Iterable[Callable[[], None]], timings: dict[str, float]) -> None:
    """Call each ``create_<name>`` stage in order; its wall time (s) goes to ``timings[name]``."""
    for stage in stages:
        t0 = time.perf_counter()
        stage()
        timings[stage.__name__.removeprefix("create_")] = time.perf_counter() - t0


def make_problem(cfg, comm=None):
    """The problem that solves ``cfg``: the lattice master equation, or the finite elements."""
    from mpi4py import MPI

    comm = comm or MPI.COMM_WORLD
    if cfg.diffusion.form == "master":
        from app.master import MasterProblem

        return MasterProblem(cfg, comm)
    from app.problem import DiffusionProblem

    return DiffusionProblem(cfg, comm)
