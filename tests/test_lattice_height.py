"""Rates of a site at any height z (MODEL.md 8a and 10): no DOLFINx.

Tolerances: rates are compared relative to the largest rate of the site (MODEL.md 8a:
rounding leaves about 1e-13 of it; single rates whose terms nearly cancel differ more in
relative terms), so 1e-12 of the largest rate leaves a margin of more than 10x over the
largest difference measured (6e-14, at z = 2 a0 where the mirror partner (0, 0, -4) is
resonant).
"""

from __future__ import annotations

import numpy as np
import pytest

from app.config import NEV_RAD_S, Model
from app.physics import lattice

A0_NM = 0.563
#: every Model field the recorded numbers depend on, pinned so a change of defaults elsewhere
#: does not move them
PINNED = dict(a0=A0_NM, gamma=4.596e7, A0=NEV_RAD_S, l0=30.0, z0=10.0, g_e=-0.5, r_c=4.0, r_g=4.0)

CASES = {
    "0.2T,s=+1/2": dict(B0=0.2, electron_sz=0.5),
    "2T,s=+1/2": dict(B0=2.0, electron_sz=0.5),
    "20mT,s=-1/2": dict(B0=0.02, electron_sz=-0.5),
    "singlet": dict(B0=0.2, electron_sz=0.0),
}
BULK_XX, BULK_ZZ = 6.93, 19.94  # nm^2/s, MODEL.md 8a


def model(name: str) -> Model:
    return Model(**PINNED, **CASES[name])


