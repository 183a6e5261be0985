"""1 and 2 ranks with the cores free and beside one competing CPU-bound process, with MPI ranks
that busy-poll (Open MPI's default) or yield when idle; not a test. Numbers go in
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


def run(ranks: int, yield_idle: bool, scratch: Path) -> float:
    env = dict(os.environ, OMPI_MCA_mpi_yield_when_idle="1" if yield_idle else "0")
    cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "app.run", "--single", "--out", str(scratch / "out"),
           "--set", f"mesh.directory='{scratch / 'meshes'}'", "--set", "output.progress=false"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    variants = [(load, ranks, y) for load in (False, True) for ranks in (1, 2) for y in (False, True)]
    times: dict = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        run(1, False, scratch)  # the mesh into the cache, forms compiled
        for _ in range(args.repeats):
            for load, ranks, y in variants:
                hog = subprocess.Popen(HOG) if load else None
                try:
                    times[(load, ranks, y)].append(run(ranks, y, scratch))
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
    for (load, ranks, y), ts in times.items():
        print(json.dumps({"competitor": load, "ranks": ranks, "yield_when_idle": y,
                          "median_s": round(statistics.median(ts), 3), "runs_s": [round(t, 3) for t in ts]}))  # fmt: skip


if __name__ == "__main__":
    main()
