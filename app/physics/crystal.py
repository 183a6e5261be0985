"""Real zincblende GaAs with its three isotopes: flip-flop rates and D^ab at a point (MODEL.md 11).

Pure NumPy (no DOLFINx, no MPI). Units: nm, s, rad/s; D in nm^2/s. The article's simple
cubic crystal (MODEL.md 3-10) stays in :mod:`app.lattice`; the public functions here take
either crystal (``model.crystal``) and hand the article's to :mod:`app.lattice` unchanged,
so a caller can loop over :func:`isotopes` whatever the crystal.

**The crystal.** Cubic constant a (``model.a0``, 0.56533 nm), z along [001]. A site of
isotope alpha is put at the point (x, y, z) and both sublattices are translated with it.
Seen from it, its own sublattice lies at (a/2) n, n1 + n2 + n3 even; the other at (a/4) m,
every m_i odd and m1 + m2 + m3 = 1 (mod 4) seen from an anion (As), 3 (mod 4) from a
cation (Ga). Every cutoff is an integer test, inclusive: partners (a/2) n with
|n|^2 <= (2 r_c)^2; near set on the own sublattice (a/2) j with |j|^2 or |j - n|^2 <= (2 r_g)^2,
on the other (a/4) m with |m|^2 or |m - 2n|^2 <= (4 r_g)^2.

**The rates** (virtual crystal: a cation site holds each Ga isotope with its abundance p).
For a pair (i, k) of isotope alpha, with B^(ab) = (mu0/4pi) gamma_a gamma_b hbar
(1 - 3 cos^2 theta) / (4 R^3), A_j = A^alpha v0 |psi(r_j)|^2, delta = 2s (A_i - A_k) / (4 omega_e):

    A_ik = 2s (A_i - A_k),   C_ik = B^(aa)_ik + 2s A_i A_k / (4 omega_e)
    g_ik = 80 [ p_a sum_{like j in N} (C_ij - C_kj)^2 + delta^2 (S2_a - p_a sum_{like j in N} A_j^2 - A_i^2 - A_k^2) ]
           + sum_{b != a} p_b (64/3) I_b (I_b + 1) sum_{j of b's sublattice in N} (B^(ab)_ij - B^(ab)_kj)^2
    W_ik = eq 18 (:func:`app.lattice.rate`),     D^ab = 1/2 sum_i p_a W_ik Delta^a Delta^b

with S2_a = p_a (A^a v0)^2 (4 / a^3) 3 / (4 pi l0^2 z0) (MODEL.md 11, taken literally: A_i^2
and A_k^2 are subtracted with weight 1, p_a in S2 itself).

**The fast path** (:func:`rates`, :func:`diffusion_tensor_3d`, :func:`diffusion_tensor`)
uses the rewrites of :mod:`app.lattice`. With dB_j = B(r_i - r_j) - B(r_k - r_j),

    g_ik / 80 = p_a sum_N dB_j^2 + U/80 + 2 delta p_a sum_N dB_j A_j + delta^2 (S2_a - A_i^2 - A_k^2),

where the first two (like dipolar and unlike zz terms) are geometry only, and the third is
linear in A. On the translated crystal the own sublattice's A is still separable in x and
y, A_j = A_c f(z + (a/2) j_z) X(j_x) Y(j_y) with X(j) = exp(-(x + (a/2) j)^2 / l0^2) and A_c the
coupling at the dot centre, so the third sum is X^T G_n(z) Y with G_n(z) = p_a sum_{j in N_n}
dB_j f(z + (a/2) j_z) at (j_x, j_y). The other sublattice enters only through the unlike zz
term U, which has no A at all. The stencil (offsets, B, the near-set sums, the entries of
G) is built once per geometry and isotope, G once per height (both cached); points are
grouped by height, and each batch is one BLAS product (b x cells) @ (cells x M).
:func:`site_rates_loop` is the plain per-pair loop of the specification: the test oracle.

**Symmetry.** D^ab(g p) = g D^ab(p) g^T for g in D2d, the group of the crystal about an As
(or Ga) site at the dot centre. The rates have more: every term is symmetric in i and k, so
the unlike term of a pair n equals that of -n, i.e. that of the inverted crystal, whose other
sublattice is on the empty tetrahedral sites. The residue rule therefore does not change a
single rate (measured: 4e-15), and D^ab here is also invariant under C4 and z -> -z (the full
cubic group with the dot). The sites themselves (the Ga planes, MODEL.md 11) still are not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from app.config import E_CHARGE, HBAR, MU0_OVER_4PI, Model
from app.physics import lattice

#: 1 ueV as an angular frequency, rad/s
UEV_RAD_S = 1e-6 * E_CHARGE / HBAR


@dataclass(frozen=True)
class Isotope:
    """One nuclear species of a crystal (MODEL.md 11)."""

    name: str
    sublattice: Literal["anion", "cation", "cubic"]  # "cubic": the article's simple cubic lattice
    abundance: float  # p: probability that a site of its sublattice holds it
    gamma: float  # gyromagnetic ratio, rad s^-1 T^-1
    A: float  # GaAs: hyperfine constant A^alpha, rad/s (A_k = A v0 |psi|^2); article: A0, the coupling at the dot centre
    spin: float = 1.5  # I; the rate formula (eq 18) is that of I = 3/2


#: the isotopes of GaAs, MODEL.md 11 (gamma: the NMR tables; A: Paget et al., PRB 15, 5780 (1977))
ISOTOPES = (
    Isotope("75As", "anion", 1.0, 4.596163e7, 86 * UEV_RAD_S),
    Isotope("69Ga", "cation", 0.60108, 6.438855e7, 74 * UEV_RAD_S),
    Isotope("71Ga", "cation", 0.39892, 8.181171e7, 96 * UEV_RAD_S),
)


def isotopes(model: Model) -> tuple[Isotope, ...]:
    """The isotopes of ``model.crystal``: the three of GaAs, or the article's single 75As nucleus."""
    if model.crystal == "GaAs":
        return ISOTOPES
    return (Isotope("75As", "cubic", 1.0, model.gamma, model.A0),)