def rel_to_largest(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| over the largest |b|: the comparison MODEL.md 8a prescribes for rates."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def column(offsets: np.ndarray, n) -> int:
    return int(np.flatnonzero(np.all(offsets == np.asarray(n), axis=1))[0])


# --- z = 0 is today's 2D fast path ------------------------------------------------------------

#: recorded from the 2D fast path (site_rates, diffusion_tensor) before the height was
#: added: W at offsets RECORDED_OFFSETS, sum and max of all 256 W, and D^xx, D^xy, D^yy
#: (D^xy at the centre was recorded as rounding, <= 1e-13, and is written 0.0)
RECORDED_OFFSETS = [(1, 0, 0), (0, 0, 1), (1, 1, -1), (2, -1, 3), (-4, 0, 0)]
RECORDED = {
    "0.2T,s=+1/2": [
        ((0.0, 0.0), (15.183649611287832, 5.65320503906057, 1.4066599027673348, 0.10405929943747128, 8.10654691488917),
         933.3731316712149, 29.32932169212955, (479.07802393050497, 0.0, 479.078023930505)),
        ((17.3, -8.1), (0.005442316818238888, 4.389611755359795, 0.3016462936330929, 0.024842397952444854,
                        0.19021051020419436),
         128.6260712663375, 9.044587242584019, (49.93101144222699, 14.012433504363567, 61.42849996481876)),
        ((-41.9, 26.6), (2.9706249743366606, 19.90465016422695, 0.0006257191629418684, 0.0007135487132628442,
                         6.185213833603477e-05),
         59.635873583985656, 19.90465016422695, (1.5698947242005898, 0.2439922853420135, 2.179296196120041)),
    ],
    "2T,s=+1/2": [
        ((0.0, 0.0), (7.873148309709827, 1.6880988677425253, 0.014098091651113488, 0.0012642403922402464,
                      0.07071232774412092),
         40.60340425482331, 7.873148309709827, (5.768423484742534, 0.0, 5.768423484742534)),
        ((17.3, -8.1), (0.6118126196586506, 2.2775862153176702, 0.0030231016607050075, 0.0003804341068835289,
                        0.0014067802298110097),
         9.836187090554716, 2.2775862153176702, (0.5778841207149736, 0.06297505626455337, 0.8214270489880904)),
        ((-41.9, 26.6), (3.0272483223720665, 19.790645751954028, 6.262856816416081e-06, 0.00038304922187812606,
                         0.00019028500056845717),
         59.71216439703937, 19.790645751954028, (1.631995844051676, 0.2852011052460359, 2.2780164030708385)),
    ],
    "20mT,s=-1/2": [
        ((0.0, 0.0), (3621.00602907838, 97.42838145173448, 116.96978394356316, 8.467543075889893, 637.4375546369912),
         81660.40450933643, 3621.00602907838, (37695.859687867494, 0.0, 37695.8596878675)),
        ((17.3, -8.1), (63.23305886076305, 21.5845239782004, 25.148148822539905, 1.9544855968367625,
                        16.415427719209262),
         10569.34600180861, 734.1880908961169, (4290.071556289171, 1244.7709131179427, 5396.188952248262)),
        ((-41.9, 26.6), (3.037965280845441, 15.45573515103438, 0.0575804671961511, 0.003090627505303797,
                         0.005364394212805142),
         54.83168123829223, 15.45573515103438, (3.9258443647997887, 1.2457575017889553, 5.247688319840807)),
    ],
    "singlet": [
        ((x, y), (13.764523904732407, 51.20005551117595, 0.0, 0.0035473651691063177, 0.002788710062153485),
         173.02709156707277, 51.20005551117595, (6.932480582784527, 0.0, 6.932480582784528))
        for x, y in ((0.0, 0.0), (17.3, -8.1), (-41.9, 26.6))
    ],
}


@pytest.mark.parametrize("name", list(CASES))
def test_rates_at_the_mid_plane_are_the_recorded_2d_fast_path(name):
    """rates(z = 0) reproduces the numbers of the 2D fast path recorded before the height
    was added, and agrees with site_rates and diffusion_tensor now.

    1e-12 of the largest rate (D: of the largest |D|): recorded to 16 digits, so only a
    real change, not rounding, can exceed it (measured: bit-identical).
    """
    m = model(name)
    st = lattice.stencil(m)
    cols = [column(st.offsets, n) for n in RECORDED_OFFSETS]
    xy = np.array([r[0] for r in RECORDED[name]])
    W = lattice.rates(np.column_stack([xy, np.zeros(len(xy))]), m)
    D2 = lattice.diffusion_tensor(xy, m)
    for row, (_, w_sel, w_sum, w_max, (dxx, dxy, dyy)) in zip(W, RECORDED[name], strict=True):
        assert np.max(np.abs(row[cols] - np.array(w_sel))) < 1e-12 * w_max
        assert abs(row.max() - w_max) < 1e-12 * w_max
        assert abs(row.sum() - w_sum) < 1e-12 * 256 * w_max
        D_rec = np.array([[dxx, dxy], [dxy, dyy]])
        D_now = 0.5 * np.einsum("i,ia,ib->ab", row, st.offsets[:, :2] * m.a0, st.offsets[:, :2] * m.a0)
        assert np.max(np.abs(D_now - D_rec)) < 1e-12 * np.max(np.abs(D_rec))
    for (x, y), row, D in zip(xy, W, D2, strict=True):
        assert rel_to_largest(lattice.site_rates(x, y, m).W_ik, row) < 1e-12
        D_rates = 0.5 * np.einsum("i,ia,ib->ab", row, st.offsets[:, :2] * m.a0, st.offsets[:, :2] * m.a0)
        assert np.max(np.abs(D - D_rates)) < 1e-12 * np.max(np.abs(D))


# --- the per-pair oracle at heights inside, at and beyond the face of the layer ----------------

FACE = int(np.floor(10.0 / (2 * A0_NM)))  # the last plane inside the layer: 8
HEIGHTS = {"inside": 2 * A0_NM, "face": FACE * A0_NM, "outside": 10 * A0_NM}
SITES = {"inside": (4.3, -2.9), "face": (-11.7, 6.2), "outside": (0.0, 0.0)}


@pytest.mark.serial
@pytest.mark.parametrize("where", list(HEIGHTS))
@pytest.mark.parametrize("name", list(CASES))
def test_rates_match_the_per_pair_oracle_at_height(name, where):
    """rates, site_rates and diffusion_tensor_3d against site_rates_loop (~1 s a site).

    W to 1e-12 of the largest rate (module docstring: measured <= 6e-14); the other
    per-pair terms to 1e-12 of their largest value (measured <= 2e-15).
    """
    m = model(name)
    z = HEIGHTS[where]
    x, y = SITES[where]
    ref = lattice.site_rates_loop(x, y, m, z)
    st = lattice.stencil(m)
    np.testing.assert_array_equal(st.offsets, ref.offsets)
    W = lattice.rates([[x, y, z]], m)[0]
    assert rel_to_largest(W, ref.W_ik) < 1e-12
    fast = lattice.site_rates(x, y, m, z)
    for field in ("A_ik", "C_ik", "g_ik"):
        a, b = getattr(fast, field), getattr(ref, field)
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b)), field
    assert abs(fast.A_k - ref.A_k) <= 1e-12 * m.A0
    assert rel_to_largest(fast.W_ik, ref.W_ik) < 1e-12
    D = lattice.diffusion_tensor_3d([[x, y, z]], m)[0]
    assert np.max(np.abs(D - ref.tensor_3d())) < 1e-12 * np.max(np.abs(ref.tensor_3d()))
    if where == "outside" and name != "singlet":
        # beyond the face the site has A_k = 0, but partners within r_c reach into the layer
        assert ref.A_k == 0.0 and np.any(ref.A_i > 0)


