"""Validation figures (kind = "validation"): a small preset end to end, and its metric."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import COMM

from app.config import ConfigError
from app.runtime.output import read_csv
from app.studies import catalogue as app_preset
from app.studies import figures, report
from app.studies.validation import metrics

SMALL = """
[figure]
kind = "validation"
title = "small validation"
window = [0.01, 100.0]

[config]
diffusion = { source = "lattice", cache = "" }
domain = { radius = 8.0 }
model = { l0 = 3.0, z0 = 2.0 }
initial = { r0 = 3.0 }
mesh = { h_min = 0.5, h_max = 1.0, fine_radius = 2.0, coarse_radius = 4.0 }
solver = { t_end = 100.0, t_first = 0.01, outputs_per_decade = 4 }
output = { progress = false }

[[curve]]
label = "columns"
group = "(a)"
reference = true
diffusion = { form = "master" }

[[curve]]
label = "tensor"
group = "(a)"
diffusion = { form = "tensor" }

[[curve]]
label = "b: columns"
group = "(b)"
reference = true
diffusion = { form = "master" }

[[curve]]
label = "b: slab"
group = "(b)"
diffusion = { form = "master" }
domain = { geometry = "slab", barrier = 1.0 }
initial = { profile = "pumped" }
"""


def test_metric_is_the_largest_difference_inside_the_window():
    t = np.array([0.0, 0.01, 1.0, 10.0, 1e4])
    h = np.array([1.0, 0.9, 0.5, 0.2, 0.0])
    ref = np.array([1.0, 0.5, 0.45, 0.3, 0.5])
    assert metrics(t, h, ref, (0.1, 3000)) == pytest.approx(0.1)  # 0.4 at 0.01 s and 0.5 at 1e4 s are outside


def test_small_validation_preset_runs_and_measures_against_its_lattice(shared_tmp):
    path = shared_tmp / "small.toml"
    if COMM.rank == 0:
        path.write_text(SMALL)
    COMM.barrier()
    preset = app_preset.resolve(app_preset.load_preset(str(path)), overrides=[f"mesh.directory='{shared_tmp / 'meshes'}'"])
    info = figures.run_preset(preset, shared_tmp / "out", COMM)
    rows = {c["label"]: c for c in info["curves"]}
    assert rows["columns"]["max_abs_dh"] == 0.0 and rows["columns"]["reference"]
    assert 0 < rows["tensor"]["max_abs_dh"] < 0.2
    assert rows["b: slab"]["geometry"].startswith("slab, R = 8 nm, -2 <= z <= 2 nm (barrier 1 nm), pumped")
    cols = read_csv(shared_tmp / "out" / "small" / "small.csv")
    sel = (cols["t_s"] >= 0.01) & (cols["t_s"] <= 100)
    assert rows["b: slab"]["max_abs_dh"] == pytest.approx(np.max(np.abs(cols["b: slab"][sel] - cols["b: columns"][sel])))
    if COMM.rank == 0:
        assert (shared_tmp / "out" / "small" / "small.png").stat().st_size > 10_000
        run = json.loads((shared_tmp / "out" / "small" / "run.json").read_text())
        assert "layer_share_end" in run["solves"][3]["row"] and run["curves"][3]["label"] == "b: slab"
        md = report.summary_markdown([info])
        assert "| (b) | b: slab | slab, R = 8 nm" in md


def test_a_group_needs_exactly_one_reference(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SMALL.replace('reference = true\ndiffusion = { form = "master" }\n\n[[curve]]\nlabel = "tensor"',
                                  'diffusion = { form = "master" }\n\n[[curve]]\nlabel = "tensor"'))
    with pytest.raises(ConfigError, match=r"preset bad: group '\(a\)': expected one curve with reference = true, got 0"):
        app_preset.load_preset(str(path))
