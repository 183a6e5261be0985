"""The pump phase (MODEL.md 12): du/dt = div(D grad u) + Gamma(x) (P_inf - u) from u = 0 for
t_pump, Gamma = gamma0 (A(x) / A_ref)^2, then the decay from the state it left.

Checked: without diffusion the build-up is P_inf (1 - exp(-Gamma t)) at every node (lumped
mass) or site; a strong short pump approaches it with diffusion; the decay after the pump
conserves polarisation under zero flux; no pump is the run of before; overhauser.csv and
run.json through both phases; the isotopes pump in the ratio of their A^2; the lattice's
pump is its diagonal; bad input is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jobs
import numpy as np
import pytest
from mpi4py import MPI

import app
from app.numerics.discretisation import weights
from app.numerics.fem import DiffusionProblem
from app.numerics.master import MasterProblem
from app.physics import pump
from app.physics.observables import decay_times
from app.run import run_case
from app.runtime.output import read_csv
from app.studies import catalogue

COMM = MPI.COMM_WORLD
ROOT = Path(__file__).resolve().parents[1]
#: a coarse disk (the default R = 300 nm) and a small layer
COARSE = {"h_min": 6.0, "h_max": 40.0}
LAYER = {"domain": {"geometry": "layer", "radius": 60.0},
         "mesh": {"h_min": 6.0, "h_max": 20.0, "fine_radius": 30.0, "coarse_radius": 50.0, "dz_layer": 1.0,
                  "dz_face": 0.5}}  # fmt: skip


def quiet(mesh_dir, **sections) -> app.Config:
    base = {"mesh": {**COARSE, "directory": str(mesh_dir)}, "output": {"progress": False},
            "solver": {"error_estimate": False, "t_end": 1000.0, "outputs_per_decade": 4}}  # fmt: skip
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return app.build(**base)


def nodes(problem: DiffusionProblem):
    """Coordinates (nm) and u at this rank's own nodes."""
    owned = problem.V.dofmap.index_map.size_local
    return problem.V.tabulate_dof_coordinates()[:owned], problem.u.x.array[:owned]


def max_all(values) -> float:
    return COMM.allreduce(float(np.max(np.abs(values), initial=0.0)), op=MPI.MAX)


# --- the closed form ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sections, isotope",
    [({}, None), (LAYER, None), ({"model": {"crystal": "GaAs"}}, "69Ga")],
    ids=["disk", "layer", "GaAs 69Ga"],
)
def test_without_diffusion_the_build_up_is_the_closed_form_at_every_node(mesh_dir, sections, isotope):
    """D = 0, lumped mass: each node pumps as P_inf (1 - exp(-Gamma(x) t)), to the time
    integration's tolerance, at the end and (through h) at every output time (zero flux: no
    node is held at u = 0 by the rim)."""
    cfg = quiet(mesh_dir, **sections, pump={"t_pump": 0.5, "gamma0": 4.0, "p_inf": 0.8})
    cfg.mesh.mass = "lumped"
    cfg.domain.boundary = "zero_flux"
    p = DiffusionProblem(cfg, COMM, diffusion=0.0, isotope=isotope).setup()
    run = p.pump()
    x, u = nodes(p)
    gamma = pump.rate(x, cfg, isotope)
    if isotope is not None:  # 69Ga pumps at (74 / 96)^2 of 71Ga's rate, the largest
        assert pump.rate_scale(cfg.model, isotope) == pytest.approx((74 / 96) ** 2, rel=1e-12)
    error = max_all(u - pump.closed_form(gamma, 0.5, 0.8))
    assert error < 1e-4, error
    assert max_all(u) > 0.5  # pumped well into the non-linear part of 1 - exp(-Gamma t)
    # h(t) = w . u against w . (closed form at t), over h_sat, at every output time
    exact = p.state.duplicate()
    own = exact.getArray()
    for t, h in zip(run.times, run.h_raw, strict=True):
        own[:] = pump.closed_form(gamma, t, 0.8)
        assert abs(h - p.w.dot(exact)) / p.saturation() < 1e-4, t


def test_a_strong_short_pump_approaches_the_closed_form(mesh_dir):
    """With diffusion (D = 6.93 nm^2/s), Gamma t_pump = 1.5 at the centre: the shorter the pump
    against diffusion, the closer u is to P_inf (1 - exp(-Gamma t))."""
    errors = []
    for t_pump in (1.0, 1e-1, 1e-2):
        cfg = quiet(mesh_dir, mesh={"mass": "lumped"}, pump={"t_pump": t_pump, "gamma0": 1.5 / t_pump})
        p = DiffusionProblem(cfg, COMM).setup()
        p.pump()
        x, u = nodes(p)
        errors.append(max_all(u - pump.closed_form(pump.rate(x, cfg), t_pump)))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 5e-4, errors