@pytest.mark.serial
@pytest.mark.parametrize("z", [1.1, 4.9])
def test_rates_match_the_oracle_between_lattice_planes(z):
    """Any z, not only a0 m (MODEL.md 10): the same comparison at 0.2 T; 1e-12 as above."""
    m = model("0.2T,s=+1/2")
    ref = lattice.site_rates_loop(4.3, -2.9, m, z)
    assert rel_to_largest(lattice.rates([[4.3, -2.9, z]], m)[0], ref.W_ik) < 1e-12


# --- W_ik = W_ki on the 3D lattice --------------------------------------------------------------


@pytest.mark.parametrize("name", ["0.2T,s=+1/2", "2T,s=+1/2", "20mT,s=-1/2"])
def test_rates_are_symmetric_on_the_3d_lattice(name):
    """For sites k at several heights (mid-plane, inside, the face planes, beyond, and between
    planes) and every partner i = k + n: the rate of i (as the site, offset -n) towards k
    equals W_ik. 1e-12 of the largest rate of k (MODEL.md 8a: rounding ~1e-13; measured
    <= 1.6e-13, the partner's position k + a0 n is itself rounded).
    """
    m = model(name)
    st = lattice.stencil(m)
    a0 = m.a0
    minus = np.array([column(st.offsets, -n) for n in st.offsets])
    sites = [(3.1, -1.7, 0.0), (3.1, -1.7, 2 * a0), (-7.9, 12.4, 7 * a0), (10.2, 4.4, FACE * a0),
             (10.2, 4.4, -FACE * a0), (0.0, 0.0, 9 * a0), (22.0, -5.0, 4.9), (5.5, 5.5, -1.3)]
    for site in sites:
        k = np.array(site)
        W_k = lattice.rates([k], m)[0]
        partners = k + a0 * st.offsets
        W_i = lattice.rates(partners, m)  # one row per partner i, at up to 9 heights
        W_ki = W_i[np.arange(len(minus)), minus]
        assert rel_to_largest(W_ki, W_k) < 1e-12, site
        assert W_k.max() > 0


# --- the 3D tensor ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_tensor_3d_at_the_mid_plane_is_the_2d_tensor(name):
    """xy block = diffusion_tensor, D^xz = D^yz = 0 at z = 0 (the lattice is mirror symmetric
    about the site's plane); 1e-12 of the largest |D| (rounding of the 256-term sums)."""
    m = model(name)
    xy = np.random.default_rng(5).uniform(-70, 70, (30, 2))
    D3 = lattice.diffusion_tensor_3d(np.column_stack([xy, np.zeros(len(xy))]), m, batch=7)
    D2 = lattice.diffusion_tensor(xy, m)
    scale = np.max(np.abs(D3))
    assert np.max(np.abs(D3[:, :2, :2] - D2)) < 1e-12 * scale
    assert np.max(np.abs(D3[:, :2, 2])) < 1e-12 * scale
    assert np.max(np.abs(D3[:, 2, :2])) < 1e-12 * scale
    np.testing.assert_array_equal(D3, np.swapaxes(D3, 1, 2))


def test_tensor_3d_mirror_in_z():
    """Off the mid-plane D^xz, D^yz do not vanish off the axis, and z -> -z flips their sign
    while the rest is unchanged (A is even in z). 1e-12 of the largest |D| (rounding)."""
    m = model("0.2T,s=+1/2")
    p = np.array([[17.3, -8.1, 2 * m.a0], [-6.0, 9.5, 1.7], [20.0, 0.0, 2.0], [12.0, 3.0, 4.6]])
    D = lattice.diffusion_tensor_3d(p, m)
    Dm = lattice.diffusion_tensor_3d(p * [1, 1, -1], m)
    flip = np.array([[1, 1, -1], [1, 1, -1], [-1, -1, 1]])
    scale = np.max(np.abs(D))
    assert np.max(np.abs(Dm - flip * D)) < 1e-12 * scale
    # measured |D^xz| + |D^yz| of 0.01-0.17 of max |D| at the first three (near the face, 4.6 nm, only 2e-5)
    assert np.all(np.max(np.abs(D[:3, :2, 2]), axis=1) > 1e-3 * np.max(np.abs(D[:3]), axis=(1, 2)))


