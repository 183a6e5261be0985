"""``app.solve(config)``: one configuration, solved as the CLI's ``--single`` solves it.

Pre-flight size check, the problem on as many ranks as it is worth
(:mod:`app.numerics.fewer_ranks`), set-up, time loop, the error estimate if asked for, and the
public :class:`app.numerics.result.Result`, complete on every rank of ``comm``.
"""

from __future__ import annotations

import time

from mpi4py import MPI

from app.config import Config
from app.numerics import budget, error_estimate, fewer_ranks
from app.numerics.discretisation import solve_once
from app.numerics.result import Result


def solve(
    config: Config,
    comm: MPI.Comm | None = None,
    *,
    progress: bool | None = None,
    error_estimate: bool | None = None,
    times=None,
) -> Result:
    """Solve ``config`` (collective on ``comm``, default MPI.COMM_WORLD; serial without mpirun).

    Any form and geometry. ``progress`` (default ``output.progress``) shows a bar on rank 0;
    ``error_estimate`` (default ``solver.error_estimate``) adds the two companion solves'
    estimate. ``times`` (s, increasing, starting at 0) are the output times instead of
    ``solver.output_times()``; the solve then ends at the last of them. Raises
    :class:`app.config.ConfigError` (one line) for a job over ``solver.max_memory_gb``.
    """
    comm = comm or MPI.COMM_WORLD
    budget.check(config)
    estimate = config.solver.error_estimate if error_estimate is None else error_estimate
    t_start = time.perf_counter()
    mine, _, why = fewer_ranks.solving_ranks(config, comm)
    result = fewer_ranks.on_ranks(comm, mine, lambda sub: _solve(config, sub, t_start, progress, estimate, times))
    result.ranks, result.fewer_ranks_because = comm.size, why or None
    return result


def _solve(config: Config, comm: MPI.Comm, t_start: float, progress: bool | None, estimate: bool, times) -> Result:
    result, problems = solve_once(config, comm, progress=progress, times=times)
    if estimate:
        result.error_estimate = error_estimate.estimate(config, result.h, comm, times=times)
    result.ranks_solving = comm.size
    result.wall_total_s = time.perf_counter() - t_start
    fields = [p.lattice_field for p in problems if getattr(p, "lattice_field", None) is not None]
    if fields:  # collective: every rank has them
        result.lattice_field = {
            "cache": [c for f in fields for c in comm.allgather(f.cache)],
            "points_evaluated": sum(comm.allreduce(f.evaluated) for f in fields),
            "points_owned": sum(comm.allreduce(f.owned) for f in fields),
            "wall_s": result.stats["wall_setup_s"]["diffusion"],
        }
    return result