# --- the decay after the pump ---------------------------------------------------------------------


def test_the_decay_after_the_pump_conserves_polarisation_under_zero_flux(mesh_dir):
    cfg = quiet(mesh_dir, domain={"boundary": "zero_flux"}, diffusion={"form": "conservative"},
                pump={"t_pump": 0.5, "gamma0": 4.0})  # fmt: skip
    result = app.solve(cfg)
    s = result.stats
    assert s["pump"]["integral_start"] == 0.0
    assert s["integral_start"] == pytest.approx(s["pump"]["integral_end"], rel=1e-14)  # the state handed over
    assert abs(s["integral_end"] / s["integral_start"] - 1) < 1e-8, (s["integral_start"], s["integral_end"])
    assert result.h[0] == pytest.approx(1.0, abs=1e-14) and result.h[-1] < 0.5  # it did spread


def test_no_pump_is_the_run_of_before(mesh_dir):
    """t_pump = 0 (gamma0 given or not): the same numbers and columns as without [pump]."""
    plain = app.solve(quiet(mesh_dir))
    off = app.solve(quiet(mesh_dir, pump={"gamma0": 3.0}))
    assert np.array_equal(plain.h, off.h) and np.array_equal(plain.t, off.t)
    assert list(off.columns()) == ["t_s", "h_over_h0"] and off.pump is None
    assert "pump" not in off.summary()


def test_the_electron_state_during_the_pump_is_its_own(mesh_dir):
    """pump.electron_sz = +1/2 with the decay in the singlet: a second problem on the same mesh
    pumps and hands its state over; with a constant D (independent of the electron) the answer
    is that of one problem in one state."""
    one = app.solve(quiet(mesh_dir, pump={"t_pump": 0.5, "gamma0": 4.0}))
    two = app.solve(quiet(mesh_dir, model={"electron_sz": 0.0}, pump={"t_pump": 0.5, "gamma0": 4.0, "electron_sz": 0.5}))
    np.testing.assert_allclose(two.pump.h_over_hsat, one.pump.h_over_hsat, rtol=1e-12, atol=0)
    np.testing.assert_allclose(two.h, one.h, rtol=1e-10, atol=1e-13)
    assert two.summary()["pump"]["electron_sz"] == 0.5 and two.summary()["pump"]["electron_sz_decay"] == 0.0


# --- what is written ------------------------------------------------------------------------------