@pytest.mark.parametrize("name", list(CASES))
def test_bulk_tensor_far_from_the_dot(name):
    """Far from the dot in x, y or z (and everywhere for s = 0) D = diag(6.93, 6.93, 19.94):
    MODEL.md's values to their 3 digits (rtol 2e-3); off-diagonals zero to rounding."""
    m = model(name)
    pts = [[250.0, 0.0, 0.0], [-180.0, 170.0, 2.0], [0.0, 0.0, 7.3], [0.0, 0.0, -20.0], [5.0, -3.0, 12.0]]
    if name == "singlet":
        pts += [[0.0, 0.0, 0.0], [4.0, 1.0, 2 * m.a0], [-9.0, 2.0, 4.9]]
    D = lattice.diffusion_tensor_3d(pts, m)
    np.testing.assert_allclose(D[:, 0, 0], BULK_XX, rtol=2e-3)
    np.testing.assert_allclose(D[:, 1, 1], BULK_XX, rtol=2e-3)
    np.testing.assert_allclose(D[:, 2, 2], BULK_ZZ, rtol=2e-3)
    off = D - np.einsum("nii->ni", D)[:, :, None] * np.eye(3)
    assert np.max(np.abs(off)) < 1e-9 * BULK_ZZ


#: MODEL.md section 10, on the axis at 0.2 T (s = +1/2): height in a0, quoted D^xx, D^zz
QUOTED = [(0, "479", "41"), (2, "286", "103"), (4, "65", "3.0"), (6, "5.6", "0.33"),
          (8, None, "0.45"), (9, None, "10.3"), (12, None, "19.9")]


def half_unit(quoted: str) -> float:
    """Half a unit in the last digit of a quoted number: '3.0' -> 0.05, '479' -> 0.5."""
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    return 0.5 * 10.0**-decimals


def test_tensor_3d_across_the_layer_reproduces_model_md():
    """D^xx and D^zz on the axis at the lattice heights a0 m: MODEL.md's numbers to the digits
    it quotes (within half a unit of the last one; measured e.g. D^zz 41.47, 102.87, 3.028)."""
    m = model("0.2T,s=+1/2")
    heights = np.array([mz for mz, _, _ in QUOTED]) * m.a0
    D = lattice.diffusion_tensor_3d(np.column_stack([0 * heights, 0 * heights, heights]), m)
    for (mz, xx, zz), d in zip(QUOTED, D, strict=True):
        if xx is not None:
            assert abs(d[0, 0] - float(xx)) <= half_unit(xx), (mz, d[0, 0])
            assert abs(d[1, 1] - d[0, 0]) < 1e-12 * d[0, 0]
        assert abs(d[2, 2] - float(zz)) <= half_unit(zz), (mz, d[2, 2])


def test_zz_peak_at_2a0_is_the_mirror_partner():
    """D^zz = 103 at z = 2 a0 is a resonance, not a smooth value: the partner (0, 0, -4) sits at
    -z, so A_i = A_k (no Knight detuning), and it alone gives ~3/4 of D^zz; 0.02 nm away D^zz
    is less than half. Rounding: A_ik compared to 1e-9 of A0."""
    m = model("0.2T,s=+1/2")
    st = lattice.stencil(m)
    z = 2 * m.a0
    site = lattice.site_rates(0.0, 0.0, m, z)
    j = column(st.offsets, (0, 0, -4))
    assert abs(site.A_ik[j]) < 1e-9 * m.A0
    share = 0.5 * site.W_ik[j] * (4 * m.a0) ** 2 / site.tensor_3d()[2, 2]
    assert 0.6 < share < 0.9, share
    D = lattice.diffusion_tensor_3d([[0, 0, z - 0.02], [0, 0, z], [0, 0, z + 0.02]], m)[:, 2, 2]
    assert D[0] < 0.5 * D[1] and D[2] < 0.5 * D[1], D


# --- input and cache ----------------------------------------------------------------------------


def test_points_must_be_n_by_3_and_finite():
    m = model("0.2T,s=+1/2")
    with pytest.raises(ValueError, match=r"points: expected an array \(N, 3\)"):
        lattice.rates(np.zeros((4, 2)), m)
    with pytest.raises(ValueError, match="finite"):
        lattice.diffusion_tensor_3d([[0.0, 0.0, np.nan]], m)
    assert lattice.rates(np.zeros((0, 3)), m).shape == (0, 256)


def test_grouping_by_height_keeps_the_input_order():
    """Mixed heights in any order, several batches: each row is the rate of its own point
    (the same computation as one point at a time, so equal to 1e-12 of the largest rate)."""
    m = model("20mT,s=-1/2")
    rng = np.random.default_rng(11)
    pts = np.column_stack([rng.uniform(-40, 40, (40, 2)), rng.choice([0.0, 1.1, -2 * m.a0, 4.9, 7.0], 40)])
    W = lattice.rates(pts, m, batch=3)
    for p, row in zip(pts[::7], W[::7], strict=True):
        assert rel_to_largest(row, lattice.rates([p], m)[0]) < 1e-12
    assert lattice.height_terms(m, 1.1) is lattice.height_terms(m, np.float64(1.1))  # cached per height
