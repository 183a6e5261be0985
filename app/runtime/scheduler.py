"""Independent tasks on groups of MPI ranks, handed out dynamically.

The world is split into groups of ``K`` consecutive ranks (a sub-communicator each). Each
group's first rank takes the next task index from one shared counter, an MPI one-sided
fetch-and-add on world rank 0's window, so a group that finished a cheap task takes the
next one at once: no rank is a dedicated dispatcher, and tasks whose costs differ tenfold
still keep every group busy. The group then works on the task collectively. A second
counter holds the number of finished tasks (for progress lines).

Ranks that wait for others (a mesh being made on rank 0, a small case solved on fewer ranks)
wait in :func:`sleeping_barrier`, leaving their cores to the ranks that work.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from mpi4py import MPI

#: seconds an idle rank sleeps between tests of its barrier
POLL_S = 0.002


def sleeping_barrier(comm: MPI.Comm) -> None:
    """A barrier in which this rank sleeps instead of spinning (collective: every rank of
    ``comm`` calls it, and nothing else, to match it)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(POLL_S)


def check_group_size(world: MPI.Comm, ranks_per_group: int) -> str | None:
    """None, or the error line if ``ranks_per_group`` does not divide the world."""
    k = ranks_per_group
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or world.size % k:
        return f"--ranks-per-case: expected a divisor of the {world.size} rank(s) of the job, got {k!r}"
    return None


class _Counters:
    """Two int64 counters on world rank 0 (next task, tasks done), atomically incremented."""

    def __init__(self, world: MPI.Comm):
        itemsize = MPI.INT64_T.Get_size()
        self.win = MPI.Win.Allocate(2 * itemsize if world.rank == 0 else 0, itemsize, comm=world)
        if world.rank == 0:
            self.win.Lock(0, MPI.LOCK_EXCLUSIVE)
            np.frombuffer(self.win.tomemory(), dtype=np.int64)[:] = 0
            self.win.Unlock(0)
        world.Barrier()

    def add(self, which: int) -> int:
        """The counter's value before adding one (not collective)."""
        one, old = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        self.win.Lock(0, MPI.LOCK_SHARED)
        self.win.Fetch_and_op(one, old, 0, target_disp=which, op=MPI.SUM)
        self.win.Unlock(0)
        return int(old[0])

    def free(self) -> None:
        self.win.Free()


def run_tasks(
    world: MPI.Comm,
    ranks_per_group: int,
    n_tasks: int,
    work: Callable[[int, MPI.Comm], object],
    on_done: Callable[[int, object, int], None] | None = None,
) -> list[int]:
    """Run ``work(i, group)`` for i in range(n_tasks), each on one group (collective on world).

    ``on_done(i, result, n_done)`` runs on the group's first rank after each task. Returns
    the tasks this rank's group ran. An exception in ``work`` propagates (the entry point's
    :func:`app.runtime.failure.run_or_abort` then ends the whole job).
    """
    problem = check_group_size(world, ranks_per_group)
    if problem:
        raise ValueError(problem)
    group = world.Split(world.rank // ranks_per_group, world.rank)
    counters = _Counters(world)
    mine = []
    try:
        while True:
            i = counters.add(0) if group.rank == 0 else None
            i = group.bcast(i, root=0)
            if i >= n_tasks:
                break
            result = work(i, group)
            mine.append(i)
            if group.rank == 0:
                done = counters.add(1) + 1
                if on_done is not None:
                    on_done(i, result, done)
        # every task is finished before the window goes (a sleeping barrier here hung on 2 ranks:
        # rank 0 in Win_free, rank 1's Ibarrier never completing)
        world.Barrier()
    finally:
        counters.free()
        group.Free()
    return mine
