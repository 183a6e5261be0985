"""Where a reused sparse factorisation stops beating the AMG on one rank, per dimension (not a test).

    scripts/fenicsx python3 benchmarks/direct_crossover.py [--repeats 3]

Solves the default 2D disk and the 3D layer (lattice D, 0.2 T, 0 to 1e4 s) at a few sizes on
one rank, once with the Cholesky factorisation the product reuses across shifts and once with
the AMG (BoomerAMG with the stepper's defaults), alternated in one run, and prints the medians
of the whole solve (set-up of the field from the cache excluded: a warm-up run fills it) and
their ratio per size. The crossover decides ``app.numerics.fem.DIRECT_MAX_DOFS`` per dimension.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mpi4py import MPI

import app
from app.numerics.discretisation import make_problem

DIRECT = {"pc_type": "cholesky", "pc_factor_mat_ordering_type": "nd"}
AMG = {"pc_type": "hypre"}
CASES = [
    ("disk h_min=4", {}, {"h_min": 4.0, "h_max": 30.0}),
    ("disk default", {}, {}),
    ("disk h_min=1", {}, {"h_min": 1.0}),
    ("layer R=20", {"geometry": "layer", "radius": 20.0}, {"h_max": 8.0, "fine_radius": 10.0, "coarse_radius": 18.0}),
    ("layer R=30", {"geometry": "layer", "radius": 30.0}, {"h_max": 10.0, "fine_radius": 20.0, "coarse_radius": 28.0}),
    ("layer R=45", {"geometry": "layer", "radius": 45.0}, {"h_max": 12.0, "fine_radius": 30.0, "coarse_radius": 40.0}),
    ("layer R=60", {"geometry": "layer", "radius": 60.0}, {}),
]


def once(domain: dict, mesh: dict, pc: dict) -> tuple[float, int]:
    small = domain.get("radius", 300.0) < 60.0  # a dot that fits: l0 = r0 = R / 3
    model, initial = ({"l0": domain["radius"] / 3}, {"r0": domain["radius"] / 3}) if small else ({}, {})
    cfg = app.build(domain=domain, mesh=mesh, model=model, initial=initial, diffusion={"source": "lattice"},
                    solver={"petsc_options": pc, "error_estimate": False}, output={"progress": False})  # fmt: skip
    t0 = time.perf_counter()
    problem = make_problem(cfg, MPI.COMM_SELF).setup()
    result = problem.solve()
    return time.perf_counter() - t0, int(result.stats["dofs"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("case, dofs, direct median (s), AMG median (s), direct/AMG")
    for name, domain, mesh in CASES:
        once(domain, mesh, AMG)  # warm-up: the mesh and the lattice field into their caches
        times = {"direct": [], "amg": []}
        dofs = 0
        for _ in range(args.repeats):
            for label, pc in (("direct", DIRECT), ("amg", AMG)):
                t, dofs = once(domain, mesh, pc)
                times[label].append(t)
        d, a = statistics.median(times["direct"]), statistics.median(times["amg"])
        print(f"{name}, {dofs}, {d:.2f}, {a:.2f}, {d / a:.2f}", flush=True)


if __name__ == "__main__":
    main()
