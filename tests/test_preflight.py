"""Pre-flight checks (issue 28): sizes counted in closed form before anything is allocated, the
key that is too small named, and two curves' files never written over each other."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import jobs
import pytest

import app
from app.numerics import budget, cylinder
from app.studies import catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_the_level_count_is_that_of_the_levels():
    for mesh in ({}, {"dz_face": 0.1, "dz_layer": 0.5}, {"dz_host": 0.7}):
        cfg = app.build(domain={"geometry": "slab", "barrier": 12.0}, mesh=mesh)
        assert cylinder.level_count(cfg) == len(cylinder.z_levels(cfg))


@pytest.mark.parametrize("dz", [1e-9, 3e-8, 1e-7])
def test_a_runaway_size_in_z_is_refused_naming_the_dz_keys(dz):
    cfg = app.build(domain={"geometry": "slab"}, mesh={"dz_face": dz, "dz_layer": dz})
    with pytest.raises(app.ConfigError) as err:
        budget.check(cfg)
    assert str(err.value).startswith("mesh: expected at most 5.33e+06 cells (solver.max_memory_gb = 8), got about ")
    assert str(err.value).endswith(f"levels in z from mesh.dz_layer = {dz:g}, mesh.dz_face = {dz:g}, mesh.dz_host = 2)")


@pytest.mark.serial
def test_the_cli_refuses_it_in_one_line_within_little_memory(tmp_path):
    """Before: 6 GB in 26 s, or a MemoryError of 37 GiB. Now one line, under a 1.5 GB address-space limit."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))

    cmd = [sys.executable, "-m", "app.run", "--single", "--set", "domain.geometry='slab'", "--set", "mesh.dz_face=1e-9",
           "--set", "mesh.dz_layer=1e-9", "--out", str(tmp_path / "out")]  # fmt: skip
    proc = jobs.run(cmd, timeout=120, cwd=ROOT, preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert proc.stderr.splitlines() == [
        "error: mesh: expected at most 5.33e+06 cells (solver.max_memory_gb = 8), got about 1.49e+14 "
        "(7.25e+09 levels in z from mesh.dz_layer = 1e-09, mesh.dz_face = 1e-09, mesh.dz_host = 2)"
    ]
    assert not (tmp_path / "out").exists()


def test_a_constant_d_is_not_refused_for_a_stencil_it_does_not_have():
    cfg = app.build(solver={"max_memory_gb": 1e-6})  # diffusion.source = 'constant'
    with pytest.raises(app.ConfigError, match=r"^mesh: expected at most 0\.25 cells \(solver.max_memory_gb = 1e-06\), got about 1\.17e\+04 \(domain.radius = 300, mesh.h_min = 2, mesh.h_max = 20\)$"):
        budget.check(cfg)
    with pytest.raises(app.ConfigError, match=r"^model.r_c: expected a stencil within solver.max_memory_gb = 1e-06"):
        app.build(solver={"max_memory_gb": 1e-6}, diffusion={"source": "lattice"})


def test_two_labels_with_one_file_name_are_refused(tmp_path):
    preset = tmp_path / "twins.toml"
    preset.write_text('[figure]\nkind = "decay"\ntitle = "t"\nanimate = ["B0 = 20 mT", "B0 = 20 mT!"]\n'
                      '[[curve]]\nlabel = "B0 = 20 mT"\n[[curve]]\nlabel = "B0 = 20 mT!"\n')  # fmt: skip
    with pytest.raises(app.ConfigError) as err:
        catalogue.load_preset(str(preset))
    assert str(err.value) == ("preset twins: curve 2: expected a label whose file name ('b0_20_mt') no other curve has, "
                              "got 'B0 = 20 mT!' beside 'B0 = 20 mT'")  # fmt: skip


def test_a_missing_key_is_said_in_our_words(tmp_path):
    preset = tmp_path / "nokind.toml"
    preset.write_text('[figure]\ntitle = "t"\n[[curve]]\nlabel = "a"\n')
    with pytest.raises(app.ConfigError) as err:
        catalogue.load_preset(str(preset))
    assert str(err.value) == "preset nokind: figure.kind: expected a value, got none"