def test_csv_and_run_json_through_both_phases(mesh_dir, shared_tmp):
    cfg = quiet(mesh_dir, pump={"t_pump": 2.0, "gamma0": 5.0}, output={"name": "pumped", "progress": False})
    summary = run_case(cfg, shared_tmp)
    d = shared_tmp / "pumped"
    c = read_csv(d / "overhauser.csv")
    assert list(c) == ["t_s", "h_over_h0", "h_over_hsat", "phase"]
    phase = c["phase"]
    n = int(np.sum(phase == 0))
    assert set(np.unique(phase)) == {0.0, 1.0} and np.all(phase[:n] == 0) and np.all(phase[n:] == 1)
    t, h, sat = c["t_s"], c["h_over_h0"], c["h_over_hsat"]
    assert t[0] == 0 and h[0] == 0 and sat[0] == 0  # from u = 0
    assert np.all(np.diff(t) >= 0) and t[n - 1] == t[n] == 2.0  # the end of the pump: its last row, the decay's first
    assert h[n - 1] == pytest.approx(1.0, abs=1e-10) and h[n] == pytest.approx(1.0, abs=1e-10)
    assert np.all(np.diff(sat[:n]) > 0) and 0 < sat[n - 1] < 1
    np.testing.assert_allclose(t[n:] - 2.0, cfg.solver.output_times(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h, sat / sat[n - 1], rtol=1e-9)
    record = json.loads((d / "run.json").read_text())
    p = record["pump"]
    assert (p["gamma0_per_s"], p["t_pump_s"], p["p_inf"], p["electron_sz"]) == (5.0, 2.0, 1.0, 0.5)
    assert p["h_over_hsat_reached"] == pytest.approx(sat[n - 1], rel=1e-9)
    assert 0.9 < p["u_centre"] <= 1.0 and 20.0 < p["width_nm"] < 40.0 and "second moment" in p["width_method"]
    # decay times counted from the end of the pump
    assert record["decay"]["t_half_s"] == pytest.approx(decay_times(t[n:] - 2.0, h[n:])["t_half_s"], rel=1e-6)
    assert record["decay"]["counted_from"].startswith("the end of the pump")
    assert summary["pump"] == p
    assert (d / "pump_profile.png").stat().st_size > 10_000


def test_gaas_isotopes_pump_in_the_ratio_of_their_couplings_squared(mesh_dir):
    """A weak pump (Gamma t << 1): each isotope reaches Gamma_alpha t of h_sat, so they stand in
    the ratio (A_alpha / A_ref)^2; with a constant D each then decays alike."""
    cfg = quiet(mesh_dir, model={"crystal": "GaAs"}, pump={"t_pump": 1e-3, "gamma0": 1.0})
    result = app.solve(cfg)
    iso = result.summary()["pump"]["isotopes"]
    reached = {n: v["h_over_hsat_reached"] for n, v in iso.items()}
    assert reached["69Ga"] / reached["71Ga"] == pytest.approx((74 / 96) ** 2, rel=1e-3)
    assert reached["75As"] / reached["71Ga"] == pytest.approx((86 / 96) ** 2, rel=1e-3)
    share = weights(cfg)
    assert result.pump.record["h_over_hsat_reached"] == pytest.approx(sum(share[n] * reached[n] for n in share), rel=1e-12)
    assert list(result.columns()) == ["t_s", "h_over_h0", "h_over_hsat", "h_75As", "h_69Ga", "h_71Ga", "phase"]
    for h in result.isotopes.values():  # alike: their profiles differ by O(Gamma t) = 1e-3 of the linear one's
        np.testing.assert_allclose(h, result.h, rtol=1e-5, atol=1e-12)


# --- the lattice ----------------------------------------------------------------------------------


def small_lattice(geometry: str, decay_sz: float = 0.5, **pump_section) -> app.Config:
    """A small lattice (test_master's): R = 2.5 nm, z0 = 2 nm, l0 = 1.5 nm, 0.2 T."""
    return app.build(
        model={"z0": 2.0, "l0": 1.5, "B0": 0.2, "electron_sz": decay_sz}, initial={"r0": 1.5},
        domain={"radius": 2.5, "geometry": geometry},
        diffusion={"form": "master", "source": "lattice", "cache": ""},
        solver={"t_end": 10.0, "t_first": 0.01, "outputs_per_decade": 2, "error_estimate": False},
        output={"progress": False}, pump=pump_section,
    )  # fmt: skip


@pytest.mark.parametrize("geometry", ["disk", "layer"])
def test_the_lattice_pumps_on_each_sites_diagonal(geometry):
    cfg = small_lattice(geometry, t_pump=1e-4, gamma0=1e4, p_inf=0.7)
    p = MasterProblem(cfg, COMM).setup()
    K, b, K_pc = p.pump_operator()
    m_gamma = p.m * pump.rate(p.xyz, cfg)
    assert np.array_equal(b.getArray(), 0.7 * m_gamma)
    for pumped, plain in ((K, p.K), (K_pc, p.K_pc)):
        diff = pumped.copy()
        diff.axpy(-1.0, plain)
        np.testing.assert_allclose(diff.getDiagonal().getArray(), m_gamma, rtol=1e-14, atol=0)
        zero = diff.getDiagonal()
        zero.zeroEntries()
        diff.setDiagonal(zero)  # the diagonal removed
        assert diff.norm() == 0.0  # nothing else changed
    # the lattice's rates are slow against this pump: u is the closed form to the rates' share
    p.pump()
    u = p.state.getArray()
    error = max_all(u - pump.closed_form(pump.rate(p.xyz, cfg), 1e-4, 0.7))
    assert error < 2e-4, error
    assert max_all(u) > 0.4


def test_the_lattice_decay_follows_its_own_electron_state():
    """Pumped with s = +1/2, decaying in the singlet: the same pump as with s = +1/2
    throughout, a different (slower, no mediated terms) decay."""
    pumped = dict(t_pump=0.05, gamma0=40.0)
    same = app.solve(small_lattice("disk", **pumped))
    other = app.solve(small_lattice("disk", 0.0, **pumped, electron_sz=0.5))
    np.testing.assert_allclose(other.pump.h_over_hsat, same.pump.h_over_hsat, rtol=1e-12, atol=0)
    assert not np.allclose(other.h, same.h, rtol=1e-3)
    assert other.pump.record["electron_sz"] == 0.5 and other.pump.record["electron_sz_decay"] == 0.0


# --- input ----------------------------------------------------------------------------------------

ERRORS = [
    ({"pump": {"t_pump": 1.0}},
     "pump.gamma0: expected a pump rate in 1/s with pump.t_pump = 1 (a free parameter, MODEL.md 12: no default), got None"),
    ({"pump": {"t_pump": -1.0, "gamma0": 1.0}}, "pump.t_pump: expected greater than or equal to 0, got -1.0"),
    ({"pump": {"t_pump": 1.0, "gamma0": 0.0}}, "pump.gamma0: expected a positive rate (1/s), got 0.0"),
    ({"pump": {"t_pump": 1.0, "gamma0": -2.0}}, "pump.gamma0: expected a positive rate (1/s), got -2.0"),
    ({"pump": {"electron_sz": 0.0}},
     "pump.electron_sz: expected +0.5 or -0.5 (pumping needs the electron, MODEL.md 12), got 0.0"),
    ({"model": {"electron_sz": 0.0}, "pump": {"t_pump": 1.0, "gamma0": 1.0}},
     "pump.electron_sz: expected +0.5 or -0.5 with pump.t_pump > 0 (pumping needs the electron, MODEL.md 12; "
     "its default is model.electron_sz, the (2,0) singlet here), got 0.0"),
    ({"model": {"electron_sz": 0.0, "B0": 0.0}, "pump": {"t_pump": 1.0, "gamma0": 1.0, "electron_sz": 0.5}},
     "model.B0: expected a non-zero value with pump.t_pump > 0 (the pump's electron, s = +0.5, needs "
     "omega_e = g_e mu_B B0 / hbar != 0), got 0.0"),
    ({"pump": {"t_pump": 1.0, "gamma0": 1.0, "p_inf": 0.0}}, "pump.p_inf: expected greater than 0, got 0.0"),
    ({"pump": {"t_pump": 1.0, "gamma0": 1.0, "p_inf": 1.5}}, "pump.p_inf: expected less than or equal to 1, got 1.5"),
    ({"pump": {"t_pump": 1.0, "gamma0": float("inf")}}, "pump.gamma0: expected a finite number, got inf"),
    ({"pump": {"t_pump": True}}, "pump.t_pump: expected a number, got True"),
    ({"domain": {"geometry": "slab"}, "initial": {"profile": "pumped"}, "pump": {"t_pump": 1.0, "gamma0": 1.0}},
     "initial.profile: expected no value with pump.t_pump > 0 (the pump makes the initial state), got 'pumped'"),
    ({"pump": {"T": 1.0}}, "pump.T: unknown key 'T' in [pump]"),
]  # fmt: skip


@pytest.mark.parametrize("sections, text", ERRORS, ids=[e[1].split(":")[0] + f"-{i}" for i, e in enumerate(ERRORS)])
def test_bad_pump_input_is_one_line(sections, text):
    with pytest.raises(app.ConfigError) as err:
        app.build(**sections)
    assert str(err.value) == text


@pytest.mark.serial
def test_the_command_line_refuses_a_pump_without_a_rate(tmp_path):
    proc = jobs.run([sys.executable, "-m", "app.run", "--single", "--set", "pump.t_pump=1", "--out", str(tmp_path)],
                    timeout=120, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: pump.gamma0: expected a pump rate in 1/s with pump.t_pump = 1 (a free parameter, MODEL.md 12: "
        "no default), got None"
    ]
    assert not any(tmp_path.iterdir())


def test_the_tau_vs_pump_preset_sweeps_pump_times_on_the_disk_and_the_slab():
    sweep = catalogue.resolve(catalogue.load_preset("tau_vs_pump"), quick=True)
    assert len(sweep.configs) >= 4
    assert {c.domain.geometry for c in sweep.configs} == {"disk", "slab"}
    assert all(c.pump.active for c in sweep.configs) and len({c.pump.gamma0 for c in sweep.configs}) == 1
    assert len({c.pump.t_pump for c in sweep.configs}) >= 2


def test_a_figure_preset_refuses_a_pump():
    """A figure's curves are solved as one problem each from [initial]'s state: a pump is
    refused there in one line, not ignored."""
    with pytest.raises(app.ConfigError) as err:
        catalogue.resolve(catalogue.load_preset("fig3"), overrides=["pump.t_pump=1", "pump.gamma0=1"])
    assert str(err.value) == ("fig3 [B0 = 20 mT, (1,1)]: pump.t_pump: expected 0 in a figure preset (its curves are "
                              "solved without the pump phase; --single or a sweep pumps), got 1")  # fmt: skip
