"""Timings of the lattice master equation (form = master); not a test. Numbers go in
docs/performance.md.

    scripts/fenicsx mpirun -n 2 python3 benchmarks/master.py              # every case
    scripts/fenicsx mpirun -n 2 python3 benchmarks/master.py rates disk300
    scripts/fenicsx mpirun -n 2 python3 benchmarks/master.py --amg-before 3 disk150 slab30

Cases: ``rates`` (sites/s per rank of lattice.rates on this rank's share of sites spread
over the 17 planes of the layer), ``disk300`` and ``disk300full`` (R = 300 nm, folded
and full), ``slab60`` (R = 60 nm, b = 10 nm, folded), and the scaling cases ``disk75``,
``disk150``, ``slab30``. Each solve: 0.2 T, s = +1/2, 0 to 1e4 s, default tolerances, the
operator cache off. Reported: setup (sites, operator) and solve wall times, steps, linear
iterations, AMG builds, the time of one warm AMG solve (the last preconditioner, a random
right-hand side), and the peak resident memory of rank 0.

``--amg-before R``: each case R times with the AMG options before the Chebyshev smoother
(BEFORE, laid over the defaults through ``solver.petsc_options``) and R times with today's,
alternated in one run; the medians and their ratio.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from app.config import build
from app.numerics.master import MasterProblem
from app.physics import lattice
from app.physics.observables import decay_times

COMM = MPI.COMM_WORLD

CASES = {
    "disk75": {"domain": {"radius": 75.0}},
    "disk150": {"domain": {"radius": 150.0}},
    "disk300": {"domain": {"radius": 300.0}},
    "disk150full": {"domain": {"radius": 150.0}, "diffusion": {"fold": False}},
    "disk300full": {"domain": {"radius": 300.0}, "diffusion": {"fold": False}},
    "slab30": {"domain": {"radius": 30.0, "geometry": "slab"}, "initial": {"r0": 20.0}},
    "slab60": {"domain": {"radius": 60.0, "geometry": "slab"}},
}


def rates_speed(n: int = 40_000) -> dict:
    model = build().model
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-60, 60, n), rng.uniform(-60, 60, n), model.a0 * rng.integers(-8, 9, n)])
    mine = np.array_split(pts, COMM.size)[COMM.rank]
    lattice.rates(mine[:1000], model)  # warm the per-height terms
    COMM.barrier()
    t0 = time.perf_counter()
    lattice.rates(mine, model)
    wall = time.perf_counter() - t0
    per_rank = COMM.allgather(len(mine) / wall)
    return {"sites": n, "sites_per_s_per_rank": per_rank, "sites_per_s_total": n / COMM.allreduce(wall, op=MPI.MAX)}


#: app.numerics.master.AMG_OPTIONS before the Chebyshev smoother (hybrid symmetric Gauss-Seidel, two weights)
BEFORE = {"pc_hypre_boomeramg_P_max": 2, "pc_hypre_boomeramg_relax_type_all": "symmetric-SOR/Jacobi"}


def solve(name: str, petsc_options: dict | None = None) -> dict:
    sections = {
        "model": {"B0": 0.2, "electron_sz": 0.5},
        "diffusion": {"form": "master", "source": "lattice", "cache": ""},
        "output": {"progress": False},
        "solver": {"petsc_options": dict(petsc_options or {})},
    }
    for key, value in CASES[name].items():
        sections[key] = {**sections.get(key, {}), **value}
    cfg = build(**sections)
    t0 = time.perf_counter()
    p = MasterProblem(cfg, COMM).setup()
    setup = time.perf_counter() - t0
    res = p.solve()
    ksp = p.ts.getSNES().getKSP()
    b = p.u.duplicate()
    b.setRandom()
    x = b.duplicate()
    t1 = time.perf_counter()
    ksp.solve(b, x)
    warm = time.perf_counter() - t1
    s = res.stats
    return {
        "case": name,
        "ranks": COMM.size,
        "unknowns": s["unknowns"],
        "sites": s["sites"],
        "nonzeros": s["nonzeros"],
        "setup_s": setup,
        "setup_stages_s": s["wall_setup_s"],
        "solve_s": s["wall_solve_s"],
        "total_s": setup + s["wall_solve_s"],
        "steps": s["steps_accepted"],
        "rejected": s["steps_rejected"],
        "linear_iterations": s["linear_iterations"],
        "amg_builds": s["preconditioner_builds"],
        "warm_amg_solve_s": warm,
        "warm_solve_iterations": ksp.getIterationNumber(),
        "t_half_s": decay_times(res.t, res.h)["t_half_s"],
        "peak_rss_rank0_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def amg_before(repeats: int, names: list[str]) -> None:
    for name in names:
        totals = {"before": [], "now": []}
        for _ in range(repeats):
            for variant, options in (("before", BEFORE), ("now", {})):
                row = solve(name, options)
                totals[variant].append(row["total_s"])
                if COMM.rank == 0:
                    print(json.dumps({"amg": variant, **row}), flush=True)
        if COMM.rank == 0:
            before, now = statistics.median(totals["before"]), statistics.median(totals["now"])
            print(json.dumps({"case": name, "median_before_s": before, "median_now_s": now, "now_over_before": now / before}))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--amg-before"]:
        amg_before(int(argv[1]), argv[2:])
    else:
        for name in argv or ["rates", *CASES]:
            row = {"case": "rates", **rates_speed()} if name == "rates" else solve(name)
            if COMM.rank == 0:
                print(json.dumps(row), flush=True)
    PETSc.garbage_cleanup()


if __name__ == "__main__":
    main(sys.argv[1:])
