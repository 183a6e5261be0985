"""The report of a run: ``<out>/summary.json`` and ``<out>/summary.md`` (rank 0), merged
figure by figure so that they always match the files on disk."""

from __future__ import annotations

import json
from pathlib import Path

from app.physics.experiments import BULK_D
from app.physics.observables import T_1E, T_HALF
from app.runtime import output
from app.studies.catalogue import ORDER
from app.studies.headline import headline_lines
from app.studies.validation import fmt, summary_lines


def write_summary(out: Path, infos: list[dict], versions: dict) -> None:
    """Merge this run's figures into ``out/summary.json`` and rewrite ``out/summary.md`` (rank 0)."""
    path = out / "summary.json"
    figures: dict = {}
    try:
        figures = {f["name"]: f for f in json.loads(path.read_text())["figures"]}
    except (OSError, ValueError, KeyError, TypeError):
        figures = {}
    for info in infos:
        figures[info["name"]] = info
    ordered = [figures[n] for n in ORDER if n in figures] + [f for n, f in figures.items() if n not in ORDER]
    output.write_json(path, {"figures": ordered, "versions": versions})
    output.atomic_write(out / "summary.md", lambda f: f.write(summary_markdown(ordered)))


def summary_markdown(figures: list[dict]) -> str:
    lines = ["# Results", "", "Made by `python -m app.run`; numbers in s and nm^2/s. "
             "t_1/2 and t_1/e: first times at which h(t)/h(0) falls to 1/2 and 1/e "
             "(\"never\": not within t_end).", ""]  # fmt: skip
    lines += headline_lines({f["name"]: f for f in figures})
    for f in figures:
        lines += [f"## {f['title']}", ""]
        if f.get("quick"):
            lines += ["*Reduced resolution (`--quick`): not for publication.*", ""]
        if f.get("article"):
            lines += [f"Article: {f['article']}.", ""]
        lines += [f"![{f['name']}]({img})" for img in f.get("images", [])] + [""]
        if f["kind"] == "sweep":
            lines += sweep_lines(f)
        elif f["kind"] == "validation":
            lines += summary_lines(f)
        elif f["kind"] == "field":
            fd = f["field"]
            lines += [
                "| D at the centre | smallest D | at r (x axis) | D at r = 150 nm | bulk | mean D^rr/D^tt for r <= l0 (x axis) |",
                "|---|---|---|---|---|---|",
                f"| {fmt(fd['D_centre'])} | {fmt(fd['D_min'])} | {fmt(fd['r_at_min_axis_nm'])} nm | {fmt(fd['D_far'])} "
                f"| {fmt(fd['D_bulk'])} | {fmt(fd['mean_Drr_over_Dtt_within_l0'])} |",
                "",
            ]
        else:
            other = next((c["compare_form"] for c in f["curves"] if c.get("compare_form")), None)
            if other:
                lines += [f"| curve | form | t_1/2 (s) | t_1/e (s) | t_1/2, {other} form (s) | t_1/e, {other} form (s) |",
                          "|---|---|---|---|---|---|"]  # fmt: skip
                lines += [f"| {c['label']} | {c.get('form', '')} | {fmt(c['t_half_s'])} | {fmt(c['t_1e_s'])} "
                          f"| {fmt(c.get('t_half_compare_s'))} | {fmt(c.get('t_1e_compare_s'))} |"
                          for c in f["curves"]]  # fmt: skip
            else:
                lines += ["| curve | t_1/2 (s) | t_1/e (s) |", "|---|---|---|"]
                lines += [f"| {c['label']} | {fmt(c['t_half_s'])} | {fmt(c['t_1e_s'])} |" for c in f["curves"]]
            lines.append("")
            lines += isotope_lines(f["curves"])
            if "fit" in f:
                fit = f["fit"]
                lines += [
                    f"D_eff = **{fmt(fit['D_eff_fe'])} nm^2/s** (same mesh and solver at constant D; "
                    f"rms misfit {fit['rms_fe']:.2g}); exact formula of MODEL.md section 5: "
                    f"{fmt(fit['D_eff_exact_formula'])} nm^2/s (rms {fit['rms_exact_formula']:.2g}). "
                    f"Fit window: h/h0 in [{fit['window_h'][0]}, {fit['window_h'][1]}], i.e. "
                    f"t = {fmt(fit['window_t_s'][0])} to {fmt(fit['window_t_s'][1])} s ({fit['points']} output times).",
                    "",
                ]
            for label, m in f.get("media", {}).items():
                parts = []
                if "animation" in m:
                    parts.append(f"[animation]({m['animation']})")
                parts += [f"[{Path(p).stem.rsplit('_', 1)[-1]}]({p})" for p in m.get("images", [])]
                parts += [f"`{p}`" for p in m["vtx"]]
                lines += [f"- {label}: " + ", ".join(parts)]
            if f.get("media"):
                lines.append("")
        lines += [f"Data: {', '.join(f'`{c}`' for c in f.get('csv', []))}; wall time {f['wall_s']:.1f} s on "
                  f"{f['ranks']} rank(s).", ""]  # fmt: skip
    return "\n".join(lines)


