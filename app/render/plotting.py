"""Matplotlib figures (rank 0 only; Agg backend, no screen needed). Units in every label."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from app.physics.experiments import ANCHORS, NOT_DRAWN  # noqa: E402
from app.physics.observables import T_1E, T_HALF, crossing_time  # noqa: E402
from app.runtime.output import atomic_write  # noqa: E402

#: axis labels of the lifetimes plot for the keys it is used with
LIFETIME_AXES = {"model.B0": "magnetic field B$_0$ (T)", "initial.r0": "initial width r$_0$ (nm)",
                 "domain.radius": "radius R (nm)", "domain.barrier": "barrier b (nm)",
                 "pump.t_pump": "pump time T$_{pump}$ (s)"}

BULK_STYLE = dict(color="0.5", ls=":", lw=1.2)


def save(fig, path: str | Path) -> None:
    """Write a figure atomically as PNG and close it."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=130, bbox_inches="tight"), binary=True)
    plt.close(fig)


def field_cuts(cuts: dict, path: str | Path, title: str, bulk: float | None = None) -> None:
    """D, D^rr and D^tt against r along the x axis and along the diagonal (log scale)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    cuts_meta = (("axis", "along the x axis (y = 0)"), ("diag", "along the diagonal (x = y)"))
    for ax, (key, label) in zip(axes, cuts_meta, strict=True):
        r = cuts["r_nm"]
        ax.plot(r, cuts[f"D_{key}"], color="k", lw=2, label="D = (D$^{xx}$ + D$^{yy}$)/2")
        ax.plot(r, cuts[f"Drr_{key}"], color="tab:blue", label="D$^{rr}$ (radial)")
        ax.plot(r, cuts[f"Dtt_{key}"], color="tab:orange", label="D$^{tt}$ (tangential)")
        if bulk is not None:
            ax.axhline(bulk, **BULK_STYLE, label=f"bulk {bulk:.2f} nm$^2$/s")
        ax.set_yscale("log")
        ax.set_xlabel("r (nm)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("diffusion coefficient (nm$^2$/s)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)


#: line styles of a grid's second part (:func:`grid_styles`)
GRID_LINES = ("-", "--", "-.", ":")


def grid_styles(labels: list[str]) -> dict[str, dict] | None:
    """Colour and line style per label when the labels are a full grid ``"A: B"`` (every A
    with every B, e.g. ``"GaAs, slab ...: 0.2 T"``): the part with more values (at most 10)
    sets the colour, the other (at most 4) the line style, so that 24 curves read as 6
    colours x 4 styles instead of 20 colours that repeat. None when they are not a grid."""
    parts = [label.split(": ", 1) for label in labels]
    if not parts or any(len(p) != 2 for p in parts):
        return None
    values = [list(dict.fromkeys(p[i] for p in parts)) for i in (0, 1)]
    n0, n1 = map(len, values)
    if min(n0, n1) < 2 or len(parts) != n0 * n1 or len({tuple(p) for p in parts}) != len(parts):
        return None
    colour, line = (0, 1) if n0 >= n1 else (1, 0)
    if len(values[colour]) > 10 or len(values[line]) > len(GRID_LINES):
        return None
    cmap = plt.get_cmap("tab10")
    return {label: dict(color=cmap(values[colour].index(p[colour])), ls=GRID_LINES[values[line].index(p[line])], lw=2)
            for label, p in zip(labels, parts, strict=True)}  # fmt: skip


def decays(columns: dict, path: str | Path, title: str, extra: dict | None = None, window=None) -> None:
    """h(t)/h(0) against t on a log axis; one line per curve, the t_1/2 of each marked."""
    t = columns["t_s"]
    compare = {k.rsplit(" [", 1)[0]: k for k in columns if k.endswith("]") and " [" in k}
    labels = [k for k in columns if k != "t_s" and k not in compare.values()]
    many = len(labels) > 7  # then distinct colours, and the legend beside the axes, not over the curves
    fig, ax = plt.subplots(figsize=(11.5, 5.2) if many else (7.5, 4.8))
    cmap = plt.get_cmap("tab20" if many else "viridis")
    forms = {"paper": "-", "conservative": "--", "tensor": "-."}
    grid = grid_styles(labels) if many else None
    for i, label in enumerate(labels):
        color = cmap(i % 20) if many else cmap(i / max(len(labels) - 1, 1) * 0.9)
        style = dict(color=color, lw=2)
        if grid is not None:
            style = grid[label]
        elif "singlet" in label:
            style = dict(color="k", lw=2.5)
        for form, ls in forms.items():  # the comparison of continuum forms
            if label.endswith(f", {form}"):
                style = dict(color="tab:blue" if label.startswith("0.2") else "tab:red", ls=ls, lw=2)
        h = columns[label]
        th = crossing_time(t, h, 0.5)
        ax.plot(t[1:], h[1:], label=f"{label}  (t$_{{1/2}}$ = {th:.3g} s)" if np.isfinite(th) else label, **style)
        if np.isfinite(th):
            ax.plot([th], [0.5], "o", color=style["color"], ms=4)
        if label in compare:  # the article's form: thin dashed, same colour
            ax.plot(t[1:], columns[compare[label]][1:], color=style["color"], ls="--", lw=0.9)
    if compare:
        form = next(iter(compare.values())).rsplit(" [", 1)[1].rstrip("]")
        ax.plot([], [], color="0.3", ls="--", lw=0.9, label=f"thin dashed: the same with the article's {form} form")
    for label, (h, style) in (extra or {}).items():
        ax.plot(t[1:], h[1:], label=label, **style)
    if window is not None:
        ax.axvspan(window[0], window[1], color="0.9", zorder=0, label="fit window")
    ax.set_xscale("log")
    ax.set_xlim(t[1], t[-1])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time t (s)")
    ax.set_ylabel("Overhauser field h(t) / h(0)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, which="both")
    if many:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=8, loc="lower left")
    save(fig, path)


def validation(columns: dict, rows: list[dict], path: str | Path, title: str, window) -> None:
    """One panel per group: the lattice reference solid black, the others coloured, with
    max |h - h_lattice| over the window in the legend."""
    t = columns["t_s"]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    ncol = min(4, len(groups))
    nrow = -(-len(groups) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), sharex=True, sharey=True, squeeze=False)
    styles = {"paper": dict(color="tab:red", ls="--"), "conservative": dict(color="tab:orange", ls="-."),
              "tensor": dict(color="tab:blue", ls="-")}  # fmt: skip
    geo = {"layer": dict(color="tab:green", ls="-"), "slab": dict(color="tab:purple", ls="-")}
    for ax, group in zip(axes.ravel(), groups, strict=False):
        for r in (r for r in rows if r["group"] == group):
            h = columns[r["label"]]
            name = r["label"].split(": ", 1)[-1]
            if r["reference"]:
                style, text = dict(color="k", lw=2.6), f"{name} (reference)"
            else:
                style = dict(styles.get(r["form"], geo.get(r["geometry"].split(",")[0], {})), lw=1.6)
                if "pumped" in r["geometry"]:
                    style["ls"] = ":"
                text = f"{name}: max|dh| = {r['max_abs_dh']:.3f}"
            ax.plot(t[1:], h[1:], label=text, **style)
        ax.axvspan(window[0], window[1], color="0.95", zorder=0)
        ax.set_xscale("log")
        ax.set_xlim(t[1], t[-1])
        ax.set_ylim(0, 1.02)
        ax.set_title(group, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time t (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("h(t) / h(0)")
    fig.suptitle(title)
    save(fig, path)


def lifetimes(rows: list[dict], path: str | Path, title: str, xlabel: str, *, xlog: bool = True,
              anchors=(), note: str | None = None, measured: list[dict] | None = None) -> None:
    """t_1/2 (solid, dots) and t_1/e (dashed) against a parameter on log axes, one colour
    per series. ``rows``: dicts with series, x, t_half_s, t_1e_s. ``anchors``: measured
    ranges (:class:`app.physics.experiments.Anchor`) drawn as labelled grey bands (a line where a
    single time is known, a dotted line where only a lower bound is); ``note`` goes under the
    axes; ``measured``: points (x, t_s, label) of the user's own data."""  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.6 if anchors else 6.8, 5.0 if note else 4.6))
    series = list(dict.fromkeys(r["series"] for r in rows))
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(series):
        mine = sorted((r for r in rows if r["series"] == name), key=lambda r: r["x"])
        x = [r["x"] for r in mine]
        color = cmap(i % 10)
        ax.plot(x, [r[T_HALF] for r in mine], "o-", color=color, lw=2, label=f"{name}: t$_{{1/2}}$")
        ax.plot(x, [r[T_1E] for r in mine], "s--", color=color, lw=1, ms=3, label=f"{name}: t$_{{1/e}}$")
    greys = ("0.55", "0.7", "0.4", "0.25")
    for j, a in enumerate(anchors):
        grey = greys[j % len(greys)]
        text = f"{a.label} ({a.reference})"
        if a.high_s is None:
            ax.axhline(a.low_s, color=grey, lw=1.5, ls=(0, (1, 1)), label=f"lower bound: {text}")
        elif a.high_s == a.low_s:
            ax.axhline(a.low_s, color=grey, lw=2.5, alpha=0.7, label=text)
        else:
            ax.axhspan(a.low_s, a.high_s, facecolor=grey, alpha=0.25, edgecolor="0.3",
                       hatch=("", "//", "\\\\", "..")[j % 4], label=text)  # fmt: skip
    if measured:
        ax.plot([m["x"] for m in measured], [m["t_s"] for m in measured], "k*", ms=9, label="measured (--measured)")
        for m in measured:
            if m.get("label"):
                ax.annotate(m["label"], (m["x"], m["t_s"]), xytext=(5, 3), textcoords="offset points", fontsize=7)
    if xlog:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("decay time (s)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, which="both")
    if anchors:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8)
    if note:
        import textwrap

        fig.text(0.01, -0.02, textwrap.fill(note, 170), fontsize=7, ha="left", va="top")
    save(fig, path)