def _isotope(model: Model, isotope: Isotope | str) -> Isotope:
    """An Isotope of the model's crystal, given as itself or by name."""
    names = [iso.name for iso in isotopes(model)]
    name = isotope.name if isinstance(isotope, Isotope) else isotope
    if name not in names:
        raise ValueError(f"isotope: expected one of {names} (model.crystal = {model.crystal!r}), got {name!r}")
    return isotope if isinstance(isotope, Isotope) else isotopes(model)[names.index(name)]


def _unlike(isotope: Isotope) -> tuple[Isotope, ...]:
    """The other isotopes of GaAs (read from :data:`ISOTOPES` at call time)."""
    return tuple(iso for iso in ISOTOPES if iso.name != isotope.name)


# --- couplings --------------------------------------------------------------------------------


def atomic_volume(model: Model) -> float:
    """v0 = a^3 / 8, the volume per atom of zincblende, nm^3."""
    return model.a0**3 / 8


def centre_coupling(model: Model, isotope: Isotope | str) -> float:
    """A_k of ``isotope`` at the dot centre, rad/s: A^alpha v0 2 / (pi l0^2 z0) (GaAs); A0 (article)."""
    iso = _isotope(model, isotope)
    if model.crystal != "GaAs":
        return iso.A
    return iso.A * atomic_volume(model) * 2 / (math.pi * model.l0**2 * model.z0)


def _profile(h: np.ndarray, z0: float) -> np.ndarray:
    """cos^2(pi h / z0) for |h| <= z0/2 (inclusive), else 0."""
    return np.where(np.abs(h) <= z0 / 2, np.cos(np.pi * h / z0) ** 2, 0.0)


def hyperfine(pos, model: Model, isotope: Isotope | str) -> np.ndarray:
    """A_k = A^alpha v0 |psi(r_k)|^2 at positions (..., 3) in nm, rad/s (MODEL.md 11); article: MODEL.md 3.

    |psi|^2 = 2 / (pi l0^2 z0) cos^2(pi z / z0) exp(-(x^2 + y^2) / l0^2) inside |z| <= z0/2, 0 outside.
    """
    pos = np.asarray(pos, dtype=float)
    if model.crystal != "GaAs":
        return lattice.hyperfine(pos, model)
    r2 = pos[..., 0] ** 2 + pos[..., 1] ** 2
    return centre_coupling(model, isotope) * _profile(pos[..., 2], model.z0) * np.exp(-r2 / model.l0**2)


def square_sum(model: Model, isotope: Isotope | str) -> float:
    """S2_alpha, rad^2/s^2: p_alpha (A^alpha v0)^2 (4 / a^3) 3 / (4 pi l0^2 z0) (MODEL.md 11).

    The integral of |psi|^4 (3 / (4 pi l0^2 z0)) times the sublattice's site density 4 / a^3,
    weighted by the probability that a site holds alpha. Article: :func:`app.lattice.hyperfine_square_sum`.
    """
    iso = _isotope(model, isotope)
    if model.crystal != "GaAs":
        return lattice.hyperfine_square_sum(model)
    amp = iso.A * atomic_volume(model)
    return iso.abundance * amp**2 * (4 / model.a0**3) * 3 / (4 * math.pi * model.l0**2 * model.z0)