def isotope_lines(curves: list[dict]) -> list[str]:
    """The real crystal's curves: each isotope's decay times beside the total, then each
    isotope's bulk D against the measured values (MODEL.md 11); nothing for the article's."""
    real = [c for c in curves if c.get("isotopes")]
    if not real:
        return []
    names = list(real[0]["isotopes"])
    lines = ["Per isotope (the real crystal, MODEL.md 11; each h_alpha / h_alpha(0), total weighted by x_alpha A^alpha):", "",
             "| curve | t_1/2 total (s) | " + " | ".join(f"t_1/2 {n} (s)" for n in names) + " | t_1/e total (s) | "
             + " | ".join(f"t_1/e {n} (s)" for n in names) + " |",
             "|" + "---|" * (3 + 2 * len(names))]  # fmt: skip
    for c in real:
        iso = c["isotopes"]
        lines.append(f"| {c['label']} | {fmt(c['t_half_s'])} | " + " | ".join(fmt(iso[n][T_HALF]) for n in names)
                     + f" | {fmt(c['t_1e_s'])} | " + " | ".join(fmt(iso[n][T_1E]) for n in names) + " |")  # fmt: skip
    measured = "; ".join(f"{m.value_nm2_s:g}{f' +- {m.error_nm2_s:g}' if m.error_nm2_s else ''} nm^2/s, {m.what} "
                         f"({m.reference})" for m in BULK_D)  # fmt: skip
    bulk = real[0]["isotopes"]
    lines += ["", "| isotope | share of h(0) | bulk D^xx = D^yy (nm^2/s) | bulk D^zz (nm^2/s) |", "|---|---|---|---|"]
    lines += [f"| {n} | {fmt(bulk[n]['share_of_h0'])} | {fmt(bulk[n]['bulk_D_nm2_s']['xx'])} | "
              f"{fmt(bulk[n]['bulk_D_nm2_s']['zz'])} |" for n in names]  # fmt: skip
    lines += ["", f"Measured (MODEL.md 11): {measured}.", ""]
    return lines


def sweep_lines(f: dict) -> list[str]:
    """A sweep's table: its varied keys and the decay times of every case."""
    axes = f["axes"]
    lines = [f"{len(f['cases'])} cases ({f['solved_now']} solved in this run, the others read from "
             f"`{f['name']}/cases/`).", "",
             "| " + " | ".join([*axes, "t_1/2 (s)", "t_1/e (s)", "h(100 s)/h0"]) + " |",
             "|" + "---|" * (len(axes) + 3)]  # fmt: skip
    for c in f["cases"]:
        values = [fmt(v) if isinstance(v, float) else str(v) for v in (c["params"][a] for a in axes)]
        lines.append("| " + " | ".join([*values, fmt(c[T_HALF]), fmt(c[T_1E]), fmt(c["h_at_100s"])]) + " |")
    return [*lines, ""]