def _series_name(params: dict, series_keys: list[str]) -> str:
    parts = []
    for k in series_keys:
        v = params[k]
        if k == "model.electron_sz":
            parts.append("(2,0) singlet" if v == 0 else f"(1,1), s = {v:+g}")
        elif k in ("diffusion.form", "domain.geometry"):
            parts.append(str(v))
        else:
            parts.append(f"{k.split('.')[-1]} = {v:g}" if isinstance(v, float) else f"{k.split('.')[-1]} = {v}")
    return ", ".join(parts) or "t"


def _pump_rates(records: list[dict]) -> str | None:
    """'Gamma_0 = 10 1/s' from the cases' configurations (a free parameter, stated with every
    result: MODEL.md 12), or None when no case pumps."""
    rates = sorted({r["config"]["pump"]["gamma0"] for r in records
                    if r.get("config", {}).get("pump", {}).get("t_pump", 0) > 0})  # fmt: skip
    if not rates:
        return None
    values = ", ".join(f"{g:g}" for g in rates)
    return f"Gamma$_0$ = {values} 1/s (the pump rate at the dot centre, a free parameter: MODEL.md 12)"


def sweep(records: list[dict], x: str, series_keys: list[str], path: str | Path, title: str,
          experiments: bool | list[str] = False, measured: list[dict] | None = None) -> None:
    """A sweep's t_1/2 and t_1/e against its x key, one series per value of the other
    varied keys; with ``experiments``, the measured decay times of MODEL.md section 9 (a
    list: those whose reference contains one of its words, e.g. ``["Makhonin"]``). A sweep
    whose cases pump states their Gamma_0 under the axes."""  # fmt: skip

    def name(params: dict) -> str:
        return _series_name(params, series_keys)

    rows = [{"series": name(r["params"]), "x": float(r["params"][x]), T_HALF: r[T_HALF],
             T_1E: r[T_1E]} for r in records]  # fmt: skip
    xs = [r["x"] for r in rows]
    xlog = min(xs) > 0 and max(xs) >= 10 * min(xs)
    anchors, notes = (), []
    if experiments:
        anchors = ANCHORS
        if isinstance(experiments, list):
            anchors = tuple(a for a in ANCHORS if any(word in a.reference for word in experiments))
        if x == "pump.t_pump":
            notes.append("Grey: measured decay times (MODEL.md section 9), other dots than the model's. Makhonin et al. "
                         "measured 0.2-5 s rising with the optical pumping time; MODEL.md 9 gives the range, not the pump "
                         "times, so the band spans every T_pump. Decay times count from the end of the pump.")  # fmt: skip
        else:
            notes.append("Grey: measured decay times (MODEL.md section 9), other dots and materials than the model's; "
                         f"the field of each is not stated there, so each spans every B0. {NOT_DRAWN}.")  # fmt: skip
    rates = _pump_rates(records)
    if rates:
        notes.append(rates + ".")
    note = " ".join(notes) or None
    lifetimes(rows, path, title, LIFETIME_AXES.get(x, x), xlog=xlog, anchors=anchors, note=note, measured=measured)