def dipolar(d, gamma_1: float, gamma_2: float) -> np.ndarray:
    """B^(12) for separations d (..., 3) in nm: (mu0/4pi) gamma_1 gamma_2 hbar (1 - 3 cos^2 theta) / (4 R^3), rad/s."""
    d = np.asarray(d, dtype=float)
    r2 = np.sum(d * d, axis=-1)
    return MU0_OVER_4PI * gamma_1 * gamma_2 * HBAR / 4.0 / 1e-27 * (1.0 - 3.0 * d[..., 2] ** 2 / r2) / r2**1.5


def zz_prefactor(isotope: Isotope) -> float:
    """(64/3) I (I + 1): the weight of an unlike nucleus's zz field in g_ik (80 for I = 3/2)."""
    return 64 / 3 * isotope.spin * (isotope.spin + 1)


# --- the lattice: integer offsets, integer cutoffs --------------------------------------------


def _bound(radius: float) -> int:
    """The integer bound on |n|^2 for an inclusive cutoff |n| <= radius (no rounding decides)."""
    return math.floor(radius * radius + 1e-9)


def _integer_ball(bound2: int) -> np.ndarray:
    """Integer vectors m with |m|^2 <= bound2, sorted lexicographically: (K, 3)."""
    R = math.isqrt(bound2)
    r = np.arange(-R, R + 1)
    m = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    return m[np.sum(m * m, axis=1) <= bound2]


def own_sites(bound2: int) -> np.ndarray:
    """The own sublattice seen from a site, in units of a/2: n with n1 + n2 + n3 even and |n|^2 <= bound2."""
    n = _integer_ball(bound2)
    return n[np.sum(n, axis=1) % 2 == 0]


def other_sites(bound2: int, sublattice: str) -> np.ndarray:
    """The other sublattice seen from a site of ``sublattice``, in units of a/4, |m|^2 <= bound2.

    Every m_i odd, m1 + m2 + m3 = 1 (mod 4) seen from an anion, 3 (mod 4) from a cation
    (the other all-odd m are the empty tetrahedral sites).
    """
    residue = {"anion": 1, "cation": 3}[sublattice]
    m = _integer_ball(bound2)
    return m[np.all(m % 2 == 1, axis=1) & (np.sum(m, axis=1) % 4 == residue)]


# --- the oracle: the specification as a plain per-pair loop -----------------------------------


@dataclass
class CrystalSiteRates:
    """The like partners i of one site k of ``isotope``; every array has one row per i."""

    isotope: Isotope
    offsets: np.ndarray  # (M, 3) integer n, r_i - r_k = (a/2) n
    delta: np.ndarray  # (M, 3) r_i - r_k, nm
    A_i: np.ndarray  # rad/s
    A_k: float
    A_ik: np.ndarray  # Knight detuning 2s (A_i - A_k), rad/s
    C_ik: np.ndarray  # flip-flop coupling, rad/s
    g_ik: np.ndarray  # spectral width, rad^2/s^2
    g_unlike: np.ndarray  # the unlike nuclei's zz part of g_ik, rad^2/s^2
    W_ik: np.ndarray  # rate of the pair of alpha nuclei, 1/s

    def tensor_3d(self) -> np.ndarray:
        """D^ab = 1/2 sum_i p_alpha W_ik Delta^a Delta^b over x, y, z: (3, 3), nm^2/s."""
        return 0.5 * self.isotope.abundance * np.einsum("i,ia,ib->ab", self.W_ik, self.delta, self.delta)

    def tensor(self) -> np.ndarray:
        """The x, y block of :meth:`tensor_3d`: (2, 2), nm^2/s."""
        return self.tensor_3d()[:2, :2]


