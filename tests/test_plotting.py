"""What the figures show: a decay figure whose curves form a grid ("A: B", every A with
every B) reads as colours x line styles, one pair per curve."""

from __future__ import annotations

import pytest

from app.render.plotting import GRID_LINES, grid_styles
from app.studies import catalogue

pytestmark = pytest.mark.serial


def labels_of(name: str) -> list[str]:
    return [label for label, _ in catalogue.load_preset(name).curves]


def test_the_gaas_preset_is_six_colours_by_four_line_styles():
    """24 curves: colour = crystal and geometry (6), line style = field (4); no two curves alike."""
    labels = labels_of("gaas")
    styles = grid_styles(labels)
    assert styles is not None and len(labels) == 24
    pairs = {(s["color"], s["ls"]) for s in styles.values()}
    assert len(pairs) == 24
    assert len({s["color"] for s in styles.values()}) == 6 and {s["ls"] for s in styles.values()} == set(GRID_LINES)
    same_colour = [lab for lab in labels if styles[lab]["color"] == styles["GaAs, slab b = 10 nm, R = 60 nm: 0.2 T"]["color"]]
    assert same_colour == [f"GaAs, slab b = 10 nm, R = 60 nm: {f}" for f in ("20 mT", "0.2 T", "2 T", "singlet")]


def test_the_part_with_fewer_values_sets_the_line_style():
    """beyond_2d's labels are "<field>: <geometry>, <form>": 4 fields (styles) x 6 kinds (colours)."""
    styles = grid_styles(labels_of("beyond_2d"))
    assert styles is not None
    assert styles["20 mT: disk, lattice"]["ls"] == styles["20 mT: slab, tensor"]["ls"] != styles["2 T: disk, lattice"]["ls"]
    assert styles["20 mT: disk, lattice"]["color"] == styles["2 T: disk, lattice"]["color"]


@pytest.mark.parametrize("labels", [
    ["a: x", "a: y", "b: x"],                      # not every pair
    ["a: x", "b: x", "c: x"],                      # one value in the second part
    ["B0 = 20 mT, (1,1)", "B0 = 0.2 T, (1,1)"],    # no "A: B"
    [f"{i}: {j}" for i in range(11) for j in "xy"],  # more colours than tab10 has
    [f"{i}: {j}" for i in "abcde" for j in "vwxyz"],  # 5 x 5: five line styles for the smaller part
], ids=["incomplete", "one-column", "no-colon", "eleven", "five-styles"])  # fmt: skip
def test_labels_that_are_not_a_small_grid_keep_the_old_colours(labels):
    assert grid_styles(labels) is None
