"""A small problem on fewer ranks (app/numerics/fewer_ranks.py): how many ranks solve, that the others
sleep rather than spin, and that the answer and the files are those of every rank solving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jobs
import numpy as np
import pytest
from mpi4py import MPI

from app.config import build
from app.numerics import budget, fewer_ranks
from app.runtime import scheduler
from app.runtime.output import read_csv

COMM = MPI.COMM_WORLD
ROOT = Path(__file__).resolve().parents[1]


def test_the_unknowns_known_before_the_mesh_are_those_of_the_problem(mesh_dir):
    from app.numerics.fem import DiffusionProblem

    for degree in (1, 2):
        cfg = build(mesh={"directory": str(mesh_dir), "h_min": 10.0, "h_max": 40.0, "degree": degree})
        n = budget.unknowns(cfg, COMM)
        problem = DiffusionProblem(cfg, COMM).setup()
        exact = problem.V.dofmap.index_map.size_global
        if degree == 1:
            assert n == exact
        else:  # an estimate: k^d dofs per vertex
            assert abs(n - exact) < 0.1 * exact


def test_how_many_ranks_solve(mesh_dir):
    cfg = build(mesh={"directory": str(mesh_dir)}, solver={"avoid_busy_cores": False})  # 6 155 unknowns
    assert budget.unknowns(cfg, COMM) == 6155

    def ranks(per_rank):
        c = cfg.model_copy(deep=True)
        c.solver.min_unknowns_per_rank = per_rank
        mine, n, why = fewer_ranks.solving_ranks(c, COMM)
        assert mine == (COMM.rank < n) and why == ("small" if n < COMM.size else "")
        return n

    assert ranks(15000) == 1  # the default
    assert ranks(0) == COMM.size
    assert ranks(3000) == min(COMM.size, 2)
    assert ranks(10**9) == 1


def test_ranks_beside_busy_cores():
    assert fewer_ranks.free_core_ranks(node_ranks=2, cores=2, busy=0) == 2
    assert fewer_ranks.free_core_ranks(node_ranks=2, cores=2, busy=1) == 1
    assert fewer_ranks.free_core_ranks(node_ranks=8, cores=2, busy=5) == 1  # always one
    assert fewer_ranks.free_core_ranks(node_ranks=4, cores=64, busy=3) == 4


def test_busy_cores_are_counted(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 0 9 9 0 0 0 0 0 0\ncpu0 1 0 1 4 0 0 0 0 0 0\ncpu1 7 0 1 1 1 0 0 0 0 0\nintr 5\n")
    assert fewer_ranks.cpu_times(stat) == {0: (6, 4), 1: (10, 2)}
    assert fewer_ranks.busy_cores({0, 1}, stat, window_s=0.0) == 0  # no tick passed
    assert fewer_ranks.busy_cores({0, 1}, tmp_path / "none") == 0
    if COMM.rank == 0:  # one busy loop per CPU we may use is seen on the real machine
        cpus = os.sched_getaffinity(0)
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in cpus]
        try:
            time.sleep(0.3)
            busy = fewer_ranks.busy_cores(cpus, window_s=0.2)
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        assert busy >= len(cpus) - 1 >= 0 and busy >= 1


@pytest.mark.parallel
def test_work_runs_on_the_chosen_ranks_and_every_rank_gets_its_result():
    calls = []

    def work(sub):
        calls.append(sub.size)
        return {"rank": COMM.rank, "sum": sub.allreduce(COMM.rank)}

    assert fewer_ranks.on_ranks(COMM, COMM.rank == 0, work) == {"rank": 0, "sum": 0}
    assert calls == ([1] if COMM.rank == 0 else [])
    calls.clear()
    result = fewer_ranks.on_ranks(COMM, True, work)
    assert result == {"rank": COMM.rank, "sum": sum(range(COMM.size))} and calls == [COMM.size]


@pytest.mark.parallel
def test_a_waiting_rank_sleeps_instead_of_spinning():
    """Rank 0 works for 1 s; the others wait for it in the barrier and use almost no CPU
    (a spinning MPI wait would use the whole second)."""
    COMM.barrier()
    wall, cpu = time.perf_counter(), time.thread_time()
    if COMM.rank == 0:
        time.sleep(1.0)
    scheduler.sleeping_barrier(COMM)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    assert wall >= 0.99
    if COMM.rank > 0:
        assert cpu < 0.3 * wall


@pytest.mark.serial
def test_a_small_case_on_two_ranks_is_solved_on_one_with_the_same_answer(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = ["mpirun", "-n", "2", "python3", "-m", "app.run", "--single", "--set", "mesh.h_min=10",
            "--set", "mesh.h_max=40", "--set", "solver.t_end=100", "--set", "output.progress=false",
            "--set", f"mesh.directory='{tmp_path / 'meshes'}'"]  # fmt: skip
    runs = {}
    for per_rank in (15000, 0):
        out = tmp_path / f"out{per_rank}"
        cmd = [*base, "--set", f"solver.min_unknowns_per_rank={per_rank}", "--set", "solver.avoid_busy_cores=false",
               "--out", str(out)]  # fmt: skip
        try:
            proc = jobs.run(cmd, timeout=120, env=env, cwd=tmp_path)
        except subprocess.TimeoutExpired:
            pytest.fail("the job hung")
        assert proc.returncode == 0, proc.stderr
        summary = json.loads((out / "run" / "run.json").read_text())
        runs[per_rank] = (proc.stdout, summary, read_csv(out / "run" / "overhauser.csv")["h_over_h0"])
    (line_small, small, h_small), (line_all, every, h_all) = runs[15000], runs[0]
    assert (small["ranks"], small["ranks_solving"], small["fewer_ranks_because"]) == (2, 1, "small")
    assert (every["ranks"], every["ranks_solving"], every["fewer_ranks_because"]) == (2, 2, None)
    assert small["solver"]["ranks"] == 1 and every["solver"]["ranks"] == 2
    assert "dofs, 1 of 2 ranks: small problem," in line_small and "dofs, 2 ranks," in line_all
    np.testing.assert_allclose(h_small, h_all, rtol=0, atol=1e-6)


@pytest.mark.serial
def test_two_ranks_beside_a_busy_program_solve_on_one(tmp_path):
    """One busy loop per core but one: a case worth two ranks is solved on one of them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = ["mpirun", "-n", "2", "python3", "-m", "app.run", "--single", "--set", "mesh.h_min=10",
           "--set", "mesh.h_max=40", "--set", "solver.t_end=1", "--set", "output.progress=false",
           "--set", "solver.min_unknowns_per_rank=0", "--set", f"mesh.directory='{tmp_path / 'meshes'}'",
           "--out", str(tmp_path / "out")]  # fmt: skip
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range((os.cpu_count() or 2) - 1)]
    try:
        time.sleep(0.3)
        proc = jobs.run(cmd, timeout=120, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("the job hung")
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "run" / "run.json").read_text())
    assert (summary["ranks_solving"], summary["fewer_ranks_because"]) == (1, "busy cores")
    assert "dofs, 1 of 2 ranks: cores busy," in proc.stdout
