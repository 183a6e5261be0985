"""Lattice physics (MODEL.md sections 3-4): no DOLFINx, milliseconds per test but the oracle."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from app.config import ConfigError, Model, build
from app.physics import lattice

BULK = 6.93  # nm^2/s, MODEL.md's check


def iso(points, model):
    return lattice.isotropic(lattice.diffusion_tensor(points, model))


# --- constants the specification states ----------------------------------------------------


def test_dipolar_coupling_at_nearest_neighbour_in_plane():
    assert lattice.dipolar(np.array([0.563, 0, 0]), Model()) == pytest.approx(31.207, abs=5e-4)
    # along the field: (1 - 3) / R^3, twice as large and of opposite sign
    assert lattice.dipolar(np.array([0, 0, 0.563]), Model()) == pytest.approx(-2 * 31.207, abs=1e-3)


def test_hyperfine_closed_forms():
    m = Model()
    assert m.A0 == pytest.approx(1.5193e6, rel=1e-4)  # 1 neV
    total = m.A0 * (m.z0 / 2) * (math.pi * m.l0**2) / m.a0**3
    assert total * 1.054571817e-34 / 1.602176634e-19 * 1e6 == pytest.approx(79, abs=0.5)  # ueV
    assert lattice.hyperfine(np.array([0, 0, 5.0001]), m) == 0.0
    assert lattice.hyperfine(np.array([0, 0, 0]), m) == m.A0


@pytest.mark.parametrize("origin", [(0.0, 0.0), (0.21, -0.37)])
def test_square_sum_closed_form_matches_lattice_sum(origin):
    m = Model()
    n = int(6 * m.l0 / m.a0)
    r = np.arange(-n, n + 1) * m.a0
    zs = np.arange(-9, 10) * m.a0
    X = np.exp(-2 * (origin[0] + r) ** 2 / m.l0**2)
    Y = np.exp(-2 * (origin[1] + r) ** 2 / m.l0**2)
    Z = np.where(np.abs(zs) <= m.z0 / 2, np.cos(np.pi * zs / m.z0) ** 4, 0.0)
    lattice_sum = m.A0**2 * X.sum() * Y.sum() * Z.sum()
    # measured 1.04e-6 (the z sum over 17 planes against the cos^4 integral); MODEL: "1e-6"
    assert lattice_sum == pytest.approx(lattice.hyperfine_square_sum(m), rel=2e-6)


def test_cutoff_is_inclusive_on_integer_offsets():
    st = lattice.stencil(Model(r_c=2.0))
    sq = np.sum(st.offsets**2, axis=1)
    assert sq.max() == 4 and np.sum(sq == 4) == 6  # (+-2, 0, 0) and permutations are in
    assert len(st.offsets) == 32  # 33 integer points with n^2 <= 4, less the origin
    assert len(lattice.stencil(Model()).offsets) == 256


# --- the fast path against the per-pair loop --------------------------------------------------

CASES = [
    ("0.2T,s=+1/2", dict(B0=0.2, electron_sz=0.5)),
    ("0.2T,s=-1/2", dict(B0=0.2, electron_sz=-0.5)),
    ("2T,s=+1/2", dict(B0=2.0, electron_sz=0.5)),
    ("20mT,s=-1/2", dict(B0=0.02, electron_sz=-0.5)),
    ("singlet", dict(B0=0.2, electron_sz=0.0)),
]


@pytest.mark.serial
@pytest.mark.parametrize("name,params", CASES, ids=[c[0] for c in CASES])
def test_fast_path_matches_per_pair_oracle(name, params):
    """Default cutoffs at three scattered points (the oracle takes ~1 s a point)."""
    model = Model(**params)
    points = np.array([[0.0, 0.0], [17.3, -8.1], [-41.9, 26.6]])
    fast = lattice.diffusion_tensor(points, model)
    for p, D in zip(points, fast, strict=True):
        ref = lattice.site_rates_loop(p[0], p[1], model)
        np.testing.assert_allclose(D, ref.tensor(), rtol=1e-10, atol=1e-10 * np.abs(ref.tensor()).max())
        rates = lattice.site_rates(p[0], p[1], model)
        np.testing.assert_array_equal(rates.offsets, ref.offsets)
        for field in ("A_ik", "C_ik", "g_ik", "W_ik"):
            a, b = getattr(rates, field), getattr(ref, field)
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max() + 1e-300)


@pytest.mark.serial
def test_fast_path_matches_oracle_with_other_cutoffs_at_many_points():
    """Smaller r_c and r_g (cheap oracle) at 12 random points over the dot, both signs."""
    rng = np.random.default_rng(7)
    points = rng.uniform(-60, 60, (12, 2))
    for s in (0.5, -0.5):
        model = Model(B0=0.1, electron_sz=s, r_c=2.5, r_g=2.0)
        fast = lattice.diffusion_tensor(points, model, batch=5)  # several batches
        for p, D in zip(points, fast, strict=True):
            ref = lattice.site_rates_loop(p[0], p[1], model).tensor()
            np.testing.assert_allclose(D, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


# --- bulk value and isotropy -----------------------------------------------------------------


def test_singlet_is_isotropic_bulk_everywhere():
    pts = np.array([[0, 0], [10, 0], [25.5, 13.1], [-70, 44], [250, 0]], dtype=float)
    D = lattice.diffusion_tensor(pts, Model(electron_sz=0.0))
    np.testing.assert_allclose(lattice.isotropic(D), BULK, rtol=2e-3)
    np.testing.assert_allclose(D[:, 0, 0], D[:, 1, 1], rtol=1e-12)
    np.testing.assert_allclose(D[:, 0, 1], 0.0, atol=1e-12 * BULK)


@pytest.mark.parametrize("B0", [0.02, 0.2, 2.0])
def test_far_from_the_dot_the_electron_does_not_matter(B0):
    pts = np.array([[250.0, 0.0], [-180.0, 170.0], [0.0, 290.0]])
    D = lattice.diffusion_tensor(pts, Model(B0=B0))
    np.testing.assert_allclose(lattice.isotropic(D), BULK, rtol=2e-3)
    np.testing.assert_allclose(D[:, 0, 1], 0.0, atol=1e-9 * BULK)
    np.testing.assert_allclose(D[:, 0, 0], D[:, 1, 1], rtol=1e-9)


# --- square-lattice symmetries -----------------------------------------------------------------


@pytest.mark.parametrize("B0", [0.2, 2.0])
def test_square_lattice_symmetries(B0):
    model = Model(B0=B0)
    p = np.random.default_rng(3).uniform(-80, 80, (40, 2))
    D = lattice.diffusion_tensor(p, model)
    Dmx = lattice.diffusion_tensor(p * [-1, 1], model)  # mirror x -> -x
    Dsw = lattice.diffusion_tensor(p[:, ::-1], model)  # swap x <-> y
    np.testing.assert_allclose(lattice.isotropic(Dmx), lattice.isotropic(D), rtol=1e-12)
    np.testing.assert_allclose(lattice.isotropic(Dsw), lattice.isotropic(D), rtol=1e-12)
    # the tensor transforms as a tensor
    np.testing.assert_allclose(Dmx[:, 0, 1], -D[:, 0, 1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Dsw[:, 0, 0], D[:, 1, 1], rtol=1e-12)
    np.testing.assert_allclose(Dsw[:, 0, 1], D[:, 0, 1], rtol=1e-10, atol=1e-12)
    axes = np.array([[s, 0.0] for s in (-60, -15, 0, 15, 45)] + [[0.0, s] for s in (-33, 20, 70)])
    Dax = lattice.diffusion_tensor(axes, model)
    assert np.max(np.abs(Dax[:, 0, 1])) < 1e-12 * np.max(np.abs(Dax))


def test_not_azimuthally_symmetric():
    """The square lattice shows: D on the diagonal differs from D on the axis at equal r."""
    model = Model(B0=0.2)
    r = 20.0
    on_axis = iso([[r, 0]], model)[0]
    diagonal = iso([[r / math.sqrt(2), r / math.sqrt(2)]], model)[0]
    assert abs(on_axis - diagonal) > 1e-3 * on_axis


# --- known physics -----------------------------------------------------------------------------


def test_knight_shift_suppresses_radial_flip_flops_at_2T():
    """At r = l0 and 2 T, D^rr < D^tt in every direction (measured 0.09 to 0.76 of D^tt)."""
    model = Model(B0=2.0)
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    p = 30.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    D = lattice.diffusion_tensor(p, model)
    Drr, Dtt = lattice.polar_components(p, D)
    assert np.all(Drr < 0.8 * Dtt), Drr / Dtt
    on_axes = np.isclose(np.mod(angles, math.pi / 2), 0)
    assert np.all(Drr[on_axes] < 0.15 * Dtt[on_axes])  # along a lattice axis: ~0.09
    assert np.all(lattice.isotropic(D) < BULK / 2)


def test_lower_field_raises_the_central_value():
    centre = [iso([[0, 0]], Model(B0=b))[0] for b in (2.0, 0.2, 0.1, 0.05, 0.02)]
    assert all(a < b for a, b in pairwise(centre)), centre
    assert centre[0] < BULK < centre[1]  # suppressed at 2 T, enhanced at 0.2 T


def test_electron_sign_enters_only_through_the_mediated_term():
    """s -> -s is the same as omega_e -> -omega_e: the Knight detuning only appears squared."""
    pts = np.array([[0.0, 0.0], [12.0, 5.0], [30.0, -30.0]])
    plus = lattice.diffusion_tensor(pts, Model(B0=0.2, electron_sz=0.5))
    minus = lattice.diffusion_tensor(pts, Model(B0=0.2, electron_sz=-0.5))
    minus_flipped = lattice.diffusion_tensor(pts, Model(B0=0.2, electron_sz=-0.5, g_e=0.5))
    np.testing.assert_allclose(minus_flipped, plus, rtol=1e-12, atol=1e-13)
    assert abs(plus[0, 0, 0] - minus[0, 0, 0]) > 1e-3 * plus[0, 0, 0]  # yet they differ


def test_site_rates_are_inversion_symmetric_at_the_centre():
    r = lattice.site_rates(0.0, 0.0, Model(B0=0.2))
    assert len(r.W_ik) == 256 and np.all(r.W_ik > 0)
    order = {tuple(n): i for i, n in enumerate(r.offsets)}
    mirror = np.array([order[tuple(-n)] for n in r.offsets])
    np.testing.assert_allclose(r.W_ik[mirror], r.W_ik, rtol=1e-12)


# --- bad input ---------------------------------------------------------------------------------


def test_zero_field_with_an_electron_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"^model\.B0: expected a non-zero field when electron_sz != 0"):
        build(model={"B0": 0.0, "electron_sz": 0.5})
    singlet = build(model={"B0": 0.0, "electron_sz": 0.0}).model  # fine: no electron terms
    np.testing.assert_allclose(iso([[0, 0]], singlet), BULK, rtol=2e-3)
    unchecked = Model.model_construct(**{**Model().model_dump(), "B0": 0.0})
    with pytest.raises(ValueError, match="omega_e = g_e mu_B B0 / hbar must not vanish"):
        lattice.diffusion_tensor([[0.0, 0.0]], unchecked)
