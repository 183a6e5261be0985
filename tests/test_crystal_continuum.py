"""The real crystal in the continuum (MODEL.md 11): one polarisation field per isotope, each
with its own lattice D, solved in one run; h is their sum weighted by x_alpha A^alpha."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jobs
import numpy as np
import pytest
from mpi4py import MPI

import app
from app.numerics.discretisation import weights
from app.physics import crystal
from app.runtime.output import read_csv

COMM = MPI.COMM_WORLD
ROOT = Path(__file__).resolve().parents[1]
NAMES = ["75As", "69Ga", "71Ga"]


def gaas(tmp: Path, **sections) -> app.Config:
    base = {
        "model": {"crystal": "GaAs", "B0": 0.2},
        "diffusion": {"source": "lattice", "cache": str(tmp / "fields")},
        "mesh": {"h_min": 6.0, "h_max": 40.0, "directory": str(tmp / "meshes")},
        "solver": {"outputs_per_decade": 4, "t_end": 1000.0, "error_estimate": False},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return app.build(**base)


def test_weights_are_abundance_times_coupling():
    share = weights(app.build(model={"crystal": "GaAs"}))
    assert list(share) == NAMES and sum(share.values()) == pytest.approx(1.0, abs=1e-15)
    assert share["75As"] / share["71Ga"] == pytest.approx(86 / (0.39892 * 96), rel=1e-12)
    assert weights(app.build()) == {}


def test_each_isotope_decays_on_its_own_and_h_is_their_weighted_sum(shared_tmp):
    result = app.solve(gaas(shared_tmp))
    assert list(result.isotopes) == NAMES
    share = weights(result.config)
    total = sum(share[n] * result.isotopes[n] for n in NAMES)
    np.testing.assert_allclose(result.h, total, rtol=0, atol=1e-12)
    # faster D, faster decay: 71Ga (bulk D ~22) before 69Ga (~16) before 75As (~10 nm^2/s)
    t = result.isotope_decay()
    assert t["71Ga"]["t_half_s"] < t["69Ga"]["t_half_s"] < t["75As"]["t_half_s"]
    assert t["71Ga"]["t_half_s"] < result.t_half < t["75As"]["t_half_s"]
    summary = result.summary()["isotopes"]
    assert summary["75As"]["bulk_D_nm2_s"]["xx"] == pytest.approx(10.33, abs=0.05)
    assert [summary[n]["t_half_s"] for n in NAMES] == [t[n]["t_half_s"] for n in NAMES]
    assert set(result.stats["isotopes"]) == set(NAMES)
    assert result.stats["steps_accepted"] == sum(s["steps_accepted"] for s in result.stats["isotopes"].values())


def test_a_constant_d_is_the_same_for_every_isotope(shared_tmp):
    result = app.solve(gaas(shared_tmp, diffusion={"source": "constant"}))
    for name in NAMES:
        np.testing.assert_array_equal(result.isotopes[name], result.h)


def test_the_layer_solves_each_isotope_in_3d(shared_tmp):
    cfg = gaas(shared_tmp, domain={"geometry": "layer", "radius": 30.0},
               mesh={"h_min": 3.0, "h_max": 10.0, "fine_radius": 10.0, "coarse_radius": 20.0, "dz_layer": 2.5, "dz_face": 2.5},
               initial={"r0": 10.0}, model={"l0": 10.0}, solver={"t_end": 100.0})  # fmt: skip
    assert cfg.diffusion.zz == "planes"  # each isotope's own sublattice's planes
    result = app.solve(cfg)
    assert result.geometry.startswith("layer") and list(result.isotopes) == NAMES
    for name in NAMES:
        budget = result.stats["isotopes"][name]["budget"]  # the polarisation budget per isotope in 3D
        assert budget["layer"][0] == pytest.approx(1.0) and budget["host"][-1] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(result.h, sum(weights(cfg)[n] * result.isotopes[n] for n in NAMES), atol=1e-12)


@pytest.mark.serial
def test_the_cli_writes_the_isotope_columns_the_same_on_two_ranks(tmp_path):
    """overhauser.csv: t_s, h_over_h0, then h_75As, h_69Ga, h_71Ga; run.json each isotope's times;
    one rank and two ranks (both solving) agree to 1e-10."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = ["python3", "-m", "app.run", "--single", "--set", "model.crystal='GaAs'", "--set", "diffusion.source='lattice'",
            "--set", "mesh.h_min=6", "--set", "mesh.h_max=40", "--set", "solver.t_end=300", "--set", "solver.error_estimate=false",
            "--set", "solver.min_unknowns_per_rank=0", "--set", "solver.avoid_busy_cores=false",
            "--set", f"mesh.directory='{tmp_path / 'meshes'}'", "--set", f"diffusion.cache='{tmp_path / 'fields'}'"]  # fmt: skip
    runs = {}
    for ranks in (1, 2):
        cmd = (["mpirun", "-n", "2"] if ranks == 2 else []) + [*base, "--out", str(tmp_path / f"r{ranks}")]
        proc = jobs.run(cmd, timeout=300, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[ranks] = (read_csv(tmp_path / f"r{ranks}" / "run" / "overhauser.csv"),
                       json.loads((tmp_path / f"r{ranks}" / "run" / "run.json").read_text()))  # fmt: skip
    (one, s1), (two, s2) = runs[1], runs[2]
    assert list(one) == ["t_s", "h_over_h0", "h_75As", "h_69Ga", "h_71Ga"]
    assert s2["ranks_solving"] == 2
    for column in one:
        np.testing.assert_allclose(two[column], one[column], rtol=0, atol=1e-10)
    share = weights(app.build(model={"crystal": "GaAs"}))
    np.testing.assert_allclose(one["h_over_h0"], sum(share[n] * one[f"h_{n}"] for n in NAMES), atol=1e-9)
    assert s1["isotopes"]["71Ga"]["bulk_D_nm2_s"]["zz"] == pytest.approx(float(crystal.bulk_diffusion(app.build(model={"crystal": "GaAs"}).model, "71Ga")[2, 2]))


def test_the_article_crystal_has_no_isotope_columns(shared_tmp):
    result = app.solve(app.build(mesh={"h_min": 6.0, "h_max": 40.0, "directory": str(shared_tmp / "m")},
                                 solver={"outputs_per_decade": 3, "error_estimate": False}))  # fmt: skip
    assert result.isotopes is None and list(result.columns()) == ["t_s", "h_over_h0"] and "isotopes" not in result.summary()


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"diffusion": {"form": "master", "source": "lattice"}}, "diffusion.form: expected a continuum form with "
         "model.crystal = 'GaAs' on the disk (the columns are the article's reduction of its own crystal, MODEL.md 11), got 'master'"),
    ],
)  # fmt: skip
def test_what_the_real_crystal_does_not_have_is_one_line(sections, message):
    with pytest.raises(app.ConfigError) as err:
        app.build(model={"crystal": "GaAs"}, **sections)
    assert str(err.value) == message


