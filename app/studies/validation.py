"""Validation figures: continuum forms and geometries against the lattice master equation.

A preset of ``kind = "validation"`` groups its curves (``group = "..."`` in each
``[[curve]]``); in each group one curve is the ``reference = true`` (the lattice master
equation), and every other curve is measured against it: max |h - h_ref| over the
figure's ``window`` (s), t_1/2 and t_1/e side by side. Outputs, in ``<out>/<name>/``:
``<name>.csv`` (t_s and one column per curve), ``<name>.png`` (one panel per group, the
reference solid black), ``<name>_metrics.csv`` and ``run.json``; the summary gets a table.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from app.numerics.discretisation import make_problem
from app.physics.geometry import geometry_label
from app.physics.observables import T_1E, T_HALF
from app.render import plotting
from app.runtime import output


def fmt(x) -> str:
    """A number for a results table (3 significant digits), or "never" (None, nan: not reached)."""
    return "never" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3g}"


def metrics(times, h, h_ref, window) -> float:
    """max |h - h_ref| over output times within [window[0], window[1]] (s)."""
    t = np.asarray(times)
    sel = (t >= window[0]) & (t <= window[1])
    return float(np.max(np.abs(np.asarray(h)[sel] - np.asarray(h_ref)[sel])))


def run_validation(preset, out: Path, comm, quick: bool) -> dict:
    d = out / preset.name
    columns: dict[str, np.ndarray] = {}
    rows, records = [], []
    for (label, _), cfg, extra in zip(preset.curves, preset.configs, preset.extras, strict=True):
        t0 = time.perf_counter()
        res = make_problem(cfg, comm).setup().solve(desc=label)
        columns.setdefault("t_s", res.t)
        columns[label] = res.h
        stats = {k: v for k, v in res.stats.items() if k != "budget"}
        row = {
            "group": extra["group"], "label": label, "reference": extra["reference"],
            "form": cfg.diffusion.form, "geometry": geometry_label(cfg),
            **res.decay, "wall_s": time.perf_counter() - t0,
        }  # fmt: skip
        if "budget" in res.stats:
            b = res.stats["budget"]
            row["layer_share_end"] = float(b["layer"][-1])
            row["host_share_end"] = float(b["host"][-1])
        rows.append(row)
        records.append({"label": label, "config": cfg.model_dump(mode="json"), "solver": stats, "row": row})
        if comm.rank == 0:
            print(f"  {label}: t_1/2 = {row['t_half_s']:.4g} s ({row['wall_s']:.1f} s)", flush=True)

    window = preset.spec.window
    refs = {r["group"]: r["label"] for r in rows if r["reference"]}
    for r in rows:
        ref = refs[r["group"]]
        r["reference_label"] = ref
        r["t_half_ref_s"] = next(x[T_HALF] for x in rows if x["label"] == ref)
        r["max_abs_dh"] = 0.0 if r["reference"] else metrics(columns["t_s"], columns[r["label"]], columns[ref], window)

    info: dict = {}
    versions = output.versions()  # every rank: it may initialise PETSc, a collective
    if comm.rank == 0:
        output.write_csv(d / f"{preset.name}.csv", columns)
        numeric = [T_HALF, T_1E, "t_half_ref_s", "max_abs_dh", "wall_s"]
        output.write_csv(d / f"{preset.name}_metrics.csv", {k: [r[k] for r in rows] for k in numeric})
        plotting.validation(columns, rows, d / f"{preset.name}.png", preset.spec.title, window)
        info = {
            "images": [f"{preset.name}/{preset.name}.png"],
            "csv": [f"{preset.name}/{preset.name}.csv", f"{preset.name}/{preset.name}_metrics.csv"],
            "curves": rows,
            "window_s": list(window),
        }
        output.write_json(d / "run.json", {"figure": preset.spec.model_dump(), "solves": records,
                                           "versions": versions, "ranks": comm.size, **info})  # fmt: skip
    return comm.bcast(info, root=0)


def summary_lines(f: dict) -> list[str]:
    """The summary table of a validation figure."""
    w = f["window_s"]
    lines = [
        f"max |h - h_lattice| over {w[0]:g}-{w[1]:g} s against the group's lattice reference; "
        "t_1/2 and t_1/e in s.",
        "",
        "| group | curve | geometry | max abs(h - h_lattice) | t_1/2 | t_1/2 lattice | t_1/e |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in f["curves"]:
        dh = "reference" if c["reference"] else f"{c['max_abs_dh']:.3f}"
        geometry = c["geometry"].replace("|", "\\|")  # a table cell
        lines.append(
            f"| {c['group']} | {c['label']} | {geometry} | {dh} | {fmt(c['t_half_s'])} "
            f"| {fmt(c['t_half_ref_s'])} | {fmt(c['t_1e_s'])} |"
        )
    return [*lines, ""]
