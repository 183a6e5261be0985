"""The headline of summary.md: the lifetime by geometry from prediction_3d and beyond_2d."""

from __future__ import annotations

from app.studies.headline import headline_lines


def curve(geometry, radius, barrier, t_half, B0=0.2):
    where = {"geometry": geometry, "radius_nm": radius, "barrier_nm": barrier, "B0_T": B0}
    return {"label": f"{geometry} {radius} {barrier}", "where": where, "t_half_s": t_half, "t_1e_s": 2 * t_half}


PRED = {
    "curves": [
        curve("disk", 300.0, None, 40.0, B0=0.02),  # another field: not the 0.2 T answer
        curve("disk", 300.0, None, 220.0),
        curve("layer", 300.0, None, 150.0),
        curve("slab", 60.0, 10.0, 1.0),
        curve("slab", 300.0, 20.0, 2.0),
        curve("slab", 300.0, 10.0, 30.0),
    ]
}
BEYOND = {"curves": [
    {"group": "0.2 T: slab", "reference": True, "max_abs_dh": 0.0, "t_half_s": 22.4, "t_half_ref_s": 22.4},
    {"group": "0.2 T: slab", "reference": False, "max_abs_dh": 0.076, "t_half_s": 17.2, "t_half_ref_s": 22.4},
    {"group": "2 T: slab", "reference": False, "max_abs_dh": 0.5, "t_half_s": 1.0, "t_half_ref_s": 2.0},
]}  # fmt: skip


def test_each_geometry_takes_its_own_numbers():
    lines = headline_lines({"prediction_3d": PRED, "beyond_2d": BEYOND})

    def row(prefix):
        (line,) = [x for x in lines if x.startswith(f"| {prefix}")]
        return line

    assert row("disk").endswith("| 220 | 440 | - | - / - |")  # no 0.2 T disk group given
    assert row("layer").endswith("| 150 | 300 | - | - / - |")
    assert row("slab").endswith("| 30 | 60 | 0.076 | 17.2 / 22.4 |")  # R = 300 nm and b = 10 nm; the 0.2 T group
    assert any("host crystal" in line.lower() for line in lines)


def test_no_headline_without_either_figure():
    assert headline_lines({"fig3": {"curves": []}}) == []
