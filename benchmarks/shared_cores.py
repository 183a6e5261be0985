"""1 and 2 ranks with the cores free and beside one competing CPU-bound process; not a test.
Two ranks either as the product decides (a small case, or one beside a busy core, on one of them,
the other asleep: app/numerics/fewer_ranks.py) or forced onto both (``solver.min_unknowns_per_rank=0``,
``solver.avoid_busy_cores=false``), whose MPI ranks
busy-poll (Open MPI's default) or, with ``--yield``, yield when idle. Numbers go in
docs/performance.md (issue 11, "shared cores").

    scripts/fenicsx python3 benchmarks/shared_cores.py [--repeats 5]

Each run is a whole process as a user types it, ``mpirun -n K python3 -m app.run --single``
on the small default case (default mesh, constant D, 0 to 1e4 s), with warm mesh caches. The
variants are run in turn, one repeat of each after another, so that the machine's drift
falls on all of them alike; medians are reported. The competitor is a Python busy loop
started before and killed after each run.
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

ROOT = Path(__file__).resolve().parent.parent
HOG = [sys.executable, "-c", "while True: pass"]


def run(ranks: int, every_rank: bool, yield_idle: bool, scratch: Path, extra: list[str]) -> float:
    env = dict(os.environ, OMPI_MCA_mpi_yield_when_idle="1" if yield_idle else "0")
    cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "app.run", "--single", "--out", str(scratch / "out"),
           "--set", f"mesh.directory='{scratch / 'meshes'}'", "--set", "output.progress=false", *extra]  # fmt: skip
    if every_rank:
        cmd += ["--set", "solver.min_unknowns_per_rank=0", "--set", "solver.avoid_busy_cores=false"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--yield", dest="yield_idle", action="store_true", help="also the forced 2 ranks yielding when idle")
    ap.add_argument("--set", action="append", default=[], help="passed on to app.run (another mesh, say)")
    args = ap.parse_args()
    extra = [a for kv in args.set for a in ("--set", kv)]
    two = [(2, False, False), (2, True, False)] + ([(2, True, True)] if args.yield_idle else [])
    variants = [(load, *v) for load in (False, True) for v in [(1, False, False), *two]]
    times: dict = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        run(1, False, False, scratch, extra)  # the mesh into the cache, forms compiled
        for _ in range(args.repeats):
            for load, ranks, every, y in variants:
                hog = subprocess.Popen(HOG) if load else None
                try:
                    times[(load, ranks, every, y)].append(run(ranks, every, y, scratch, extra))
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
    for (load, ranks, every, y), ts in times.items():
        print(json.dumps({"competitor": load, "ranks": ranks, "every_rank_solves": every, "yield_when_idle": y,
                          "median_s": round(statistics.median(ts), 3), "runs_s": [round(t, 3) for t in ts]}))  # fmt: skip


if __name__ == "__main__":
    main()
