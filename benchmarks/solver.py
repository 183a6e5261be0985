"""Solver benchmark: ~5e4 dofs, 0 to 1e4 s (not a test).

    scripts/fenicsx python3 benchmarks/solver.py
    scripts/fenicsx mpirun -n 2 python3 benchmarks/solver.py

Reports accepted/rejected steps, linear iterations, time per step and total, and compares
the time loop with (accepted steps x one warm AMG-preconditioned solve of shift M + K):
once with the preconditioner rebuilt (setup + solve), once reusing it (solve only).
"""

from __future__ import annotations

import argparse
import time

from mpi4py import MPI
from petsc4py import PETSc

from app import config as app_config
from app.numerics.fem import DiffusionProblem

COMM = MPI.COMM_WORLD


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--h-min", type=float, default=0.8)
    ap.add_argument("--h-max", type=float, default=6.0)
    ap.add_argument("--form", default="paper")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    cfg = app_config.load(
        overrides=[
            f"mesh.h_min={args.h_min}", f"mesh.h_max={args.h_max}", f"diffusion.form={args.form}",
            "output.progress=false", *args.overrides,
        ]
    )  # fmt: skip
    # warm-up: mesh file, JIT of forms, PETSc/hypre initialisation
    DiffusionProblem(cfg, COMM).setup().solve(times=[0.0, 1.0])

    t0 = time.perf_counter()
    p = DiffusionProblem(cfg, COMM).setup()
    t_setup = time.perf_counter() - t0
    res = p.solve()
    total = time.perf_counter() - t0
    s = res.stats

    # one warm AMG-preconditioned solve of the step matrix, at a typical shift
    ksp = p.ts.getSNES().getKSP()
    A = p.K.duplicate(copy=True)
    A.axpy(1.0 / 10.0, p.M, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
    b, x = A.createVecs()
    p.M.mult(p.u.x.petsc_vec, b)
    solver = PETSc.KSP().create(COMM)
    solver.setOperators(A)
    solver.setType(ksp.getType())
    solver.getPC().setType("hypre")
    solver.getPC().setHYPREType("boomeramg")
    solver.setTolerances(rtol=1e-10)
    solver.solve(b, x)  # warm
    reps = 5
    t1 = time.perf_counter()
    for _ in range(reps):
        A.axpy(1e-9, p.M, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)  # changed: PC rebuilt
        x.set(0.0)
        solver.solve(b, x)
    fresh = (time.perf_counter() - t1) / reps
    its = solver.getIterationNumber()
    solver.getPC().setReusePreconditioner(True)
    t1 = time.perf_counter()
    for _ in range(reps):
        x.set(0.0)
        solver.solve(b, x)
    reused = (time.perf_counter() - t1) / reps

    if COMM.rank == 0:
        n = s["steps_accepted"]
        print(f"ranks={COMM.size} dofs={s['dofs']} form={args.form} ksp={ksp.getType()}")
        print(
            f"steps accepted={n} rejected={s['steps_rejected']} linear its={s['linear_iterations']} "
            f"pc builds={s['preconditioner_builds']}"
        )
        print("setup stages:", {k: round(v, 3) for k, v in s["wall_setup_s"].items()})
        print(
            f"setup={t_setup:.3f}s solve={s['wall_solve_s']:.3f}s total={total:.3f}s "
            f"per step={s['wall_per_step_s'] * 1e3:.2f}ms"
        )
        print(f"one warm solve: setup+solve={fresh * 1e3:.2f}ms ({its} its), solve only={reused * 1e3:.2f}ms")
        print(f"time loop / (steps x setup+solve) = {s['wall_solve_s'] / (n * fresh):.2f}; "
              f"/ (steps x solve only) = {s['wall_solve_s'] / (n * reused):.2f}")


if __name__ == "__main__":
    main()
