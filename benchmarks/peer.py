"""The product against its independent serial peer (benchmarks/peer_scipy.py), whole
processes, alternated in one run; not a test. Numbers go in docs/performance.md (issue 11).

    scripts/fenicsx python3 benchmarks/peer.py small [--repeats 7]
    scripts/fenicsx python3 benchmarks/peer.py large [--repeats 3]
    scripts/fenicsx python3 benchmarks/peer.py setup [--repeats 3]

- ``small``: the default case (default mesh, 6 155 dofs, constant D = 6.93 nm^2/s, 0 to
  1e4 s), ``python3 -m app.run --single`` on 1 rank against the peer with LU, each at the
  tolerance that gives the same error against the exact decay (both errors are printed).
- ``large``: h_min 0.4, h_max 3 (about 1.8e5 dofs): ``mpirun -n 2 python3 -m app.run
  --single`` against the peer with pyamg (serial, one core). pyamg is not packaged by Debian:
  pip installs it once into ``~/.cache/overhauser-bench/`` (numpy and scipy stay Debian's).

The product runs twice per repeat: as the peer does (``solver.error_estimate=false``) and as
a user gets it, with the two companion solves of its error estimates (app/numerics/error_estimate.py).
- ``setup``: h_min 0.2, h_max 1.5 (about 7.2e5 dofs): start to first step of the product
  on 1, 2 and 4 ranks (the whole process of a run to t = 2 ms, less its time loop).

Each variant runs once per repeat, in turn, so that the machine's drift falls on all
alike; medians are reported with the runs. Mesh caches are warmed first; the runs' own
wall clock is taken around the whole process (interpreter start, imports, MPI, output).
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

from app.numerics.mesh import DiskSpec
from app.physics.observables import exact_constant_d

ROOT = Path(__file__).resolve().parent.parent
L0 = R0 = 30.0
D = 6.93
SIZES = {"small": (2.0, 20.0), "large": (0.4, 3.0), "setup": (0.2, 1.5)}


def product_cmd(ranks: int, out: Path, h: tuple[float, float], *extra: str) -> list[str]:
    mpi = ["mpirun", "-n", str(ranks)] if ranks > 1 else []
    return [*mpi, sys.executable, "-m", "app.run", "--single", "--out", str(out),
            "--set", f"mesh.h_min={h[0]}", "--set", f"mesh.h_max={h[1]}", "--set", "output.progress=false",
            *extra]  # fmt: skip


def peer_cmd(h: tuple[float, float], out: Path, *extra: str) -> list[str]:
    name = f"{DiskSpec(h_min=h[0], h_max=h[1]).name}.msh"  # the product's own mesh file
    return [sys.executable, str(ROOT / "benchmarks" / "peer_scipy.py"), "--mesh", str(ROOT / "meshes" / name),
            "--out", str(out), *extra]  # fmt: skip


PYPATH = [str(ROOT)]


def with_pyamg() -> None:
    """pyamg importable by the peer: pip installs it once into a cache of its own."""
    try:
        import pyamg  # noqa: F401, PLC0415
        return
    except ImportError:
        pass
    site = Path.home() / ".cache" / "overhauser-bench" / f"site-py{sys.version_info.major}{sys.version_info.minor}"
    if not (site / "pyamg").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), "pyamg"],
                       check=True, timeout=600)  # fmt: skip
    PYPATH.append(str(site))


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=1800,
                   env=dict(os.environ, PYTHONPATH=os.pathsep.join(PYPATH)))  # fmt: skip
    return time.perf_counter() - t0


def error_vs_exact(t, h) -> float:
    t, h = np.asarray(t), np.asarray(h)
    sel = (t >= 0.01) & (t <= 300)
    if not sel.any():
        return float("nan")
    return float(np.max(np.abs(h[sel] - exact_constant_d(t[sel], D, L0, R0))))


def product_result(out: Path) -> dict:
    run = json.loads((out / "run" / "run.json").read_text())
    data = np.genfromtxt(out / "run" / "overhauser.csv", delimiter=",", names=True)
    t, h = data["t_s"], data["h_over_h0"]
    s = run["solver"]
    return {"error_vs_exact": error_vs_exact(t, h), "steps": s["steps_accepted"], "dofs": s["dofs"],
            "wall_solve_s": s["wall_solve_s"], "setup_s": sum(s["wall_setup_s"].values()),
            "pc": s["petsc_options"]["pc_type"]}  # fmt: skip


def peer_result(out: Path) -> dict:
    r = json.loads(out.read_text())
    return {k: r[k] for k in r if k not in ("t_s", "h_over_h0")}


def report(name: str, runs: list[float], extra: dict | None = None) -> float:
    med = statistics.median(runs)
    print(json.dumps({"variant": name, "median_s": round(med, 3), "runs_s": [round(x, 3) for x in runs], **(extra or {})}))
    return med


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(SIZES))
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--peer-rtol", default="1e-4",
                    help="the peer's tolerance (1e-4: the same error against the exact decay as the product's defaults)")
    args = ap.parse_args()
    h = SIZES[args.case]
    repeats = args.repeats or (7 if args.case == "small" else 3)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.case == "setup":
            short = ["--set", "solver.t_end=0.002", "--set", "solver.t_first=0.001"]
            variants = {f"product, {n} rank(s)": product_cmd(n, tmp / f"p{n}", h, *short) for n in (1, 2, 4)}
        else:
            ranks = 1 if args.case == "small" else 2
            solver = "lu" if args.case == "small" else "amg"
            if solver == "amg":
                with_pyamg()
            variants = {
                f"product, {ranks} rank(s)": product_cmd(ranks, tmp / "p", h, "--set", "solver.error_estimate=false"),
                f"peer ({solver}, 1 core)": peer_cmd(h, tmp / "peer.json", "--solver", solver, "--rtol", args.peer_rtol),
                f"product, {ranks} rank(s), with its error estimates": product_cmd(ranks, tmp / "pe", h),
            }
        timed(next(iter(variants.values())))  # meshes into the cache, forms compiled
        runs: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(repeats):
            for name, cmd in variants.items():
                runs[name].append(timed(cmd))
        if args.case == "setup":
            for n in (1, 2, 4):
                res = product_result(tmp / f"p{n}")
                # start to first step: the whole process less its time loop
                report(f"product, {n} rank(s), start to first step",
                       [r - res["wall_solve_s"] for r in runs[f"product, {n} rank(s)"]], res)  # fmt: skip
            return
        names = list(variants)
        prod = report(names[0], runs[names[0]], product_result(tmp / "p"))
        peer = report(names[1], runs[names[1]], peer_result(tmp / "peer.json"))
        est = json.loads((tmp / "pe" / "run" / "run.json").read_text())["error_estimate"]
        with_est = report(names[2], runs[names[2]], {"error_estimate": est})
        print(json.dumps({"peer / product": round(peer / prod, 3), "peer / product with estimates": round(peer / with_est, 3)}))


if __name__ == "__main__":
    main()