def site_rates_loop(point, model: Model, isotope: Isotope | str, offsets=None) -> CrystalSiteRates:
    """Every W_ik of the site of ``isotope`` at ``point`` (x, y, z) in nm, pair by pair (MODEL.md 11).

    Explicit sites of both sublattices around the point, the near set of each pair tested on
    integers, like j weighted with p_alpha, unlike j of each isotope beta with p_beta and its
    zz term, the far set in closed form. ``offsets`` (integer n, in units of a/2) restricts
    the partners to those listed (each must be a partner). Slow (a NumPy sum over the near
    set for each pair): the reference the fast path is tested against. GaAs only.
    """
    if model.crystal != "GaAs":
        raise ValueError(
            f"model.crystal: expected 'GaAs' for app.crystal's loop (the article's is app.lattice's), got {model.crystal!r}"
        )
    iso = _isotope(model, isotope)
    a, s = model.a0, model.electron_sz
    p = np.asarray(point, dtype=float).reshape(3)
    factor = lattice.mediated_factor(model)
    S2 = square_sum(model, iso)
    rc2, rg2_own, rg2_other = _bound(2 * model.r_c), _bound(2 * model.r_g), _bound(4 * model.r_g)

    # every site any near set may reach: |j| <= |n| + |j - n| <= 2 (r_c + r_g) in units of a/2
    own = own_sites(_bound(2 * (model.r_c + model.r_g)))
    other = other_sites(_bound(4 * (model.r_c + model.r_g)), iso.sublattice)
    r_own = p + (a / 2) * own
    r_other = p + (a / 4) * other
    A_own = hyperfine(r_own, model, iso)
    A_k = float(hyperfine(p, model, iso))
    sq_own = np.sum(own * own, axis=1)
    sq_other = np.sum(other * other, axis=1)

    partners = own[(sq_own > 0) & (sq_own <= rc2)]
    if offsets is not None:
        wanted = np.asarray(offsets, dtype=int).reshape(-1, 3)
        known = {tuple(n) for n in partners}
        for n in wanted:
            if tuple(n) not in known:
                raise ValueError(f"offsets: expected partners (a/2) n with n1+n2+n3 even and 0 < |n|^2 <= {rc2}, got {tuple(n)}")
        partners = wanted

    rows = []
    for n in partners:
        r_i = p + (a / 2) * n
        A_i = float(hyperfine(r_i, model, iso))
        C_ik = float(dipolar(r_i - p, iso.gamma, iso.gamma)) + factor * A_i * A_k
        delta = factor * (A_i - A_k)

        # own sublattice: j != i, k within r_g of i or of k
        to_i = np.sum((own - n) ** 2, axis=1)
        near = (np.minimum(sq_own, to_i) <= rg2_own) & (sq_own > 0) & (to_i > 0)
        r_j, A_j = r_own[near], A_own[near]
        C_ij = dipolar(r_i - r_j, iso.gamma, iso.gamma) + factor * A_i * A_j
        C_kj = dipolar(p - r_j, iso.gamma, iso.gamma) + factor * A_k * A_j
        like = iso.abundance * np.sum((C_ij - C_kj) ** 2)
        far = delta**2 * (S2 - iso.abundance * np.sum(A_j**2) - A_i**2 - A_k**2)

        # unlike nuclei: only their zz field, within r_g of i or of k on their sublattice
        near_other = np.minimum(sq_other, np.sum((other - 2 * n) ** 2, axis=1)) <= rg2_other
        unlike = 0.0
        for beta in _unlike(iso):
            r_b = r_j if beta.sublattice == iso.sublattice else r_other[near_other]
            dB = dipolar(r_i - r_b, iso.gamma, beta.gamma) - dipolar(p - r_b, iso.gamma, beta.gamma)
            unlike += beta.abundance * zz_prefactor(beta) * np.sum(dB**2)

        g = 80.0 * (like + far) + unlike
        A_ik = 2 * s * (A_i - A_k)
        W = float(lattice.rate(np.array(A_ik), np.array(C_ik), np.array(g)))
        rows.append((A_i, A_ik, C_ik, g, unlike, W))
    cols = np.array(rows, dtype=float).reshape(-1, 6)
    return CrystalSiteRates(
        isotope=iso,
        offsets=np.array(partners),
        delta=(a / 2) * np.array(partners, dtype=float),
        A_i=cols[:, 0],
        A_k=A_k,
        A_ik=cols[:, 1],
        C_ik=cols[:, 2],
        g_ik=cols[:, 3],
        g_unlike=cols[:, 4],
        W_ik=cols[:, 5],
    )


# --- the fast path --------------------------------------------------------------------------


