"""Fitting (``--fit``, app/studies/fit.py, issue 27): the finite-difference step, a held-out
check, and the Jacobian's solves on 1 and 2 ranks; not a test. Numbers go in
docs/performance.md ("Fitting").

    scripts/fenicsx python3 benchmarks/fit.py steps            # the Jacobian against the step and rtol
    scripts/fenicsx python3 benchmarks/fit.py heldout [--draws 30]
    scripts/fenicsx python3 benchmarks/fit.py speedup [--repeats 2]

The case: the lattice D (tensor form) at B0 = 0.35 T, the electron in (1,1); the fitted pair
is model.B0 and model.l0 (their correlation is ~0.2 here; B0 and initial.r0 are the
degenerate pair, ~-0.995). ``heldout`` makes data with the product at the hidden values on
the coarse mesh (h_min 6, h_max 40), adds Gaussian noise (sigma 0.005 in h/h0, 25 times
from 0.3 s to 3000 s, no sigma column), fits each of ``--draws`` noise draws from the
bounds' geometric mean, and compares the fitted values with the hidden ones (in units of the
stated sigma) and the stated sigma with the spread of the values over the draws.
``speedup`` runs the whole command line, ``mpirun -n K python3 -m app.run --fit ...
--ranks-per-case 1``, on the default mesh, K = 1 and 2 in turn, each with fresh output and
lattice-field caches (the mesh cache warm), and reports the wall time and the solves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HIDDEN = {"model.B0": 0.35, "model.l0": 24.0}
VARY = ["model.B0=0.05:2", "model.l0=10:60"]
NOISE = 0.005
TIMES = np.geomspace(0.3, 3000.0, 25)
COARSE = ["mesh.h_min=6", "mesh.h_max=40"]


def base(scratch: Path, coarse: bool = True) -> list[str]:
    return ["diffusion.source='lattice'", f"diffusion.cache='{scratch / 'fields'}'", f"mesh.directory='{scratch / 'meshes'}'",
            "output.progress=false", *(COARSE if coarse else [])]  # fmt: skip


def truth(scratch: Path, coarse: bool = True) -> np.ndarray:
    import app

    cfg = app.load([], [*base(scratch, coarse), *(f"{k}={v}" for k, v in HIDDEN.items())])
    return app.solve(cfg, times=np.r_[0.0, TIMES], error_estimate=False).h[1:]


def steps(scratch: Path) -> dict:
    """The forward-difference column of model.B0 for steps 1e-2 ... 1e-5 at rtol 2e-5 and
    2e-7, against the reference (step 1e-4 at rtol 2e-8): max relative difference."""
    import app

    times = np.r_[0.0, TIMES]

    def h(rtol, b0):
        over = [*base(scratch), f"solver.rtol={rtol}", f"solver.atol={rtol / 100}", f"model.B0={b0}", "model.l0=24"]
        return app.solve(app.load([], over), times=times, error_estimate=False).h[1:]

    b0 = HIDDEN["model.B0"]
    ref = (h(2e-8, b0 * (1 + 1e-4)) - h(2e-8, b0)) / 1e-4
    out = {}
    for rtol in (2e-5, 2e-7):
        h0 = h(rtol, b0)
        scale = np.max(np.abs(ref))
        column = {}
        for rel in (1e-2, 1e-3, 1e-4, 1e-5):
            column[f"{rel:g}"] = float(np.max(np.abs((h(rtol, b0 * (1 + rel)) - h0) / rel - ref)) / scale)
        out[f"rtol={rtol:g}"] = column
        print(f"steps: rtol {rtol:g}: {out[f'rtol={rtol:g}']}", file=sys.stderr, flush=True)
    return {"column": "model.B0", "reference": "step 1e-4 at rtol 2e-8", "max_rel_difference": out}


def heldout(scratch: Path, draws: int) -> dict:
    from mpi4py import MPI

    from app.studies import fit as app_fit

    clean = truth(scratch)
    rng = np.random.default_rng(2027)
    rows = []
    for i in range(draws):
        data = (TIMES, clean + NOISE * rng.standard_normal(TIMES.size))
        problem = app_fit.prepare(data, VARY, overrides=base(scratch))
        t0 = time.perf_counter()
        res = app_fit.run(problem, MPI.COMM_WORLD, cache=scratch / "evals", quiet=True, paper=False)
        z = [(v - HIDDEN[k]) / s for k, v, s in zip(res.keys, res.values, res.sigmas, strict=True)]
        rows.append({"values": res.values.tolist(), "sigmas": res.sigmas.tolist(), "z": z,
                     "corr": float(res.correlation[0, 1]), "solves": res.solves, "nfev": res.nfev,
                     "bound": (res.iterations + 1) * 3, "residual_rms": res.residual_rms,
                     "wall_s": time.perf_counter() - t0})  # fmt: skip
        print(f"heldout {i + 1}/{draws}: {res.values} +- {res.sigmas} (z {np.round(z, 2)}), {res.solves} solves "
              f"in {res.nfev} points", file=sys.stderr, flush=True)  # fmt: skip
    values = np.array([r["values"] for r in rows])
    sigmas = np.array([r["sigmas"] for r in rows])
    zs = np.abs(np.array([r["z"] for r in rows]))
    spread = values.std(axis=0, ddof=1)
    return {
        "hidden": HIDDEN, "vary": VARY, "noise": NOISE, "points": int(TIMES.size), "draws": draws,
        "mean_value": dict(zip(HIDDEN, values.mean(axis=0).tolist(), strict=True)),
        "spread": dict(zip(HIDDEN, spread.tolist(), strict=True)),
        "median_sigma": dict(zip(HIDDEN, np.median(sigmas, axis=0).tolist(), strict=True)),
        "sigma_over_spread": dict(zip(HIDDEN, (np.median(sigmas, axis=0) / spread).tolist(), strict=True)),
        "within_3_sigma": dict(zip(HIDDEN, (zs < 3).mean(axis=0).tolist(), strict=True)),
        "within_1_sigma": dict(zip(HIDDEN, (zs < 1).mean(axis=0).tolist(), strict=True)),
        "max_abs_z": dict(zip(HIDDEN, zs.max(axis=0).tolist(), strict=True)),
        "median_correlation": float(np.median([r["corr"] for r in rows])),
        "solves": {"median": statistics.median(r["solves"] for r in rows), "max": max(r["solves"] for r in rows),
                   "over_bound": sum(r["solves"] > r["bound"] for r in rows)},
        "rows": rows,
    }  # fmt: skip


def speedup(scratch: Path, repeats: int) -> dict:
    clean = truth(scratch, coarse=False)  # the default mesh, also warming its cache
    data = scratch / "data.csv"
    rng = np.random.default_rng(7)
    noisy = clean + NOISE * rng.standard_normal(TIMES.size)
    data.write_text("t_s,h_over_h0\n" + "".join(f"{t!r},{h!r}\n" for t, h in zip(TIMES.tolist(), noisy.tolist(), strict=True)))
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for rep in range(repeats):
        for ranks in (1, 2):
            out = scratch / f"out-{ranks}-{rep}"
            over = [x for s in base(scratch, coarse=False) for x in ("--set", s)]
            over = [s.replace(str(scratch / "fields"), str(scratch / f"fields-{ranks}-{rep}")) for s in over]
            cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "app.run", "--fit", str(data), "--out", str(out),
                   "--ranks-per-case", "1", *[x for v in VARY for x in ("--vary", v)], *over]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=3600)
            wall = time.perf_counter() - t0
            fit = json.loads((out / "fit" / "run.json").read_text())["fit"]
            solve_s = sum(json.loads(f.read_text())["wall_s"] for f in (out / "fit" / "evals").glob("*.json"))
            runs[ranks].append({"wall_s": wall, "fit_wall_s": fit["wall_s"], "solve_s": solve_s,
                                "concurrency": solve_s / fit["wall_s"], "load": os.getloadavg()[0],
                                "solves": fit["solves"], "solved_now": fit["solved_now"],
                                "nfev": fit["nfev"], "njev": fit["njev"], "bound": fit["solve_bound"],
                                "values": {k: v["value"] for k, v in fit["parameters"].items()}})  # fmt: skip
            print(f"speedup: {ranks} rank(s): {wall:.1f} s ({fit['wall_s']:.1f} s fitting, {solve_s:.1f} s of solves), "
                  f"{fit['solves']} solves (bound {fit['solve_bound']}), load {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)  # fmt: skip
    med = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    fitting = {k: statistics.median(r["fit_wall_s"] for r in v) for k, v in runs.items()}
    return {"mesh": "default", "repeats": repeats, "runs": runs, "median_s": med, "speedup_2_over_1": med[1] / med[2],
            "median_fit_s": fitting, "fit_speedup_2_over_1": fitting[1] / fitting[2]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["steps", "heldout", "speedup"])
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.what == "steps":
            out = steps(scratch)
        elif args.what == "heldout":
            out = heldout(scratch, args.draws)
        else:
            out = speedup(scratch, args.repeats)
    out["when"] = time.strftime("%Y-%m-%d %H:%M")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