def pumped_states(records: list[dict], x: str, series_keys: list[str], path: str | Path, title: str) -> None:
    """What the pump left, against a sweep's x key: h / h_sat and u at the centre (left), and
    the width of the pumped profile (right, its second moment; the hyperfine profile's
    l0 / sqrt(2), the width of a short pump's Gamma(r), drawn for reference)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.0, 4.4))
    cmap = plt.get_cmap("tab10")
    series = list(dict.fromkeys(_series_name(r["params"], series_keys) for r in records))
    for i, name in enumerate(series):
        mine = sorted((r for r in records if _series_name(r["params"], series_keys) == name), key=lambda r: r["params"][x])
        xs = [r["params"][x] for r in mine]
        ax1.plot(xs, [r["h_over_hsat_reached"] for r in mine], "o-", color=cmap(i), label=f"{name}: h/h$_{{sat}}$")
        ax1.plot(xs, [r["u_centre_reached"] for r in mine], "s--", color=cmap(i), ms=3, lw=1, label=f"{name}: u(0)")
        ax2.plot(xs, [r["width_nm"] for r in mine], "o-", color=cmap(i), label=name)
    l0 = {r["config"]["model"]["l0"] for r in records if "config" in r}
    for value in l0:
        ax2.axhline(value / np.sqrt(2), color="0.5", ls=":", lw=1.2, label=f"l$_0$/$\\sqrt{{2}}$ = {value / np.sqrt(2):.3g} nm")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel(LIFETIME_AXES.get(x, x))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    ax1.set_ylabel("polarisation at the end of the pump")
    ax1.set_ylim(0, 1.02)
    ax2.set_ylabel("width of the pumped profile (nm, second moment)")
    rates = _pump_rates(records)
    fig.suptitle(title + (f"\n{rates}" if rates else ""), fontsize=10)
    save(fig, path)


def tornado(panels: list[dict], path: str | Path, title: str) -> None:
    """One panel per metric: for each parameter a bar spanning the metric's values (over the
    parameter's values, the others at their defaults) relative to the baseline, on a log
    axis, the widest on top; each end labelled with the parameter's value."""
    n = len(panels)
    ncol = min(2, n)
    nrow = -(-n // ncol)
    rows = max(len(p["bars"]) for p in panels)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.4 * ncol, (0.55 * rows + 1.3) * nrow), squeeze=False)
    for ax, p in zip(axes.ravel(), panels, strict=False):
        base = p["baseline"]
        spans = []
        for key, points in p["bars"].items():
            ratios = [v / base for _, v in points]
            spans.append((max(ratios + [1.0]) / min(ratios + [1.0]), key, points, ratios))
        spans.sort(key=lambda s: s[0])
        for y, (_, _key, points, ratios) in enumerate(spans):
            lo, hi = min(ratios + [1.0]), max(ratios + [1.0])
            ax.barh(y, hi - lo, left=lo, height=0.6, color="tab:blue", alpha=0.55)
            for (value, _), r in zip(points, ratios, strict=True):
                text = f"{value:.3g}" if isinstance(value, (int, float)) else str(value)
                ax.annotate(text, (r, y), xytext=(4 if r >= 1 else -4, 0), textcoords="offset points",
                            ha="left" if r >= 1 else "right", va="center", fontsize=7)  # fmt: skip
        ax.axvline(1.0, color="k", lw=1)
        ax.set_yticks(range(len(spans)), [s[1] for s in spans], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("relative to the baseline")
        ax.set_title(f"{p['label']}: baseline {base:.3g}", fontsize=10)
        ax.grid(alpha=0.3, which="both", axis="x")
        every = [r for s in spans for r in s[3]] + [1.0]
        ax.set_xlim(min(every) / 1.8, max(every) * 1.8)  # room for the end labels
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)