@dataclass(frozen=True)
class Stencil:
    """What does not depend on the point or its height: one per (geometry, isotope table)."""

    R: int  # half-width, in units of a/2, of the (x, y) range of every own near set
    offsets: np.ndarray  # (M, 3) partner offsets n, r_i - r_k = (a/2) n
    dxyz: np.ndarray  # (M, 6) Delta_a Delta_b for ab = xx, xy, yy, xz, yz, zz, nm^2
    B: np.ndarray  # (M,) B^(aa)(n), rad/s
    S_like: np.ndarray  # (M,) p_alpha sum over like j in N_n of dB^2, rad^2/s^2
    U: np.ndarray  # (M,) the unlike nuclei's zz part of g_ik, rad^2/s^2
    ix: np.ndarray  # (M,) column of n_x in X (n_x + R)
    iy: np.ndarray  # (M,) column of n_y in Y
    cells: np.ndarray  # (P,) flattened (j_x, j_y) cells that some near set reaches: rows of G
    cx: np.ndarray  # (P,) column of each cell's j_x in X
    cy: np.ndarray  # (P,) column of each cell's j_y in Y
    # the near-set entries (j, n), sorted by their place in G (P, M) so that each element of G
    # is the sum of one run of consecutive entries:
    near_jz: np.ndarray  # (E,) j_z of the entry
    near_dB: np.ndarray  # (E,) p_alpha dB_j = p_alpha (B(r_i - r_j) - B(r_k - r_j)), rad/s
    G_index: np.ndarray  # (Q,) flat index into G of each run (the non-zero pattern of G)
    G_start: np.ndarray  # (Q,) first entry of each run


def _near_entries(ball: np.ndarray, shifts: np.ndarray, bound2: int):
    """The union of ``ball`` and ``ball + shift`` for each shift (column), as (column, site) entries.

    ``ball`` (K, 3) holds the integer points within the bound around the origin; the second
    ball keeps only the points outside the first, so every site is listed once per column.
    """
    K, M = len(ball), len(shifts)
    first = np.broadcast_to(ball, (M, K, 3))
    second = ball[None, :, :] + shifts[:, None, :]
    new = np.sum(second * second, axis=2) > bound2
    col = np.concatenate([np.repeat(np.arange(M), K), np.nonzero(new)[0]])
    sites = np.concatenate([first.reshape(-1, 3), second[new]])
    return col, sites


@lru_cache(maxsize=8)
def _stencil(a: float, alpha: Isotope, unlike: tuple[Isotope, ...], r_c: float, r_g: float) -> Stencil:
    rc2, rg2_own, rg2_other = _bound(2 * r_c), _bound(2 * r_g), _bound(4 * r_g)
    neigh = own_sites(rc2)
    neigh = neigh[np.any(neigh != 0, axis=1)]
    M = len(neigh)
    g2 = alpha.gamma**2

    # like near sets: own sublattice (units of a/2), j != 0 (k) and j != n (i)
    col, j = _near_entries(own_sites(rg2_own), neigh, rg2_own)
    keep = np.any(j != 0, axis=1) & np.any(j != neigh[col], axis=1)
    col, j = col[keep], j[keep]
    dB = dipolar((a / 2) * (j - neigh[col]), alpha.gamma, alpha.gamma) - dipolar((a / 2) * j, alpha.gamma, alpha.gamma)
    S_own = np.bincount(col, weights=dB * dB, minlength=M)  # geometry of gamma_alpha^2

    # unlike near sets on the other sublattice (units of a/4; i at 2n), never 0 or 2n
    if alpha.sublattice in ("anion", "cation"):
        col_o, m = _near_entries(other_sites(rg2_other, alpha.sublattice), 2 * neigh, rg2_other)
        dBo = dipolar((a / 4) * (m - 2 * neigh[col_o]), alpha.gamma, alpha.gamma) - dipolar((a / 4) * m, alpha.gamma, alpha.gamma)
        S_other = np.bincount(col_o, weights=dBo * dBo, minlength=M)
    else:
        S_other = np.zeros(M)
    U = np.zeros(M)
    for beta in unlike:  # B^(ab) = (gamma_b / gamma_a) B^(aa) on the same geometry
        S = S_own if beta.sublattice == alpha.sublattice else S_other
        U += beta.abundance * zz_prefactor(beta) * (beta.gamma**2 / g2) * S

    R = int(np.max(np.abs(np.concatenate([j[:, :2], neigh[:, :2], np.zeros((1, 2), dtype=int)]))))
    W = 2 * R + 1
    flat = (j[:, 0] + R) * W + (j[:, 1] + R)
    cells, row = np.unique(flat, return_inverse=True)
    index = row.reshape(-1) * M + col
    order = np.argsort(index, kind="stable")
    G_index, G_start = np.unique(index[order], return_index=True)
    d = (a / 2) * neigh.astype(float)
    dxyz = np.stack([d[:, 0] ** 2, d[:, 0] * d[:, 1], d[:, 1] ** 2, d[:, 0] * d[:, 2], d[:, 1] * d[:, 2], d[:, 2] ** 2], axis=1)
    return Stencil(
        R=R,
        offsets=neigh,
        dxyz=dxyz,
        B=dipolar(d, alpha.gamma, alpha.gamma),
        S_like=alpha.abundance * S_own,
        U=U,
        ix=neigh[:, 0] + R,
        iy=neigh[:, 1] + R,
        cells=cells,
        cx=cells // W,
        cy=cells % W,
        near_jz=j[order, 2],
        near_dB=alpha.abundance * dB[order],
        G_index=G_index,
        G_start=G_start,
    )


