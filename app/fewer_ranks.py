"""A problem too small for the job's ranks is solved on fewer of them; the others sleep.

A small problem gains nothing from more ranks: on the default disk (6 155 unknowns) one rank
with a factorisation is faster than two with the AMG, and every extra rank busy-polls in
each of the many collectives of a time step, which costs a whole core beside any other
program (docs/performance.md, "shared cores"). So a single case (``--single``, a sweep's
case) with fewer than ``solver.min_unknowns_per_rank`` unknowns per rank runs on the first
``n`` ranks of its communicator, ``n = unknowns // min_unknowns_per_rank`` (at least 1). The
other ranks wait in a non-blocking barrier that they test every few milliseconds between
sleeps, so they leave their cores to the ranks that work, and then receive the result.
A failure on a working rank still ends the whole job (:mod:`app.failure`).

Cores that other programs keep busy count too (``solver.avoid_busy_cores``): two ranks
that share their cores with one other CPU-bound program are 2.4x slower than one rank,
because each synchronisation waits for the rank that lost its core. So on each node, while
the node's other ranks sleep, its first rank counts the processes that are running
(``procs_running`` of ``/proc/stat``, the least of a few samples, itself not counted), and
at most as many of the node's ranks solve as there are cores left free (at least one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from mpi4py import MPI

#: seconds an idle rank sleeps between tests of its barrier
POLL_S = 0.002
#: samples of the running processes, and the seconds between them
LOAD_SAMPLES, LOAD_GAP_S = 8, 0.003


def sleeping_barrier(comm: MPI.Comm) -> None:
    """A barrier in which this rank sleeps instead of spinning (collective: every rank of
    ``comm`` calls it, and nothing else, to match it)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(POLL_S)


def unknowns(cfg, comm: MPI.Comm) -> int:
    """The number of unknowns of ``cfg``'s problem, known before it is built (collective: the
    mesh is made and cached first if missing)."""
    if cfg.diffusion.form == "master":
        from app.master import estimate

        return int(estimate(cfg)["unknowns"])
    from app import mesh as app_mesh

    spec = app_mesh.spec_of(cfg)
    nodes = app_mesh.node_count(spec, cfg.mesh.directory, comm)
    return nodes * cfg.mesh.degree**spec.gdim  # Lagrange degree k: about k^d dofs per vertex


def busy_elsewhere(stat: Path = Path("/proc/stat")) -> int:
    """Processes running on this machine besides the caller: the least of a few samples of
    ``procs_running`` (0 where the kernel does not say)."""
    counts = []
    for i in range(LOAD_SAMPLES):
        if i:
            time.sleep(LOAD_GAP_S)
        try:
            line = next(ln for ln in stat.read_text().splitlines() if ln.startswith("procs_running "))
            counts.append(int(line.split()[1]))
        except (OSError, StopIteration, ValueError, IndexError):
            return 0
    return max(0, min(counts) - 1)


def free_core_ranks(node_ranks: int, cores: int, busy: int) -> int:
    """How many of a node's ranks may solve beside ``busy`` other running processes."""
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
        usable = free_core_ranks(node.size, os.cpu_count() or 1, busy_elsewhere()) if node.rank == 0 else None
        sleeping_barrier(node)  # the node's other ranks asleep while its first one counts
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
