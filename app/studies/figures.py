"""The figures a preset makes (:mod:`app.studies.preset`): the lattice D (figures 1, 2), decays
(figures 3-5, forms, the 3D presets) and, through :mod:`app.studies.validation`, comparisons with
the lattice master equation.

Every figure writes ``<out>/<name>/``: ``<name>.csv`` (header; first column ``t_s`` for
decays, one column per curve label), ``<name>.png``, ``run.json`` (resolved configuration
of each curve, solver statistics, decay times) and, where asked, an animated GIF and VTX
(``.bp``) files of u(t) and D for ParaView. The summary of a run is :mod:`app.studies.report`'s.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from app import config as app_config
from app.numerics.discretisation import isotopes_of, make_problem, solve_once
from app.numerics.fem import DiffusionProblem
from app.physics import lattice
from app.physics.geometry import geometry_label
from app.physics.observables import T_1E, T_HALF, decay_times, exact_constant_d, fit_constant_d
from app.render import plotting, render2d, render3d
from app.runtime import output
from app.studies import sweep
from app.studies.preset import Preset, slug
from app.studies.validation import run_validation


def say(comm, text: str) -> None:
    if comm.rank == 0:
        print(text, flush=True)


# --- field figures (1 and 2) --------------------------------------------------------------------


def write_cuts(model, directory: Path, stem: str, title: str, r_max: float = 150.0, n: int = 601) -> dict:
    """D, D^rr and D^tt along the x axis and the diagonal: ``<stem>.csv`` and ``<stem>.png`` (rank 0)."""
    cuts = lattice.field_cuts(model, r_max=r_max, n=n)
    output.write_csv(directory / f"{stem}.csv", cuts)
    plotting.field_cuts(cuts, directory / f"{stem}.png", title, lattice.bulk_diffusion(model))
    return cuts


def run_field(preset: Preset, out: Path, comm, quick: bool) -> dict:
    cfg = preset.configs[0]
    model = cfg.model
    n = 41 if quick else 161
    x = np.linspace(-100.0, 100.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    pts = np.column_stack([X.ravel(), Y.ravel()])
    mine = np.array_split(np.arange(len(pts)), comm.size)[comm.rank]  # each rank its share
    parts = comm.gather((mine, lattice.diffusion_tensor(pts[mine], model)), root=0)
    bulk = lattice.bulk_diffusion(model)
    info: dict = {}
    versions = output.versions()  # every rank: it may initialise PETSc, a collective
    if comm.rank == 0:
        D = np.empty((len(pts), 2, 2))
        for idx, vals in parts:
            D[idx] = vals
        Diso = lattice.isotropic(D)
        d = out / preset.name
        output.write_csv(
            d / f"{preset.name}.csv",
            {"x_nm": pts[:, 0], "y_nm": pts[:, 1], "D": Diso, "Dxx": D[:, 0, 0], "Dxy": D[:, 0, 1], "Dyy": D[:, 1, 1]},
        )
        cuts = write_cuts(model, d, f"{preset.name}_cuts", preset.spec.title, n=301 if quick else 601)
        images = [f"{preset.name}/{preset.name}_cuts.png"]
        if render2d.available():
            spec = preset.spec
            render2d.surface(x, x, Diso.reshape(n, n), d / f"{preset.name}.png", spec.title, spec.surface_scale, bulk)
            images.insert(0, f"{preset.name}/{preset.name}.png")
        else:
            print(f"{preset.name}: no X server or Xvfb: 3D surface not rendered", flush=True)
        r = cuts["r_nm"]
        l0 = model.l0
        within = (r > 0) & (r <= l0)
        info = {
            "images": images,
            "csv": [f"{preset.name}/{preset.name}.csv", f"{preset.name}/{preset.name}_cuts.csv"],
            "field": {
                "D_centre": float(cuts["D_axis"][0]),
                "D_min": float(min(cuts["D_axis"].min(), cuts["D_diag"].min())),
                "r_at_min_axis_nm": float(r[np.argmin(cuts["D_axis"])]),
                "D_far": float(cuts["D_axis"][-1]),
                "D_bulk": bulk,
                "mean_Drr_over_Dtt_within_l0": float(np.mean(cuts["Drr_axis"][within] / cuts["Dtt_axis"][within])),
            },
        }
        output.write_json(d / "run.json", {"figure": preset.spec.model_dump(), "config": cfg.model_dump(mode="json"),
                                           "versions": versions, "ranks": comm.size, **info})  # fmt: skip
    return comm.bcast(info, root=0)


# --- decay figures (3, 4, 5, forms) -------------------------------------------------------------


def recorder(problem, base: Path):
    """What records an animated curve during its solve (collective): :class:`app.render.render2d.Recorder`
    on the disk, :class:`app.render.render3d.Recorder` on the cylinder (x-z plane, mid-plane, D^zz, D^rr)."""
    return (render3d.Recorder if problem.mesh.geometry.dim == 3 else render2d.Recorder)(problem, base)


def fit_deff(times, h, window, cfg: app_config.Config, comm, mesh) -> dict:
    """Constant D reproducing h(t) within ``window`` (h/h0 range): exact formula and FE."""
    from scipy.optimize import minimize_scalar

    lo, hi = window
    sel = (times > 0) & (h >= lo) & (h <= hi)
    t, target = times[sel], h[sel]
    l0, r0 = cfg.model.l0, cfg.initial.r0
    d_exact = fit_constant_d(times, h, l0, r0, window)
    misfit_exact = exact_constant_d(t, d_exact, l0, r0) - target

    const = cfg.model_copy(deep=True)
    const.diffusion.source = "constant"
    const.output.progress = False
    evaluations = []

    def misfit(logd):
        const.diffusion.constant = float(np.exp(logd))
        hh = DiffusionProblem(const, comm, mesh=mesh).solve(times=times).h
        evaluations.append(const.diffusion.constant)
        return float(np.sum((hh[sel] - target) ** 2))

    best = minimize_scalar(
        misfit, bounds=(np.log(d_exact) - 0.7, np.log(d_exact) + 0.7), method="bounded", options={"xatol": 2e-3}
    )
    d_fe = float(np.exp(best.x))
    const.diffusion.constant = d_fe
    h_fe = DiffusionProblem(const, comm, mesh=mesh).solve(times=times).h
    return {
        "D_eff_fe": d_fe,
        "D_eff_exact_formula": d_exact,
        "window_h": [lo, hi],
        "window_t_s": [float(t.min()), float(t.max())],
        "points": int(sel.sum()),
        "rms_fe": float(np.sqrt(np.mean((h_fe[sel] - target) ** 2))),
        "rms_exact_formula": float(np.sqrt(np.mean(misfit_exact**2))),
        "fe_solves": len(evaluations) + 1,
        "h_fe": h_fe,
        "h_exact_formula": exact_constant_d(times, d_exact, l0, r0),
    }


def run_decay(preset: Preset, out: Path, comm, quick: bool) -> dict:
    d = out / preset.name
    columns: dict[str, np.ndarray] = {}
    curves, records, animations = [], [], {}
    fit = None
    lifetime_rows: list[dict] = []
    for (label, _), cfg, extra in zip(preset.curves, preset.configs, preset.extras, strict=True):
        t0 = time.perf_counter()
        lattice_run = cfg.diffusion.form == "master"  # no mesh: no animation, no constant-D fit
        rec = None
        if isotopes_of(cfg):  # the real crystal: one problem per isotope, h their weighted sum
            res, problems = solve_once(cfg, comm, desc=label)
            problem = problems[0]
        else:
            problem = make_problem(cfg, comm).setup()
            animate = label in preset.spec.animate and not lattice_run
            rec = recorder(problem, d / f"{preset.name}_{slug(label)}") if animate else None
            try:
                res = problem.solve(on_output=rec, desc=label)
            finally:
                if rec is not None:
                    rec.close()
        columns.setdefault("t_s", res.t)
        columns[label] = res.h
        times = res.decay
        dom = cfg.domain
        where = {
            "geometry": dom.geometry,
            "radius_nm": dom.radius,
            "barrier_nm": dom.half_height(cfg.model.z0) - cfg.model.z0 / 2 if cfg.geometry.host else None,
            "B0_T": cfg.model.B0,
            "electron_sz": cfg.model.electron_sz,
            "crystal": cfg.model.crystal,
        }
        entry = {"label": label, "form": cfg.diffusion.form, "geometry": geometry_label(cfg), "where": where, **times}
        other = preset.spec.compare_form
        # the article's form beside the validated one (2D only: paper and conservative have no 3D)
        if other and other != cfg.diffusion.form and cfg.geometry.dim == 2:
            alt = cfg.model_copy(deep=True)
            alt.diffusion.form = other
            h_alt = solve_once(alt, comm, desc=f"{label} [{other}]")[0].h
            columns[f"{label} [{other}]"] = h_alt
            alt_times = decay_times(res.t, h_alt)
            entry.update({"compare_form": other, "t_half_compare_s": alt_times[T_HALF],
                          "t_1e_compare_s": alt_times[T_1E]})  # fmt: skip
        if res.isotopes is not None:  # the real crystal: each isotope's decay times and share of h(0)
            entry["isotopes"] = {name: {**res.isotope_summary()[name]} for name in res.isotopes}
        entry["wall_s"] = time.perf_counter() - t0
        if preset.spec.lifetimes and isinstance(extra["group"], str):
            lifetime_rows.append({"series": extra["group"], "x": extra["x"],
                                  "label": label, T_HALF: times[T_HALF], T_1E: times[T_1E]})  # fmt: skip
        lf = getattr(problem, "lattice_field", None)
        record = {
            "label": label,
            "geometry": geometry_label(cfg),
            "config": cfg.model_dump(mode="json"),
            "decay": times,
            "solver": res.stats,
            "lattice_field_cache": comm.allgather(lf.cache) if lf is not None else None,
        }
        if label == preset.spec.fit and lattice_run:
            say(comm, f"{preset.name}: the constant-D fit needs a mesh; not made for the lattice master equation")
        elif label == preset.spec.fit:
            fit = fit_deff(res.t, res.h, preset.spec.fit_window, cfg, comm,
                           (problem.mesh, problem.cell_tags, problem.facet_tags))  # fmt: skip
            entry["D_eff_fe"] = fit["D_eff_fe"]
            entry["D_eff_exact_formula"] = fit["D_eff_exact_formula"]
        if rec is not None and comm.rank == 0:
            animations[label] = (rec, [str(p.relative_to(out)) for p in rec.paths])
        curves.append(entry)
        records.append(record)

    info: dict = {}
    versions = output.versions()  # every rank: it may initialise PETSc, a collective
    if comm.rank == 0:
        output.write_csv(d / f"{preset.name}.csv", columns)
        extra = {}
        if fit is not None:
            extra = {
                f"constant D_eff = {fit['D_eff_fe']:.3g} nm$^2$/s (FE fit)": (fit["h_fe"], dict(color="k", ls=":", lw=2)),
                f"exact formula, D = {fit['D_eff_exact_formula']:.3g} nm$^2$/s": (
                    fit["h_exact_formula"], dict(color="0.55", ls="--", lw=1)),
            }  # fmt: skip
            output.write_csv(d / f"{preset.name}_fit.csv", {"t_s": columns["t_s"], "h_fe_fit": fit["h_fe"],
                                                            "h_exact_formula_fit": fit["h_exact_formula"]})  # fmt: skip
        plotting.decays(columns, d / f"{preset.name}.png", preset.spec.title, extra,
                        window=fit["window_t_s"] if fit else None)  # fmt: skip
        images = [f"{preset.name}/{preset.name}.png"]
        csvs = [f"{preset.name}/{preset.name}.csv"]
        if lifetime_rows:
            key = preset.spec.lifetimes
            table = [[r["series"], r["x"], r[T_HALF], r[T_1E], r["label"]] for r in lifetime_rows]
            output.write_table(d / f"{preset.name}_lifetimes.csv", ["series", key, T_HALF, T_1E, "label"], table)
            plotting.lifetimes(lifetime_rows, d / f"{preset.name}_lifetimes.png", f"{preset.spec.title}: decay times",
                               plotting.LIFETIME_AXES.get(key, key))  # fmt: skip
            images.append(f"{preset.name}/{preset.name}_lifetimes.png")
            csvs.append(f"{preset.name}/{preset.name}_lifetimes.csv")
        media = {}
        if animations and render2d.available():
            for label, (rec, bp) in animations.items():
                made = rec.media(d, f"{preset.name}_{slug(label)}", f"{preset.name}: {label}")
                media[label] = {"animation": str(made["animation"].relative_to(out)), "vtx": bp}
                if made.get("images"):  # 3D: the x-z plane and mid-plane at a few times, D^zz and D^rr
                    media[label]["images"] = [str(p.relative_to(out)) for p in made["images"]]
        elif animations:
            print(f"{preset.name}: no X server or Xvfb: animations not rendered (VTX files written)", flush=True)
            media = {label: {"vtx": bp} for label, (_, bp) in animations.items()}
        info = {"images": images, "csv": csvs, "curves": curves, "media": media}
        if lifetime_rows:
            info["lifetimes"] = {"key": preset.spec.lifetimes, "rows": lifetime_rows}
        if fit is not None:
            info["fit"] = {k: v for k, v in fit.items() if not k.startswith("h_")}
        output.write_json(d / "run.json", {"figure": preset.spec.model_dump(), "curves": records, "fit": info.get("fit"),
                                           "versions": versions, "ranks": comm.size})  # fmt: skip
    return comm.bcast(info, root=0)


def run_preset(preset: Preset, out: Path, comm=MPI.COMM_WORLD, quick: bool = False) -> dict:
    if preset.spec.kind == "sweep":  # its cases are files of their own, written as they finish
        info = sweep.run(preset, out, comm, quick)
        say(comm, one_line(info))
        return info
    t0 = time.perf_counter()
    run = {"field": run_field, "decay": run_decay, "validation": run_validation}[preset.spec.kind]
    # A figure is a transaction: it is made in a staging directory and replaces the earlier
    # <out>/<name>/ in one rename once every file of it exists (the lock on <out> keeps
    # other runs away). A failed or interrupted figure leaves the earlier one as it was.
    staging = comm.bcast(output.staging_dir(out, preset.name) if comm.rank == 0 else None, root=0)
    info = run(preset, staging, comm, quick)
    comm.barrier()  # every rank's files (VTX) are complete
    if comm.rank == 0:
        output.publish(staging / preset.name, out / preset.name)
        shutil.rmtree(staging, ignore_errors=True)
    comm.barrier()
    info.update(name=preset.name, title=preset.spec.title, kind=preset.spec.kind, article=preset.spec.article,
                wall_s=time.perf_counter() - t0, quick=quick, ranks=comm.size)  # fmt: skip
    say(comm, one_line(info))
    return info


def one_line(info: dict) -> str:
    if info["kind"] == "field":
        f = info["field"]
        what = f"D centre {f['D_centre']:.3g}, min {f['D_min']:.3g}, far {f['D_far']:.3g} nm^2/s"
    elif info["kind"] == "sweep":
        what = f"{len(info['cases'])} cases, {info['solved_now']} solved now"
    elif info["kind"] == "validation":
        worst = max((c for c in info["curves"] if not c["reference"]), key=lambda c: c["max_abs_dh"], default=None)
        what = f"{len(info['curves'])} curves"
        if worst:
            what += f"; largest max|dh| {worst['max_abs_dh']:.3f} ({worst['label']})"
    else:
        what = "; ".join(f"{c['label']}: t_1/2 = {c['t_half_s']:.3g} s" for c in info["curves"])
        if "fit" in info:
            what += f"; D_eff = {info['fit']['D_eff_fe']:.3g} nm^2/s"
    return f"{info['name']} ({info['wall_s']:.1f} s): {what}"