def fit(t, h, sigma, t_model, h_model, h_paper, path: str | Path, title: str, note: str | None = None) -> None:
    """A fit: the data (with error bars when ``sigma`` is given), the best fit, and the
    article's paper form at the same values (dashed) when given; log time axis."""
    t, h = np.asarray(t), np.asarray(h)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    pos, mpos = t > 0, np.asarray(t_model) > 0
    if sigma is not None:
        ax.errorbar(t[pos], h[pos], yerr=np.asarray(sigma)[pos], fmt="o", ms=4, color="k", lw=1, capsize=2, label="data")
    else:
        ax.plot(t[pos], h[pos], "o", ms=4, color="k", label="data")
    ax.plot(np.asarray(t_model)[mpos], np.asarray(h_model)[mpos], color="tab:blue", lw=2, label="best fit")
    if h_paper is not None:
        ax.plot(np.asarray(t_model)[mpos], np.asarray(h_paper)[mpos], color="tab:orange", ls="--", lw=1.5,
                label="article's paper form, same values")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("t (s)")
    ax.set_ylabel("h(t) / h(0)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="0.4")
    save(fig, path)


def pump_profile(profiles: dict, record: dict, path: str | Path, title: str, l0: float, z0: float | None = None) -> None:
    """u at the end of the pump (MODEL.md 12): against r in the mid-plane (every node or site
    there), beside the Gaussian u(0) exp(-r^2 / w^2) of the same width w (the second moment,
    ``record['width_nm']``) and the build-up without diffusion, P_inf (1 - exp(-Gamma(r) t_pump));
    in 3D also against z on the axis. ``profiles``: the cuts per isotope name (None: the
    article's nucleus); ``record``: run.json's ``pump``."""
    three_d = any("z_nm" in p for p in profiles.values())
    fig, axes = plt.subplots(1, 2 if three_d else 1, figsize=(11.5 if three_d else 7.2, 4.6), squeeze=False)
    ax = axes[0, 0]
    cmap = plt.get_cmap("tab10")
    g0, t, p_inf = record["gamma0_per_s"], record["t_pump_s"], record["p_inf"]
    per = record.get("isotopes", {})
    for i, (name, p) in enumerate(profiles.items()):
        color = cmap(i)
        r, u = np.asarray(p["r_nm"]), np.asarray(p["u_mid"])
        width = per[name]["width_nm"] if name in per else record["width_nm"]
        scale = per[name]["rate_scale"] if name in per else 1.0
        who = f"{name}: " if name else ""
        ax.plot(r, u, ".", color=color, ms=2.5, alpha=0.6, label=f"{who}u at the end of the pump (mid-plane)")
        grid = np.linspace(0.0, float(r.max()), 400)
        ax.plot(grid, p["u_centre"] * np.exp(-(grid**2) / width**2), "--", color=color, lw=1.6,
                label=f"{who}Gaussian of the same width, w = {width:.3g} nm")  # fmt: skip
        ax.plot(grid, p_inf * -np.expm1(-g0 * scale * np.exp(-2 * grid**2 / l0**2) * t), ":", color=color, lw=1.2,
                label=f"{who}without diffusion: P$_\\infty$(1 - exp(-$\\Gamma$(r) T))")  # fmt: skip
    ax.set_xlim(0, min(float(max(np.max(p["r_nm"]) for p in profiles.values())), 4 * l0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("r (nm)" + (", z = 0" if three_d else ""))
    ax.set_ylabel("polarisation u")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if three_d:
        ax = axes[0, 1]
        for i, (name, p) in enumerate(profiles.items()):
            ax.plot(p["z_nm"], p["u_axis"], ".-", color=cmap(i), ms=3, lw=1, label=f"{name or 'u'} on the axis (r = 0)")
        if z0 is not None:
            ax.axvline(z0 / 2, color="0.5", ls=":", lw=1, label="face of the dot layer")
        ax.set_xlabel("z (nm), r = 0")
        ax.set_ylabel("polarisation u")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title}\nGamma$_0$ = {g0:g} 1/s (a free parameter), T$_{{pump}}$ = {t:g} s, "
                 f"h/h$_{{sat}}$ = {record['h_over_hsat_reached']:.3g}, width (second moment) {record['width_nm']:.3g} nm",
                 fontsize=10)  # fmt: skip
    save(fig, path)
