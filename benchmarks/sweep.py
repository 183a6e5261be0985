"""A 24-case B0 sweep on 1 rank and on 2 ranks (``--ranks-per-case 1``); not a test. Numbers
go in docs/performance.md (issue 8).

    scripts/fenicsx python3 benchmarks/sweep.py [--repeats 3] [--full]

The sweep: 12 fields from 10 mT to 5 T (log) x the electron in (1,1) and the (2,0) singlet,
the tensor form, the lattice D; on the quick mesh (``--quick``) unless ``--full``. Each run
is a whole process as a user types it, ``mpirun -n K python3 -m app.run --preset FILE
--force``, with warm mesh and lattice-field caches (a first run fills them). The two
variants are run in turn, one repeat of each after the other, so that the machine's drift
falls on both alike; medians, their ratio and cases per hour are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEP = """
[sweep]
title = "benchmark: 24 cases"
vary = {{ "model.B0" = {{ log = [0.01, 5.0], n = 12 }} }}
states = [0.5, 0.0]

[config]
diffusion = {{ source = "lattice", form = "tensor", cache = "{root}/fields" }}
mesh = {{ directory = "{root}/meshes" }}
"""


def run(ranks: int, preset: Path, scratch: Path, quick: bool) -> float:
    cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "app.run", "--preset", str(preset), "--force",
           "--ranks-per-case", "1", "--out", str(scratch / "out"), *(["--quick"] if quick else [])]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=3600)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="the default mesh instead of the quick one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        preset = scratch / "sweep24.toml"
        preset.write_text(SWEEP.format(root=scratch))
        run(2, preset, scratch, not args.full)  # meshes and lattice fields into the caches
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for ranks in (1, 2):
                times[ranks].append(run(ranks, preset, scratch, not args.full))
                print(f"{ranks} rank(s): {times[ranks][-1]:.1f} s", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "cases": 24, "mesh": "default" if args.full else "quick", "repeats": args.repeats,
        "wall_s": times, "median_s": med, "speedup_2_over_1": med[1] / med[2],
        "cases_per_hour": {k: 24 * 3600 / v for k, v in med.items()}, "when": time.strftime("%Y-%m-%d %H:%M"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
