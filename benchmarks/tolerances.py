"""Time and space errors of the default case against solver.rtol, measured and estimated; not a
test. Numbers go in docs/performance.md (issue 11, "tolerances").

    scripts/fenicsx python3 benchmarks/tolerances.py [--rtol 1e-4 3e-5 1e-5]

The default case (constant D, tensor form, default disk mesh, 0 to 1e4 s) on one rank:
- measured time error at each rtol (atol = rtol / 100, as the defaults): max |h(rtol) - h(rtol
  = 1e-8)| on the same mesh;
- measured space error: max |h - h_fine| with both at rtol = 1e-8, h_fine on a mesh with
  h_min and h_max 4 times smaller;
- the estimates run.json reports (app/numerics/error_estimate.py), steps and loop time.
All maxima are over the output times after t = 0.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from mpi4py import MPI

from app.config import build
from app.numerics import error_estimate
from app.numerics.discretisation import make_problem

COMM = MPI.COMM_WORLD


def solve(cfg):
    t0 = time.perf_counter()
    res = make_problem(cfg, COMM).setup().solve()
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtol", type=float, nargs="+", default=[1e-4, 3e-5, 1e-5])
    ap.add_argument("--atol-per-rtol", type=float, default=1e-2, help="atol = this x rtol (the defaults' ratio)")
    ap.add_argument("--fine", type=float, default=4.0, help="the space reference's h is this many times smaller")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = build(mesh={"directory": tmp}, output={"progress": False})

        def at(rtol, atol=None, refine=1.0):
            c = base.model_copy(deep=True)
            c.solver.rtol = rtol
            c.solver.atol = atol if atol is not None else base.solver.atol
            c.mesh.h_min, c.mesh.h_max = base.mesh.h_min / refine, base.mesh.h_max / refine
            return c

        ref, _ = solve(at(1e-8, 1e-10))
        fine, wall_fine = solve(at(1e-8, 1e-10, args.fine))
        space = error_estimate.max_difference(ref.h, fine.h)
        print(json.dumps({"reference": "rtol 1e-8, atol 1e-10", "space_error_measured": space,
                          "fine_dofs": fine.stats["dofs"], "fine_wall_s": round(wall_fine, 1)}), flush=True)  # fmt: skip
        for rtol in args.rtol:
            cfg = at(rtol, args.atol_per_rtol * rtol)
            res, wall = solve(cfg)
            est = error_estimate.estimate(cfg, res.h, COMM)
            print(json.dumps({
                "rtol": rtol, "atol": cfg.solver.atol, "steps": res.stats["steps_accepted"], "wall_s": round(wall, 2),
                "time_error_measured": error_estimate.max_difference(res.h, ref.h), "time_error_estimate": est["time"],
                "space_error_measured": space, "space_error_estimate": est["space"],
                "total_error_vs_fine": error_estimate.max_difference(res.h, fine.h),
                "estimate_wall_s": round(est["wall_s"], 2),
            }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
