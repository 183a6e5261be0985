"""Lattice benchmark (not a test): the batched fast path against the per-pair loop oracle.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 scripts/fenicsx python3 benchmarks/lattice.py

Run single-threaded so "points per second" is per core. Both paths are timed in the same
run on the same model (defaults, B0 = 0.2 T, s = +1/2).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from app.config import Model
from app.physics import lattice


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=50_000)
    ap.add_argument("--loop-points", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1024)
    args = ap.parse_args()
    model = Model()
    rng = np.random.default_rng(1)
    pts = rng.uniform(-150, 150, (args.points, 2))

    t0 = time.perf_counter()
    lattice.stencil(model)
    t_stencil = time.perf_counter() - t0
    lattice.diffusion_tensor(pts[:100], model, batch=args.batch)  # warm
    t0 = time.perf_counter()
    fast = lattice.diffusion_tensor(pts, model, batch=args.batch)
    t_fast = (time.perf_counter() - t0) / len(pts)

    t0 = time.perf_counter()
    worst = 0.0
    for p in pts[: args.loop_points]:
        ref = lattice.site_rates_loop(p[0], p[1], model).tensor()
        worst = max(worst, float(np.max(np.abs(ref - fast[np.all(pts == p, axis=1)][0])) / np.max(np.abs(ref))))
    t_loop = (time.perf_counter() - t0) / args.loop_points

    print(f"stencil (once per model geometry): {t_stencil * 1e3:.1f} ms; neighbours {len(lattice.stencil(model).offsets)}")
    print(f"fast path: {1 / t_fast:,.0f} points/s ({t_fast * 1e6:.1f} us/point, batch {args.batch}, {args.points} points)")
    print(f"per-pair loop: {1 / t_loop:.2f} points/s ({t_loop:.2f} s/point, {args.loop_points} points)")
    print(f"speed-up: {t_loop / t_fast:,.0f}x; max relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