def stencil(model: Model, isotope: Isotope | str) -> Stencil:
    """The height-independent geometry of ``isotope``'s rates (GaAs): offsets, B, near-set sums."""
    iso = _isotope(model, isotope)
    return _stencil(model.a0, iso, _unlike(iso), model.r_c, model.r_g)


@dataclass(frozen=True)
class HeightTerms:
    """What the height z of site k changes: G_n(z), f_n = f(z + (a/2) n_z), f_0 = f(z)."""

    z: float  # nm
    G: np.ndarray  # (P, M): p_alpha sum over j in N_n of dB_j f(z + (a/2) j_z), rows the cells (j_x, j_y)
    f_n: np.ndarray  # (M,)
    f_0: float
    electron_free: bool  # f_0 = f_n = 0: A_i = A_k = 0 for every pair, only dipolar terms


@lru_cache(maxsize=16)  # one G is P x M doubles: 6.8 MB with the defaults
def _height_terms(
    a: float, alpha: Isotope, unlike: tuple[Isotope, ...], z0: float, r_c: float, r_g: float, z: float
) -> HeightTerms:
    st = _stencil(a, alpha, unlike, r_c, r_g)
    M = len(st.offsets)
    reach = int(np.max(np.abs(st.near_jz), initial=0))
    f_plane = _profile(z + (a / 2) * np.arange(-reach, reach + 1), z0)  # f(z + (a/2) j_z) for every j_z
    G = np.zeros(len(st.cells) * M)
    if len(st.G_start):  # r_g = 0: no near set
        G[st.G_index] = np.add.reduceat(st.near_dB * f_plane[st.near_jz + reach], st.G_start)
    f_n = _profile(z + (a / 2) * st.offsets[:, 2], z0)
    f_0 = float(_profile(np.array(z), z0))
    for arr in (G, f_n):
        arr.flags.writeable = False
    return HeightTerms(z=z, G=G.reshape(len(st.cells), M), f_n=f_n, f_0=f_0, electron_free=f_0 == 0.0 and not np.any(f_n))


def height_terms(model: Model, isotope: Isotope | str, z: float) -> HeightTerms:
    """G_n, f_0 and f_n for a site of ``isotope`` at height z (nm), cached per (geometry, isotope, z)."""
    iso = _isotope(model, isotope)
    return _height_terms(model.a0, iso, _unlike(iso), model.z0, model.r_c, model.r_g, float(z))


def _batch_rates(xy: np.ndarray, model: Model, iso: Isotope, st: Stencil, ht: HeightTerms) -> np.ndarray:
    """W_ik for a batch of points (b, 2) at height ht.z: (b, M), 1/s."""
    h = (model.a0 / 2) * np.arange(-st.R, st.R + 1)
    X = np.exp(-((xy[:, 0:1] + h) ** 2) / model.l0**2)  # (b, 2R+1)
    Y = np.exp(-((xy[:, 1:2] + h) ** 2) / model.l0**2)
    A_c = centre_coupling(model, iso)
    A_k = A_c * ht.f_0 * X[:, st.R] * Y[:, st.R]  # (b,)
    A_i = A_c * ht.f_n * X[:, st.ix] * Y[:, st.iy]  # (b, M)
    factor = lattice.mediated_factor(model)
    C = st.B + factor * A_i * A_k[:, None]
    if factor == 0.0 or ht.electron_free:
        return lattice.rate(np.zeros_like(C), C, np.broadcast_to(80.0 * st.S_like + st.U, C.shape))
    delta = factor * (A_i - A_k[:, None])
    cross = A_c * ((X[:, st.cx] * Y[:, st.cy]) @ ht.G)  # p_alpha sum over the near set of dB_j A_j
    S2 = square_sum(model, iso)
    g = 80.0 * (st.S_like + 2.0 * delta * cross + delta * delta * (S2 - A_i * A_i - (A_k * A_k)[:, None])) + st.U
    return lattice.rate(2 * model.electron_sz * (A_i - A_k[:, None]), C, g)


