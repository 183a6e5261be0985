"""A problem too small for the job's ranks is solved on fewer of them; the others sleep.

A small problem gains nothing from more ranks: on the default disk (6 155 unknowns) one rank
with a factorisation is faster than two with the AMG, and every extra rank busy-polls in
each of the many collectives of a time step, which costs a whole core beside any other
program (docs/performance.md, "shared cores"). So a single case (``--single``, a sweep's
case) with fewer than ``solver.min_unknowns_per_rank`` unknowns per rank runs on the first
``n`` ranks of its communicator, ``n = unknowns // min_unknowns_per_rank`` (at least 1). The
other ranks wait in a non-blocking barrier that they test every few milliseconds between
sleeps, so they leave their cores to the ranks that work, and then receive the result.
A failure on a working rank still ends the whole job (:mod:`app.runtime.failure`).

Cores that other programs keep busy count too (``solver.avoid_busy_cores``): two ranks
that share their cores with one other CPU-bound program are 2.4x slower than one rank,
because each synchronisation waits for the rank that lost its core. So on each node, while
all of the node's ranks sleep, its first rank measures how busy the CPUs the node's ranks
may run on (the union of their affinity masks: a batch system's allocation, or the whole
node) are over :data:`LOAD_WINDOW_S` (``/proc/stat``), and at most as many of the node's
ranks solve as those CPUs have cores left free (at least one). Other jobs on other CPUs of
a shared node do not count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from mpi4py import MPI

from app.numerics.budget import unknowns
from app.runtime.scheduler import sleeping_barrier

#: seconds over which the CPUs' load is measured (5 ticks of a 100 Hz kernel clock)
LOAD_WINDOW_S = 0.05


def cpu_times(stat: Path = Path("/proc/stat")) -> dict[int, tuple[int, int]]:
    """(all, idle) clock ticks of each CPU so far, from ``/proc/stat``'s ``cpuN`` lines."""
    out = {}
    for line in stat.read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *fields = line.split()
            ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            out[int(name[3:])] = (sum(ticks), ticks[3] + (ticks[4] if len(ticks) > 4 else 0))
    return out


def busy_cores(cpus, stat: Path = Path("/proc/stat"), window_s: float = LOAD_WINDOW_S) -> int:
    """How many of ``cpus`` other programs keep busy: their busy share over ``window_s``,
    summed and rounded (a process moving between CPUs still counts once); 0 where the
    kernel does not say."""
    try:
        before = cpu_times(stat)
        time.sleep(window_s)
        after = cpu_times(stat)
    except (OSError, ValueError):
        return 0
    share = 0.0
    for c in cpus:
        if c in before and c in after:
            total, idle = after[c][0] - before[c][0], after[c][1] - before[c][1]
            if total > 0:
                share += (total - idle) / total
    return round(share)


def free_core_ranks(node_ranks: int, cores: int, busy: int) -> int:
    """How many of a node's ranks may solve on ``cores`` of which ``busy`` are kept busy."""
    return max(1, min(node_ranks, cores - busy))


def solving_ranks(cfg, comm: MPI.Comm) -> tuple[bool, int, str]:
    """Whether this rank solves ``cfg``, how many ranks do, and why not all (``''`` when all
    do; collective). Rank 0 always solves."""
    per_rank = cfg.solver.min_unknowns_per_rank
    if comm.size == 1:
        return True, 1, ""
    wanted = comm.size if per_rank == 0 else max(1, min(comm.size, unknowns(cfg, comm) // per_rank))
    allowed, why = True, "small" if wanted < comm.size else ""
    if cfg.solver.avoid_busy_cores and wanted > 1:
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.rank)
        cpus = set().union(*node.allgather(os.sched_getaffinity(0)))
        usable = free_core_ranks(node.size, len(cpus), busy_cores(cpus)) if node.rank == 0 else None
        sleeping_barrier(node)  # the node's other ranks asleep while its first one measures
        usable = node.bcast(usable, root=0)
        allowed = node.rank < usable
        node.Free()
        if comm.allreduce(int(not allowed)):
            why = "busy cores"
    order = comm.exscan(int(allowed)) or 0  # this rank's place among the allowed (None on rank 0)
    mine = allowed and order < wanted
    n = comm.allreduce(int(mine))
    return mine, n, why if n < comm.size else ""


def on_ranks(comm: MPI.Comm, mine: bool, work: Callable[[MPI.Comm], object]) -> object:
    """``work(sub)`` on the ranks of ``comm`` whose ``mine`` is true (rank 0 among them); its
    result (from rank 0) on every rank of ``comm``, which the others wait for asleep
    (collective on ``comm``)."""
    if comm.allreduce(int(mine)) == comm.size:
        return work(comm)
    sub = comm.Split(0 if mine else MPI.UNDEFINED, comm.rank)
    result = None
    if sub != MPI.COMM_NULL:
        try:
            result = work(sub)
        finally:
            sub.Free()
    sleeping_barrier(comm)
    return comm.bcast(result, root=0)