def test_the_article_lattice_refuses_the_real_crystal():
    """Never the article's lattice computed with GaAs's constants: app.physics.lattice refuses it,
    and app.lattice asks which isotope."""
    from app import lattice as public
    from app.physics import lattice as article

    model = app.build(model={"crystal": "GaAs"}).model
    with pytest.raises(ValueError, match=r"^model.crystal: app.physics.lattice is the article's crystal, got 'GaAs'"):
        article.diffusion_tensor(np.zeros((1, 2)), model)
    with pytest.raises(ValueError, match=r"^isotope: expected one of 75As, 69Ga, 71Ga with model.crystal = 'GaAs', got None$"):
        public.diffusion_tensor(np.zeros((1, 2)), model)
    D = public.diffusion_tensor_3d(np.zeros((1, 3)), model, isotope="75As")
    np.testing.assert_array_equal(D, crystal.diffusion_tensor_3d(np.zeros((1, 3)), model, "75As"))
    article_model = app.build().model
    np.testing.assert_array_equal(public.rates(np.zeros((1, 3)), article_model), public.rates(np.zeros((1, 3)), article_model, "75As"))


def test_the_gaas_presets_put_the_crystals_side_by_side():
    from app.studies import catalogue

    gaas = catalogue.resolve(catalogue.load_preset("gaas"))
    crystals = {(c.model.crystal, c.domain.geometry) for c in gaas.configs}
    assert crystals == {(x, g) for x in ("article", "GaAs") for g in ("disk", "layer", "slab")}
    assert {c.model.B0 for c in gaas.configs if c.model.electron_sz} == {0.02, 0.2, 2.0}
    assert sum(c.model.electron_sz == 0 for c in gaas.configs) == 6  # the singlet in each geometry and crystal
    assert all(c.model.a0 == (0.56533 if c.model.crystal == "GaAs" else 0.563) for c in gaas.configs)
    rc = catalogue.resolve(catalogue.load_preset("gaas_rc"))
    assert sorted({(c.model.r_c, c.model.r_g) for c in rc.configs}) == [(3.0, 3.0), (4.0, 4.0), (5.0, 5.0)]
    slab = catalogue.resolve(catalogue.load_preset("tau_vs_B0_gaas"))
    assert {(c.model.crystal, c.domain.geometry, c.diffusion.zz) for c in slab.configs} == {("GaAs", "slab", "planes")}


def test_the_report_gives_each_isotope_beside_the_total_and_the_measured_d():
    from app.studies.report import isotope_lines

    iso = {n: {"t_half_s": 1.0 + i, "t_1e_s": 2.0 + i, "share_of_h0": 0.3, "bulk_D_nm2_s": {"xx": 10.0 + i, "zz": 12.0}}
           for i, n in enumerate(NAMES)}  # fmt: skip
    lines = isotope_lines([{"label": "GaAs: 0.2 T", "t_half_s": 1.5, "t_1e_s": 2.5, "isotopes": iso}, {"label": "article"}])
    text = "\n".join(lines)
    assert "| GaAs: 0.2 T | 1.5 | 1 | 2 | 3 | 2.5 | 2 | 3 | 4 |" in text
    assert "| 69Ga | 0.3 | 11 | 12 |" in text
    assert "10 nm^2/s, bulk GaAs (about 1e-13 cm^2/s) (Paget, PRB 25, 4444 (1982))" in text and "15 +- 7 nm^2/s" in text
    assert isotope_lines([{"label": "article"}]) == []