def _rate_batches(pts: np.ndarray, model: Model, iso: Isotope, batch: int):
    """Yield (indices, W (b, M)) for batches of at most ``batch`` points of one height each (input order within)."""
    lattice.mediated_factor(model)  # validates omega_e before any work
    st = stencil(model, iso)
    if len(pts) == 0:
        return
    for z, idx in lattice.height_groups(pts):
        ht = height_terms(model, iso, z)
        for start in range(0, len(idx), batch):
            sel = idx[start : start + batch]
            yield sel, _batch_rates(pts[sel, :2], model, iso, st, ht)


def partner_offsets(model: Model, isotope: Isotope | str) -> np.ndarray:
    """The columns of :func:`rates`: integer offsets n, r_i - r_k = (a/2) n (GaAs) or a0 n (article)."""
    if model.crystal != "GaAs":
        return lattice.stencil(model).offsets
    return stencil(model, isotope).offsets


def rates(points, model: Model, isotope: Isotope | str, batch: int = 128) -> np.ndarray:
    """W_ik (1/s) of sites k of ``isotope`` at points (N, 3) in nm towards its like partners: (N, M).

    Column j is the partner at :func:`partner_offsets` [j] (M = 1062 with the GaAs defaults).
    W_ik is the rate of a pair that both hold alpha (no abundance in it). Any height z. The
    article's crystal: :func:`app.lattice.rates`. Working memory is bounded by ``batch`` points.
    """
    iso = _isotope(model, isotope)
    if model.crystal != "GaAs":
        return lattice.rates(points, model, batch)
    pts = lattice._points_3d(points)
    out = np.empty((len(pts), len(stencil(model, iso).offsets)))
    for sel, W in _rate_batches(pts, model, iso, batch):
        out[sel] = W
    return out


#: (3, 3) index into the six products xx, xy, yy, xz, yz, zz of Stencil.dxyz
_SYM3 = np.array([[0, 1, 3], [1, 2, 4], [3, 4, 5]])


def diffusion_tensor_3d(points, model: Model, isotope: Isotope | str, batch: int = 128) -> np.ndarray:
    """D^ab = 1/2 sum_i p_alpha W_ik Delta^a Delta^b at points (N, 3) in nm: (N, 3, 3), nm^2/s.

    The article's crystal: :func:`app.lattice.diffusion_tensor_3d`.
    """
    iso = _isotope(model, isotope)
    if model.crystal != "GaAs":
        return lattice.diffusion_tensor_3d(points, model, batch)
    pts = lattice._points_3d(points)
    st = stencil(model, iso)
    out = np.empty((len(pts), 3, 3))
    for sel, W in _rate_batches(pts, model, iso, batch):
        out[sel] = (0.5 * iso.abundance * (W @ st.dxyz))[:, _SYM3]
    return out


def diffusion_tensor(points, model: Model, isotope: Isotope | str, batch: int = 128) -> np.ndarray:
    """D^ab, a, b in x, y, at points (N, 2) in nm, the site at z = 0: (N, 2, 2), nm^2/s.

    The article's crystal: :func:`app.lattice.diffusion_tensor`.
    """
    if model.crystal != "GaAs":
        _isotope(model, isotope)
        return lattice.diffusion_tensor(points, model, batch)
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    return diffusion_tensor_3d(np.column_stack([pts, np.zeros(len(pts))]), model, isotope, batch)[:, :2, :2].copy()


def bulk_diffusion(model: Model, isotope: Isotope | str) -> np.ndarray:
    """D^ab with no electron (the (2,0) singlet, or far from the dot): the full (3, 3) tensor, nm^2/s.

    Diagonal by the crystal's symmetry; D^xx = D^yy is ``[0, 0]``, D^zz ``[2, 2]``. For the
    article's crystal the same tensor from :func:`app.lattice.diffusion_tensor_3d`
    (:func:`app.lattice.bulk_diffusion` gives its (D^xx + D^yy) / 2).
    """
    singlet = model.model_copy(update={"electron_sz": 0.0})
    return diffusion_tensor_3d(np.zeros((1, 3)), singlet, isotope)[0]


