"""The 3D continuum of real GaAs against its lattice master equation (MODEL.md 11); not a test.
Numbers go in docs/crystal.md ("The lattice master equation of GaAs").

    scripts/fenicsx mpirun -n 2 python3 benchmarks/gaas_master.py                 # every case
    scripts/fenicsx mpirun -n 2 python3 benchmarks/gaas_master.py layer_zf seeds

Cases (0.2 T, s = +1/2, r_c = r_g = 2 a, uniform initial z-profile, 0.1 to 3000 s):

- ``layer_zf``, ``layer_dir``: the layer (z0 = 10 nm), R = 20 nm, l0 = 15 nm, r0 = 8 nm, the rim
  zero-flux or Dirichlet;
- ``slab_zf``: a slab of R = 12 nm with b = 3 nm of GaAs above and below, l0 = 8 nm, r0 = 6 nm,
  the rim zero-flux (the escape is through the faces of the layer);
- ``small_zf``: the layer of R = 12 nm, l0 = 8 nm, r0 = 6 nm, zero-flux rim;
- ``seeds`` (or ``seeds:<case>``): explicit realisations of the Ga isotopes (seeds 1, 2, 3)
  against the virtual crystal, in ``layer_zf`` (or the case named).

For each case: the lattice (virtual crystal) per isotope with its sites, nonzeros, estimate and
wall times; the continuum (tensor form) with diffusion.zz = 'point' (faces at Z and at each
sublattice's planes, domain.lattice_matched; a finer rim) and 'planes' (the planes' resistance of
each sublattice, lattice-matched faces); max |h - h_lattice| over 0.1-3000 s
per isotope and for the total h = sum_alpha x_alpha A^alpha h_alpha. JSON lines on stdout and
in ``results/gaas_master.json``; each lattice solve's h(t) kept in ``results/gaas_master/``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from app.config import build
from app.numerics import master
from app.numerics.discretisation import solve_once, weights
from app.numerics.master import MasterProblem
from app.physics import crystal
from app.physics.observables import decay_times

COMM = MPI.COMM_WORLD
NAMES = ["75As", "69Ga", "71Ga"]
SEEDS = (1, 2, 3)

BASE = {
    "model": {"crystal": "GaAs", "B0": 0.2, "electron_sz": 0.5, "l0": 15.0, "r_c": 2.0, "r_g": 2.0},
    "initial": {"r0": 8.0},
    "domain": {"geometry": "layer", "radius": 20.0, "boundary": "zero_flux"},
    "diffusion": {"source": "lattice", "cache": ""},
    "mesh": {"h_min": 1.5, "h_max": 4.0, "fine_radius": 8.0, "coarse_radius": 16.0, "directory": "meshes"},
    "solver": {"t_first": 0.1, "t_end": 3000.0, "outputs_per_decade": 8, "max_memory_gb": 12.0, "error_estimate": False},
    "output": {"progress": False},
}
#: a finer rim for the third continuum run of each case (the polygon's area, MODEL.md 10's equilibrium)
FINE_RIM = {"layer_zf": 1.5, "layer_dir": 1.5, "small_zf": 1.0, "slab_zf": 1.0}
CASES = {
    "layer_zf": {},
    "layer_dir": {"domain": {"boundary": "dirichlet"}},
    "small_zf": {"domain": {"radius": 12.0}, "model": {"l0": 8.0}, "initial": {"r0": 6.0},
                 "mesh": {"h_max": 3.0, "fine_radius": 6.0, "coarse_radius": 10.0}},
    "slab_zf": {"domain": {"geometry": "slab", "radius": 12.0, "barrier": 3.0}, "model": {"l0": 8.0},
                "initial": {"r0": 6.0}, "mesh": {"h_max": 3.0, "fine_radius": 6.0, "coarse_radius": 10.0}},
}  # fmt: skip


def config(case: str, **sections):
    data = {k: dict(v) for k, v in BASE.items()}
    for extra in (CASES[case], sections):
        for key, value in extra.items():
            data[key] = {**data.get(key, {}), **value}
    return build(**data)


def peak_mb() -> float:
    return COMM.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, op=MPI.MAX)


def report(record: dict) -> None:
    if COMM.rank == 0:
        print(json.dumps(record), flush=True)
        out = Path("results/gaas_master.json")
        out.parent.mkdir(exist_ok=True)
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")


def lattice_run(cfg, names=NAMES, tag: str = "") -> dict:
    """Each isotope's lattice master equation, one after another: h, sizes and times. Each
    isotope's result is kept in ``results/gaas_master/<tag>_<isotope>.json`` and read back from
    there by a later run (delete the folder to recompute)."""
    out = {}
    for name in names:
        keep = Path("results/gaas_master") / f"{tag}_{name}.json"
        if tag and keep.exists():
            out[name] = json.loads(keep.read_text())
            out[name]["t"], out[name]["h"] = np.array(out[name]["t"]), np.array(out[name]["h"])
            continue
        t0 = time.perf_counter()
        p = MasterProblem(cfg, COMM, isotope=name).setup()
        t_setup = time.perf_counter() - t0
        res = p.solve()
        stats = res.stats
        out[name] = {
            "t": res.t,
            "h": res.h,
            "sites": stats["unknowns"],
            "holding": stats["sites_holding"],
            "nonzeros": stats["nonzeros"],
            "setup_s": round(t_setup, 1),
            "solve_s": round(stats["wall_solve_s"], 1),
            "steps": stats["steps_accepted"],
            "peak_mb_per_rank": round(peak_mb()),
        }
        p.release()
        del p
        if tag and COMM.rank == 0:
            keep.parent.mkdir(parents=True, exist_ok=True)
            record = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out[name].items()}
            keep.write_text(json.dumps(record))
        if COMM.rank == 0:
            print(f"# {tag} {name}: setup {out[name]['setup_s']} s, solve {out[name]['solve_s']} s", flush=True)
    return out


def total(cfg, parts: dict) -> np.ndarray:
    share = weights(cfg)
    return sum(share[n] * parts[n] for n in NAMES)


def window(t):
    return (t >= 0.1 - 1e-12) & (t <= 3000.0 + 1e-9)


def compare(case: str) -> None:
    cfg = config(case, diffusion={"form": "master"})
    est = master.estimate(cfg)
    lat = lattice_run(cfg, tag=case)
    t = lat["75As"]["t"]
    h_lat = {n: lat[n]["h"] for n in NAMES}
    h_lat["total"] = total(cfg, h_lat)
    report({"case": case, "what": "lattice", "estimate": {"memory_gb": round(est["memory_gb"], 2),
            "per_isotope": est["per_isotope"]},
            **{n: {k: v for k, v in lat[n].items() if k not in ("t", "h")} for n in NAMES},
            "t_half_s": {n: decay_times(t, h_lat[n])["t_half_s"] for n in h_lat}})  # fmt: skip
    runs = {}
    fine = {"h_max": FINE_RIM[case], "h_min": min(FINE_RIM[case], BASE["mesh"]["h_min"])}
    variants = [(True, {}, "point"), (False, {}, "point"), (False, fine, "point"), (True, {}, "planes"), (True, fine, "planes")]
    for matched, mesh, zz in variants:
        fe = config(case, diffusion={"form": "tensor", "zz": zz}, domain={"lattice_matched": matched}, mesh=mesh)
        t0 = time.perf_counter()
        res, _ = solve_once(fe, COMM)
        wall = time.perf_counter() - t0
        assert np.allclose(res.t, t)
        h_fe = dict(res.isotopes)
        h_fe["total"] = res.h
        w = window(t)
        diff = {n: float(np.max(np.abs(h_fe[n][w] - h_lat[n][w]))) for n in h_lat}
        worst = {n: float(t[w][np.argmax(np.abs(h_fe[n][w] - h_lat[n][w]))]) for n in h_lat}
        runs[(matched, bool(mesh), zz)] = h_fe
        faces = {}
        if (True, False, zz) in runs and not mesh and not matched:  # what the sublattice's own faces change
            faces = {n: float(np.max(np.abs(runs[(True, False, zz)][n] - h_fe[n]))) for n in h_fe}
        report({"case": case, "what": "continuum", "zz": zz, "lattice_matched": matched, "mesh": mesh or "as BASE",
                "max_abs_dh": diff, "t_of_max_s": worst, "matched_vs_unmatched": faces,
                "h_end": {n: float(h_fe[n][-1]) for n in h_fe}, "h_end_lattice": {n: float(h_lat[n][-1]) for n in h_lat},
                "t_half_s": {n: decay_times(t, h_fe[n])["t_half_s"] for n in h_fe},
                "wall_s": round(wall, 1), "dofs": {n: res.stats["isotopes"][n]["dofs"] for n in NAMES}})  # fmt: skip


def seeds(case: str = "layer_zf") -> None:
    cfg = config(case, diffusion={"form": "master"})
    ga = [iso.name for iso in crystal.isotopes(cfg.model) if iso.sublattice == "cation"]
    vc = lattice_run(cfg, tag=case)
    h_vc = {n: vc[n]["h"] for n in NAMES}
    h_vc["total"] = total(cfg, h_vc)
    w = window(vc["75As"]["t"])
    for seed in SEEDS:
        real = lattice_run(config(case, diffusion={"form": "master", "realisation": seed}), ga, tag=f"{case}_seed{seed}")
        h = {n: real[n]["h"] for n in ga}
        h["75As"] = h_vc["75As"]  # 75As fills its sublattice: the same in every realisation
        h["total"] = total(cfg, h)
        report({"case": case, "what": "realisation", "seed": seed,
                "holding": {n: real[n]["holding"] for n in ga}, "sites": real[ga[0]]["sites"],
                "max_abs_dh_vs_virtual": {n: float(np.max(np.abs(h[n][w] - h_vc[n][w]))) for n in [*ga, "total"]},
                "h_end": {n: float(h[n][-1]) for n in [*ga, "total"]},
                "h_end_virtual": {n: float(h_vc[n][-1]) for n in [*ga, "total"]},
                "solve_s": {n: real[n]["solve_s"] for n in ga}})  # fmt: skip


def main(argv: list[str]) -> None:
    todo = argv or [*CASES, "seeds"]
    for name in todo:
        if name.startswith("seeds"):  # seeds (layer_zf) or seeds:<case>
            seeds(*name.split(":")[1:])
        elif name in CASES:
            compare(name)
        else:
            raise SystemExit(f"unknown case {name!r}: expected one of {[*CASES, 'seeds']}")


if __name__ == "__main__":
    main(sys.argv[1:])
