"""The headline of ``summary.md``: the predicted lifetime in each geometry, with its measured
distance from the lattice, and which geometry is the article's.

It is built from two figures when both are in the summary: ``prediction_3d`` (the tensor
form at 0.2 T in the disk, the layer and the slab with b = 10 nm, R = 300 nm) and
``beyond_2d`` (the same form against each geometry's own lattice truth at R = 60 nm).
Either alone gives the part it can.
"""

from __future__ import annotations

import math

GEOMETRIES = (
    ("disk", "disk (2D, the article's geometry)"),
    ("layer", "layer (3D, the dot layer alone, abs(z) <= 5 nm)"),  # no "|": it is a table cell
    ("slab", "slab (3D, the layer with 10 nm of host crystal above and below)"),
)
HOST = (
    "Host crystal (slab): the same nuclei on the same lattice as the dot layer, no hyperfine "
    "field there, no strain and no quadrupolar shifts; its outer faces are zero-flux."
)


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def _prediction(fig: dict, geometry: str) -> dict | None:
    for c in fig.get("curves", []):
        where = c.get("where", {})
        if where.get("geometry") != geometry or where.get("radius_nm") != 300.0 or where.get("B0_T") != 0.2:
            continue
        if geometry == "slab" and where.get("barrier_nm") != 10.0:
            continue
        return c
    return None


def _validation(fig: dict, geometry: str) -> dict | None:
    for c in fig.get("curves", []):
        if not c["reference"] and c["group"] == f"0.2 T: {geometry}":
            return c
    return None


def headline_lines(figures: dict[str, dict]) -> list[str]:
    """The markdown lines of the headline, or none if neither figure is there."""
    pred, beyond = figures.get("prediction_3d"), figures.get("beyond_2d")
    if pred is None and beyond is None:
        return []
    lines = [
        "## The answer: how long the Overhauser field lives, by geometry",
        "",
        "0.2 T, (1,1) state, r0 = l0, uniform initial z-profile; the tensor form of D^ab. "
        "t_1/2 and t_1/e at R = 300 nm (`prediction_3d`); the distance from the lattice master "
        "equation of the same geometry at R = 60 nm (`beyond_2d`: max |h - h_lattice| over "
        "0.1-3000 s, and the two t_1/2 there).",
        "",
        "| geometry | t_1/2 (s), R = 300 nm | t_1/e (s), R = 300 nm | max abs(h - h_lattice), R = 60 nm "
        "| t_1/2 FE / lattice (s), R = 60 nm |",
        "|---|---|---|---|---|",
    ]
    for key, name in GEOMETRIES:
        p = _prediction(pred, key) if pred else None
        v = _validation(beyond, key) if beyond else None
        lines.append(
            f"| {name} | {_fmt(p and p['t_half_s'])} | {_fmt(p and p['t_1e_s'])} "
            f"| {_fmt(v and v['max_abs_dh'])} | {_fmt(v and v['t_half_s'])} / {_fmt(v and v['t_half_ref_s'])} |"
        )
    return [*lines, "", HOST, ""]