def sublattice_planes(a0: float, sublattice: str) -> tuple[float, float]:
    """(spacing, offset) of a sublattice's planes, nm: z = offset + spacing m. ``"cubic"``, the
    article's crystal: (a0, 0). GaAs (a0 the cubic constant a): spacing a/2, As (``"anion"``) at
    (a/2) m and Ga (``"cation"``) at a/4 + (a/2) m (the dot centre an As site, MODEL.md 11)."""
    if sublattice == "cubic":
        return a0, 0.0
    return a0 / 2, (0.0 if sublattice == "anion" else a0 / 4)


def planes(model: Model, isotope: Isotope | str | None = None) -> tuple[float, float]:
    """(spacing, offset) of the planes ``isotope``'s sites lie on (:func:`sublattice_planes`)."""
    if model.crystal != "GaAs":
        return sublattice_planes(model.a0, "cubic")
    return sublattice_planes(model.a0, _isotope(model, isotope).sublattice)


def plane_flux_zz(xy, intervals, model: Model, isotope: Isotope | str | None = None, batch: int = 128) -> np.ndarray:
    """D^zz as the lattice carries it across its planes (:func:`app.lattice.plane_flux_zz`, the
    article's crystal) for ``isotope``'s sublattice: array (N, P) in nm^2/s.

    Column j is the interval between the planes p and p + 1 (:func:`planes`: z_p = offset +
    spacing p), p = ``intervals[j]``, at (x, y) (N, 2) in nm. With h the spacing and a site of
    alpha put at (x, y, z_m) on each plane m (the crystal translated with it, as for D at a
    point), each partner (a/2) n crossing the interval counted half from each end:

        D_p = h^2 / 2 sum_m sum_{partners n of the site at z_m that cross p} p_alpha W |n_z|,

    n_z in plane spacings (h = a/2: n_z is the offset's third integer). Where the rates do not
    depend on height this is 1/2 sum p_alpha W Delta_z^2, the point D^zz, exactly.
    """
    if model.crystal != "GaAs":
        if isotope is not None:
            _isotope(model, isotope)
        return lattice.plane_flux_zz(xy, intervals, model)
    iso = _isotope(model, isotope)
    h, offset = planes(model, iso)
    return lattice.plane_pair_sum(
        xy, intervals, stencil(model, iso).offsets[:, 2], 0.5 * h**2 * iso.abundance,
        lambda pts: rates(pts, model, iso, batch), lambda m: offset + h * m,
    )  # fmt: skip


# --- explicit random realisations of the Ga isotopes ------------------------------------------

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 (wrapping arithmetic): a bijection that scrambles every bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def realisation_draws(m, seed: int) -> np.ndarray:
    """One uniform number in [0, 1) per cation site m (integers, units of a/4, (N, 3)) for ``seed``.

    A function of the site and the seed alone (a counter-based draw: numpy's Generator(seed)
    gives a 64-bit key, mixed with the site's coordinates by SplitMix64), so every rank draws
    the same value for a site without a list of all sites, whatever the ranks own, and a
    site's partners are drawn where they are needed.
    """
    m = np.asarray(m, dtype=np.int64).reshape(-1, 3)
    if np.any(np.abs(m) >= 1 << 20):
        raise ValueError("realisation: sites within 2^20 a/4 of the dot centre only")
    key = np.random.Generator(np.random.PCG64(seed)).integers(0, 2**63, dtype=np.uint64)
    off = m + (1 << 20)
    off = off.astype(np.uint64)
    code = (off[:, 0] << np.uint64(42)) | (off[:, 1] << np.uint64(21)) | off[:, 2]
    with np.errstate(over="ignore"):
        x = _mix64(_mix64(code ^ key) + np.uint64(0x9E3779B97F4A7C15))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def holds(m, model: Model, isotope: Isotope | str, seed: int | None) -> np.ndarray:
    """Whether each site m (units of a/4) of ``isotope``'s sublattice holds it, (N,) bool.

    ``seed`` None (the virtual crystal) or a sublattice of one isotope: every site. A seed: the
    cation sites hold 69Ga where the draw (:func:`realisation_draws`) is below its abundance,
    71Ga elsewhere, so the two Ga isotopes share one realisation per seed.
    """
    iso = _isotope(model, isotope)
    m = np.asarray(m, dtype=np.int64).reshape(-1, 3)
    if seed is None or iso.sublattice != "cation":
        return np.ones(len(m), dtype=bool)
    cations = [x for x in isotopes(model) if x.sublattice == "cation"]
    first = realisation_draws(m, seed) < cations[0].abundance
    return first if iso.name == cations[0].name else ~first
