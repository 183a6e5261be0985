"""Timings of the 3D continuum model (geometry layer / slab, form = tensor); not a test.
Numbers go in docs/performance.md.

    scripts/fenicsx python3 benchmarks/model3d.py slab60                    # whole process
    scripts/fenicsx mpirun -n 2 python3 benchmarks/model3d.py field layer300 slab300

Cases: ``slab60`` (the whole process as a user runs it, ``mpirun -n 2 python3 -m app.run
--single`` in a subprocess, twice: cold caches, then warm; run this script without mpirun
for it), ``slab60gaas`` (the same for model.crystal = "GaAs": three isotopes), ``field``
(points/s per rank of the 3x3 D^ab(x, y, z) on the P1 dofs of the R = 60 nm slab), and
``layer300``, ``slab300`` (R = 300 nm in process: dofs, set-up stages, solve, memory). Each
solve: 0.2 T, s = +1/2, uniform initial profile, 0 to 1e4 s, default mesh and tolerances.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time

BASE = {
    "model": {"B0": 0.2, "electron_sz": 0.5},
    "diffusion": {"form": "tensor", "source": "lattice"},
    "output": {"progress": False},
}
CASES = {
    "layer300": {"domain": {"geometry": "layer", "radius": 300.0}},
    "slab300": {"domain": {"geometry": "slab", "radius": 300.0}},
}


def sections(extra: dict, scratch: str) -> dict:
    out = {k: dict(v) for k, v in BASE.items()}
    out["mesh"] = {"directory": f"{scratch}/meshes"}
    out["diffusion"]["cache"] = f"{scratch}/fields"
    for key, value in extra.items():
        out[key] = {**out.get(key, {}), **value}
    return out


def field_speed(scratch: str) -> dict:
    from mpi4py import MPI

    from app.config import build
    from app.numerics import field
    from app.numerics.fem import DiffusionProblem

    COMM = MPI.COMM_WORLD
    cfg = build(**sections({"domain": {"geometry": "slab", "radius": 60.0}}, scratch))
    p = DiffusionProblem(cfg, COMM)
    p.create_mesh()
    COMM.barrier()
    t0 = time.perf_counter()
    f = field.interpolate_lattice(p.mesh, cfg.model, cfg.diffusion.degree)
    wall = time.perf_counter() - t0
    per_rank = COMM.allgather(f.evaluated / wall)
    return {"case": "field", "points": COMM.allreduce(f.evaluated), "points_per_s_per_rank": per_rank}


def whole_process(scratch: str, crystal: str = "article") -> list[dict]:
    """``mpirun -n 2 python -m app.run --single`` as a user runs it: cold, then warm caches."""
    rows = []
    args = ["--set", f"model.crystal={crystal}",
            "--set", "domain.geometry=slab", "--set", "domain.radius=60", "--set", "diffusion.source=lattice",
            "--set", f"mesh.directory='{scratch}/meshes'", "--set", f"diffusion.cache='{scratch}/fields'",
            "--set", "output.progress=false", "--out", f"{scratch}/out",
            # both ranks solve even if another job loads a core: a benchmark of 2 ranks (the
            # warm GaAs run once fell back to 1 rank, app/numerics/fewer_ranks.py)
            "--set", "solver.avoid_busy_cores=false"]  # fmt: skip
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        subprocess.run(["mpirun", "-n", "2", sys.executable, "-m", "app.run", "--single", *args], check=True)
        wall = time.perf_counter() - t0
        with open(f"{scratch}/out/run/run.json") as fh:
            run = json.load(fh)
        s = run["solver"]
        rows.append({"case": f"slab60 {crystal} {label}", "whole_process_s": wall, "dofs": s["dofs"], "cells": s["cells"],
                     "setup_stages_s": s["wall_setup_s"], "solve_s": s["wall_solve_s"], "steps": s["steps_accepted"],
                     "linear_iterations": s["linear_iterations"], "amg_builds": s["preconditioner_builds"],
                     "t_half_s": run["decay"]["t_half_s"],
                     **({"isotopes": run["isotopes"]} if "isotopes" in run else {})})  # fmt: skip
    return rows


def in_process(name: str, scratch: str) -> dict:
    from mpi4py import MPI

    from app.config import build
    from app.numerics.fem import DiffusionProblem
    from app.physics.observables import decay_times

    COMM = MPI.COMM_WORLD
    cfg = build(**sections(CASES[name], scratch))
    t0 = time.perf_counter()
    p = DiffusionProblem(cfg, COMM).setup()
    setup = time.perf_counter() - t0
    res = p.solve()
    s = res.stats
    return {
        "case": name, "ranks": COMM.size, "dofs": s["dofs"], "cells": s["cells"], "setup_s": setup,
        "setup_stages_s": s["wall_setup_s"], "solve_s": s["wall_solve_s"], "steps": s["steps_accepted"],
        "linear_iterations": s["linear_iterations"], "amg_builds": s["preconditioner_builds"],
        "t_half_s": decay_times(res.t, res.h)["t_half_s"],
        "peak_rss_rank0_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }  # fmt: skip


def main(argv: list[str]) -> None:
    names = argv or ["field", *CASES]
    if names in (["slab60"], ["slab60gaas"]):  # a user's whole process: this script is not under mpirun
        scratch = tempfile.mkdtemp(prefix="bench3d-")
        try:
            for row in whole_process(scratch, "GaAs" if names == ["slab60gaas"] else "article"):
                print(json.dumps(row), flush=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    scratch = comm.bcast(tempfile.mkdtemp(prefix="bench3d-") if comm.rank == 0 else None, root=0)
    try:
        for name in names:
            row = field_speed(scratch) if name == "field" else in_process(name, scratch)
            if comm.rank == 0:
                print(json.dumps(row), flush=True)
    finally:
        comm.barrier()
        if comm.rank == 0:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
