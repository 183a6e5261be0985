"""Nuclear flip-flop rates on the lattice and the diffusion tensor D^ab at a point.

Pure NumPy (no DOLFINx): MODEL.md sections 3, 4, 8a and 10, followed exactly. Units: nm,
s, rad/s; D in nm^2/s.

To evaluate the rates at a point (x, y, z), a lattice site k is put there and the simple
cubic lattice (spacing a0) is translated with it, so the stencil of offsets is the same
at every point and only the hyperfine values A change. The rates are those of the
infinite crystal: near sets and S2 include the nuclei beyond the faces of the dot layer,
whatever the height. z = 0 (the dot mid-plane) is the 2D model of section 4; z = a0 m are
the sites of the z-resolved lattice of section 8a; any other z serves the 3D continuum
model of section 10. With n the integer offset of site i from k (0 < |n| <= r_c) and
Delta = a0 n:

    A_ik = 2s (A_i - A_k)
    C_ik = B(n) + 2s A_i A_k / (4 omega_e)
    g_ik = 80 [ sum_{j in N_ik} (C_ij - C_kj)^2 + delta_ik^2 (S2 - sum_{N_ik} A_j^2 - A_i^2 - A_k^2) ]
    W_ik = sqrt(2 pi) C_ik^2 [17/5 (A_ik^2 + g)^-1/2 + 12/5 (A_ik^2 + 64 C^2 + g)^-1/2
                              + 9/10 (A_ik^2 + 256 C^2 + g)^-1/2]
    D^ab = 1/2 sum_i W_ik Delta^a Delta^b   (a, b in x, y; or x, y, z)

The fast path (:func:`rates`, :func:`diffusion_tensor_3d`, and :func:`diffusion_tensor`
as its z = 0 case) uses two exact rewrites. With
C_ij - C_kj = dB_j + delta A_j (dB_j = B(m - n) - B(m), delta = 2s (A_i - A_k) / (4 omega_e)),

    g_ik / 80 = sum_N dB_j^2  +  2 delta sum_N dB_j A_j  +  delta^2 (S2 - A_i^2 - A_k^2):

the delta^2 A_j^2 of the near set and the far-set term add up to the full sum. The first
sum is geometry only; the second is linear in A. And A is separable on the translated
lattice, A_j = A0 f(z + a0 m_z) X(m_x) Y(m_y) with f(z) = cos^2(pi z / z0) for
|z| <= z0/2 (else 0) and X(m) = exp(-(x + a0 m)^2 / l0^2), so the second sum is
X^T G_n(z) Y. The height z of k enters only through G_n(z) = sum_{m in N_n} dB_m
f(z + a0 m_z) at (m_x, m_y) and the profile values f_0 = f(z), f_n = f(z + a0 n_z)
(:func:`height_terms`, built once per height and cached); the offsets, B, S1 and S2 do
not depend on it (:func:`stencil`, built once per model geometry). Points are grouped by
height and each batch is then one BLAS product (batch x (2R+1)^2) @ ((2R+1)^2 x M).
:func:`site_rates_loop` is the plain per-pair loop of the specification, kept as the
test oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from app.config import HBAR, MU0_OVER_4PI, Model

__all__ = [
    "article_only",
    "HeightTerms",
    "RATE_TERMS",
    "SiteRates",
    "Stencil",
    "bulk_diffusion",
    "diffusion_tensor",
    "diffusion_tensor_3d",
    "dipolar",
    "dipolar_constant",
    "field_cuts",
    "height_terms",
    "hyperfine",
    "hyperfine_square_sum",
    "isotropic",
    "mediated_factor",
    "plane_flux_zz",
    "polar_components",
    "rate",
    "rates",
    "site_rates",
    "site_rates_loop",
    "stencil",
]

#: coefficients of eq 18 (I = 3/2): (prefactor, multiple of C^2 under the root)
RATE_TERMS = ((17 / 5, 0.0), (12 / 5, 64.0), (9 / 10, 256.0))


# --- couplings (plain functions; the oracle uses them directly) ---------------------------


def dipolar_constant(model: Model) -> float:
    """(mu0/4pi) gamma^2 hbar / 4 in rad/s nm^3 (MODEL.md, with the factor 1/4)."""
    return MU0_OVER_4PI * model.gamma**2 * HBAR / 4.0 / 1e-27


def dipolar(d: np.ndarray, model: Model) -> np.ndarray:
    """B for separation vectors d (..., 3) in nm: K (1 - 3 cos^2 theta) / R^3, rad/s."""
    d = np.asarray(d, dtype=float)
    r2 = np.sum(d * d, axis=-1)
    return dipolar_constant(model) * (1.0 - 3.0 * d[..., 2] ** 2 / r2) / r2**1.5


def hyperfine(pos: np.ndarray, model: Model) -> np.ndarray:
    """A(x, y, z) = A0 cos^2(pi z / z0) exp(-(x^2 + y^2) / l0^2) for |z| <= z0/2, else 0; rad/s."""
    pos = np.asarray(pos, dtype=float)
    z = pos[..., 2]
    inside = np.abs(z) <= model.z0 / 2
    return np.where(
        inside,
        model.A0 * np.cos(np.pi * z / model.z0) ** 2 * np.exp(-(pos[..., 0] ** 2 + pos[..., 1] ** 2) / model.l0**2),
        0.0,
    )


def hyperfine_square_sum(model: Model) -> float:
    """S2 = sum over all sites of A_j^2 = A0^2 (3 z0 / 8)(pi l0^2 / 2) / a0^3, rad^2/s^2."""
    return model.A0**2 * (3 * model.z0 / 8) * (math.pi * model.l0**2 / 2) / model.a0**3


def mediated_factor(model: Model) -> float:
    """2s / (4 omega_e), s rad^-1: C_ik = B_ik + factor A_i A_k. Zero for the singlet."""
    s = model.electron_sz
    if s == 0:
        return 0.0
    omega_e = model.omega_e
    if omega_e == 0:
        raise ValueError(
            "model.B0: expected a non-zero field when electron_sz != 0 "
            f"(omega_e = g_e mu_B B0 / hbar must not vanish), got {model.B0!r}"
        )
    return 2 * s / (4 * omega_e)


def rate(Aik: np.ndarray, C: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Flip-flop rate W_ik of eq 18 (I = 3/2), 1/s."""
    A2C2 = Aik * Aik
    C2 = C * C
    total = 0.0
    for coeff, mult in RATE_TERMS:
        total = total + coeff / np.sqrt(A2C2 + mult * C2 + g)
    return math.sqrt(2 * math.pi) * C2 * total


def _ball(radius: float) -> np.ndarray:
    """Integer offsets m with |m|^2 <= radius^2 (inclusive, tested on integers), sorted."""
    R = int(math.floor(radius + 1e-9))
    r = np.arange(-R, R + 1)
    m = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    # inclusive cutoff on integers: n^2 <= floor(radius^2 + eps) so no rounding decides
    keep = np.sum(m * m, axis=1) <= math.floor(radius * radius + 1e-9)
    return m[keep]


# --- the oracle: the specification as a plain loop ----------------------------------------


@dataclass
class SiteRates:
    """The flip-flop partners i of one site k at (x, y, z); all arrays have one row per i."""

    offsets: np.ndarray  # (M, 3) integer n
    delta: np.ndarray  # (M, 3) r_i - r_k, nm
    A_i: np.ndarray  # rad/s
    A_k: float
    A_ik: np.ndarray  # Knight detuning 2s (A_i - A_k), rad/s
    C_ik: np.ndarray  # flip-flop coupling, rad/s
    g_ik: np.ndarray  # spectral width, rad^2/s^2
    W_ik: np.ndarray  # rate, 1/s

    def tensor(self) -> np.ndarray:
        """D^ab = 1/2 sum W Delta^a Delta^b over x, y; (2, 2), nm^2/s."""
        d = self.delta[:, :2]
        return 0.5 * np.einsum("i,ia,ib->ab", self.W_ik, d, d)

    def tensor_3d(self) -> np.ndarray:
        """D^ab = 1/2 sum W Delta^a Delta^b over x, y, z; (3, 3), nm^2/s."""
        return 0.5 * np.einsum("i,ia,ib->ab", self.W_ik, self.delta, self.delta)


def site_rates_loop(x: float, y: float, model: Model, z: float = 0.0) -> SiteRates:
    """Every W_ik of the site at (x, y, z), pair by pair, exactly as MODEL.md states it.

    The partners and near sets are those of the infinite crystal (nuclei beyond the dot
    layer's faces count, with A = 0 there); S2 is the closed form at every height. Slow
    (pure Python over pairs and near sets): the reference the fast path is tested against.
    """
    article_only(model)
    a0 = model.a0
    factor = mediated_factor(model)
    S2 = hyperfine_square_sum(model)
    rc2 = math.floor(model.r_c**2 + 1e-9)
    rg2 = math.floor(model.r_g**2 + 1e-9)
    candidates = [tuple(m) for m in _ball(model.r_c + model.r_g)]

    K = dipolar_constant(model)

    def pos(m):
        return np.array([x + a0 * m[0], y + a0 * m[1], z + a0 * m[2]])

    A = {m: float(hyperfine(pos(m), model)) for m in candidates}

    def B(m1, m2):  # K (1 - 3 cos^2 theta) / R^3 for r_1 - r_2
        dx, dy, dz = (a0 * (m1[0] - m2[0]), a0 * (m1[1] - m2[1]), a0 * (m1[2] - m2[2]))
        r2 = dx * dx + dy * dy + dz * dz
        return K * (1.0 - 3.0 * dz * dz / r2) / r2**1.5

    def C(m1, m2):
        return B(m1, m2) + factor * A[m1] * A[m2]

    def sq(m):
        return m[0] ** 2 + m[1] ** 2 + m[2] ** 2

    k = (0, 0, 0)
    rows = []
    for n in candidates:
        if not 0 < sq(n) <= rc2:
            continue
        Ai, Ak = A[n], A[k]
        Cik = C(n, k)
        delta = factor * (Ai - Ak)
        near_sum, near_A2 = 0.0, 0.0
        for j in candidates:
            if j == n or j == k:
                continue
            dj_i = (j[0] - n[0], j[1] - n[1], j[2] - n[2])
            if min(sq(dj_i), sq(j)) <= rg2:
                near_sum += (C(n, j) - C(k, j)) ** 2
                near_A2 += A[j] ** 2
        g = 80.0 * (near_sum + delta**2 * (S2 - near_A2 - Ai**2 - Ak**2))
        Aik = 2 * model.electron_sz * (Ai - Ak)
        W = float(rate(np.array(Aik), np.array(Cik), np.array(g)))
        rows.append((n, a0 * np.array(n, dtype=float), Ai, Aik, Cik, g, W))
    return SiteRates(
        offsets=np.array([r[0] for r in rows]),
        delta=np.array([r[1] for r in rows]),
        A_i=np.array([r[2] for r in rows]),
        A_k=A[k],
        A_ik=np.array([r[3] for r in rows]),
        C_ik=np.array([r[4] for r in rows]),
        g_ik=np.array([r[5] for r in rows]),
        W_ik=np.array([r[6] for r in rows]),
    )


# --- the fast path -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stencil:
    """Geometry shared by every point at every height: built once per (a0, gamma, r_c, r_g)."""

    R: int  # half-width of the index range (in x, y and z) covering every near set
    offsets: np.ndarray  # (M, 3) neighbour offsets n
    dxy: np.ndarray  # (M, 3) Delta_x^2, Delta_x Delta_y, Delta_y^2, nm^2
    dxyz: np.ndarray  # (M, 6) Delta_a Delta_b for ab = xx, xy, yy, xz, yz, zz, nm^2
    B: np.ndarray  # (M,) B(n), rad/s
    S1: np.ndarray  # (M,) sum over N_n of dB^2, rad^2/s^2
    flat_n: np.ndarray  # (M,) index of (n_x, n_y) in the flattened (2R+1)^2 grid
    # the near sets as one list of entries (m in N_n, column n), column by column, m sorted:
    near_cell: np.ndarray  # (E,) flat index of (m_x, m_y, n) in G, shape ((2R+1)^2, M)
    near_mz: np.ndarray  # (E,) m_z
    near_dB: np.ndarray  # (E,) dB = B(m - n) - B(m), rad/s


@dataclass(frozen=True)
class HeightTerms:
    """What the height z of site k changes (MODEL.md 8a, 10): one set per height."""

    z: float  # nm
    G: np.ndarray  # ((2R+1)^2, M): sum over m in N_n of dB f(z + a0 m_z), indexed (m_x, m_y)
    f_n: np.ndarray  # (M,) f(z + a0 n_z)
    f_0: float  # f(z)
    electron_free: bool  # f_0 = f_n = 0: A_i = A_k = 0 for every pair, only dipolar terms


def _profile(z: float, mz: np.ndarray, a0: float, z0: float) -> np.ndarray:
    """f(z + a0 m_z) = cos^2(pi (z + a0 m_z) / z0) inside |.| <= z0/2 (inclusive), else 0."""
    h = z + a0 * np.asarray(mz, dtype=float)
    return np.where(np.abs(h) <= z0 / 2, np.cos(np.pi * h / z0) ** 2, 0.0)


@lru_cache(maxsize=16)
def _stencil(a0: float, gamma: float, r_c: float, r_g: float) -> Stencil:
    model = Model(a0=a0, gamma=gamma, r_c=r_c, r_g=r_g, electron_sz=0.0)
    neigh = _ball(r_c)
    neigh = neigh[np.any(neigh != 0, axis=1)]
    ball_g = _ball(r_g)
    R = int(np.max(np.abs(_ball(r_c + r_g))))
    W = 2 * R + 1
    M = len(neigh)
    S1 = np.zeros(M)
    cells, mzs, dBs = [], [], []
    for col, n in enumerate(neigh):
        # N_n: within r_g of k (origin) or of i (n), excluding both
        near = np.unique(np.concatenate([ball_g, ball_g + n]), axis=0)
        near = near[np.any(near != 0, axis=1) & np.any(near != n, axis=1)]
        dB = dipolar(a0 * (near - n), model) - dipolar(a0 * near, model)
        S1[col] = np.sum(dB * dB)
        cells.append(((near[:, 0] + R) * W + (near[:, 1] + R)) * M + col)
        mzs.append(near[:, 2])
        dBs.append(dB)
    d = a0 * neigh.astype(float)
    dxy = np.stack([d[:, 0] ** 2, d[:, 0] * d[:, 1], d[:, 1] ** 2], axis=1)
    dxyz = np.concatenate([dxy, np.stack([d[:, 0] * d[:, 2], d[:, 1] * d[:, 2], d[:, 2] ** 2], axis=1)], axis=1)
    return Stencil(
        R=R,
        offsets=neigh,
        dxy=dxy,
        dxyz=dxyz,
        B=dipolar(d, model),
        S1=S1,
        flat_n=(neigh[:, 0] + R) * W + (neigh[:, 1] + R),
        near_cell=np.concatenate(cells),
        near_mz=np.concatenate(mzs),
        near_dB=np.concatenate(dBs),
    )


def article_only(model: Model) -> None:
    """This module is the article's simple cubic crystal; another crystal is refused (ValueError),
    never computed with the article's lattice (:mod:`app.physics.crystal` has GaAs)."""
    if model.crystal != "article":
        raise ValueError(f"model.crystal: app.physics.lattice is the article's crystal, got {model.crystal!r} "
                         "(app.physics.crystal or app.lattice with an isotope)")  # fmt: skip


def stencil(model: Model) -> Stencil:
    """The height-independent geometry of the rates (offsets, B, S1, near sets) for ``model``."""
    article_only(model)
    return _stencil(model.a0, model.gamma, model.r_c, model.r_g)


@lru_cache(maxsize=64)  # one G is (2R+1)^2 x M doubles: 0.6 MB with the defaults
def _height_terms(a0: float, gamma: float, z0: float, r_c: float, r_g: float, z: float) -> HeightTerms:
    st = _stencil(a0, gamma, r_c, r_g)
    M = len(st.offsets)
    cells = (2 * st.R + 1) ** 2
    # entries are summed into each cell in the order of the near-set list (bincount is a
    # sequential loop), so G does not depend on how the points are batched
    G = np.bincount(st.near_cell, weights=st.near_dB * _profile(z, st.near_mz, a0, z0), minlength=cells * M)
    f_n = _profile(z, st.offsets[:, 2], a0, z0)
    f_0 = float(_profile(z, np.zeros(1), a0, z0)[0])
    for a in (G, f_n):
        a.flags.writeable = False
    return HeightTerms(
        z=z, G=G.reshape(cells, M), f_n=f_n, f_0=f_0, electron_free=f_0 == 0.0 and not np.any(f_n)
    )


def height_terms(model: Model, z: float) -> HeightTerms:
    """G_n, f_0 and f_n for a site k at height z (nm), cached per (geometry, z)."""
    return _height_terms(model.a0, model.gamma, model.z0, model.r_c, model.r_g, float(z))


def _batch_terms(xy: np.ndarray, model: Model, st: Stencil, ht: HeightTerms):
    """A_i, A_k, A_ik, C_ik, g_ik, W_ik for a batch of points (b, 2) at height ht.z: arrays (b, M)."""
    a0, l0, A0 = model.a0, model.l0, model.A0
    m = a0 * np.arange(-st.R, st.R + 1)
    X = np.exp(-((xy[:, 0:1] + m) ** 2) / l0**2)  # (b, 2R+1)
    Y = np.exp(-((xy[:, 1:2] + m) ** 2) / l0**2)
    XY = (X[:, :, None] * Y[:, None, :]).reshape(len(xy), -1)  # (b, (2R+1)^2)
    A_k = A0 * ht.f_0 * X[:, st.R] * Y[:, st.R]  # (b,)
    A_i = A0 * ht.f_n * XY[:, st.flat_n]  # (b, M)
    factor = mediated_factor(model)
    C = st.B + factor * A_i * A_k[:, None]
    if factor == 0.0 or ht.electron_free:
        g = np.broadcast_to(80.0 * st.S1, C.shape)
        A_ik = np.zeros_like(C)
    else:
        delta = factor * (A_i - A_k[:, None])
        cross = A0 * (XY @ ht.G)  # sum over near set of dB_j A_j
        S2 = hyperfine_square_sum(model)
        g = 80.0 * (st.S1 + 2.0 * delta * cross + delta * delta * (S2 - A_i * A_i - (A_k * A_k)[:, None]))
        A_ik = 2 * model.electron_sz * (A_i - A_k[:, None])
    W = rate(A_ik, C, g)
    return A_i, A_k, A_ik, C, g, W


def _points_3d(points) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim == 1:
        pts = pts[None, :]
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points: expected an array (N, 3) of (x, y, z) in nm, got shape {np.shape(points)}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points: expected finite coordinates, got NaN or inf")
    return pts


def height_groups(pts: np.ndarray):
    """(z, indices of the points at that height, in input order) for each distinct height of ``pts`` (N, 3)."""
    heights, which = np.unique(pts[:, 2], return_inverse=True)
    which = which.reshape(-1)
    order = np.argsort(which, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(which, minlength=len(heights)))[:-1])
    return zip(heights, groups, strict=True)


def _rate_batches(pts: np.ndarray, model: Model, batch: int):
    """Yield (indices, W (b, M)) for batches of at most ``batch`` points of one height each.

    The points are grouped by their exact z (each group in its input order), so each
    height's G is built once.
    """
    mediated_factor(model)  # validates omega_e before any work
    st = stencil(model)
    if len(pts) == 0:
        return
    for z, idx in height_groups(pts):
        ht = height_terms(model, z)
        for start in range(0, len(idx), batch):
            sel = idx[start : start + batch]
            yield sel, _batch_terms(pts[sel, :2], model, st, ht)[-1]


def rates(points, model: Model, batch: int = 1024) -> np.ndarray:
    """W_ik (1/s) of sites k at points (N, 3) in nm towards k + n: array (N, M).

    Column j is the partner at offset ``stencil(model).offsets[j]`` (M = 256 with the
    defaults). Any height z (not only multiples of a0): the rates of the infinite
    crystal, MODEL.md 8a and 10. Working memory is bounded by ``batch`` points at a time;
    the result itself is N x M doubles.
    """
    pts = _points_3d(points)
    out = np.empty((len(pts), len(stencil(model).offsets)))
    for sel, W in _rate_batches(pts, model, batch):
        out[sel] = W
    return out


#: (3, 3) index into the six products xx, xy, yy, xz, yz, zz of Stencil.dxyz
_SYM3 = np.array([[0, 1, 3], [1, 2, 4], [3, 4, 5]])


def diffusion_tensor_3d(points, model: Model, batch: int = 1024) -> np.ndarray:
    """D^ab = 1/2 sum_i W_ik Delta^a Delta^b, a, b in x, y, z, at points (N, 3) in nm: (N, 3, 3), nm^2/s.

    At z = 0 the xy block is :func:`diffusion_tensor` and D^xz = D^yz = 0. Memory is
    bounded by ``batch`` points at a time.

    Not smooth in z near the mid-plane: at z = a0 n / 2 (n = 1 .. r_c) the partner
    (0, 0, -n) sits at -z, has A_i = A_k (no Knight detuning) and dominates D^zz, in peaks
    about 0.01 nm wide (at 0.2 T on the axis D^zz is 103 nm^2/s at z = 2 a0, 34 at 1.1 nm).
    """
    pts = _points_3d(points)
    st = stencil(model)
    out = np.empty((len(pts), 3, 3))
    for sel, W in _rate_batches(pts, model, batch):
        out[sel] = (0.5 * (W @ st.dxyz))[:, _SYM3]
    return out


def plane_flux_zz(xy, intervals, model: Model, batch: int = 1024) -> np.ndarray:
    """D^zz as the lattice carries it across its planes: array (N, P) in nm^2/s.

    Column j is the interval a0 p < z < a0 (p + 1), p = ``intervals[j]``, in the column of
    sites at (x, y) (N, 2) in nm. With u = g z, the flux per unit area through a plane in
    that interval is rho g D_p, carried by every pair of sites on either side of it, each
    pair counted half from each end (so neither end is preferred):

        D_p = a0^2 / 2 sum_m sum_{hops n of the site at (x, y, a0 m) that cross p} W |n_z|,

    with the in-plane offsets summed (the lattice varies over l0, not over one hop). A
    piecewise-constant D^zz with the resistance of the lattice's planes, where a site placed
    between planes (:func:`diffusion_tensor_3d`) has a D^zz no lattice site has. Wherever
    the rates do not depend on height (the bulk, the singlet) D_p = 1/2 sum W Delta_z^2, the
    site's own D^zz, exactly. Near the mid-plane the mirror pairs (m, -m), which have no
    Knight detuning, make D_p large; in a state even in z they carry nothing, but there u is
    flat in z anyway (a state folded onto z >= 0 changes t_1/2 by 2e-4 relative in the 1D
    check of docs/model3d.md).
    """
    return plane_pair_sum(
        xy, intervals, stencil(model).offsets[:, 2], 0.5 * model.a0**2,
        lambda pts: rates(pts, model, batch), lambda m: model.a0 * m,
    )  # fmt: skip


def plane_pair_sum(xy, intervals, nz: np.ndarray, weight: float, rates_at, height) -> np.ndarray:
    """The planes' pair sum behind :func:`plane_flux_zz` (and the real crystal's,
    :func:`app.physics.crystal.plane_flux_zz`): (N, P), column j the interval above plane
    ``intervals[j]``, += weight |d| sum of the rates of the partners d planes away whose hop
    crosses it, over the sites at (x, y, ``height(m)``) on every plane m within reach.
    ``nz``: each partner's offset in planes; ``rates_at(points (N, 3))``: (N, len(nz))."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    intervals = np.asarray(intervals, dtype=int).reshape(-1)
    out = np.zeros((len(xy), len(intervals)))
    if len(xy) == 0 or len(intervals) == 0:
        return out
    reach = int(np.abs(nz).max())
    where = {int(p): j for j, p in enumerate(intervals)}
    hops = [(d, nz == d) for d in range(-reach, reach + 1) if d != 0]
    for m in range(int(intervals.min()) - reach + 1, int(intervals.max()) + reach + 1):
        W = rates_at(np.column_stack([xy, np.full(len(xy), height(m))]))
        for d, sel in hops:
            cols = [where[p] for p in range(min(m, m + d), max(m, m + d)) if p in where]
            if cols:
                out[:, cols] += (weight * abs(d) * W[:, sel].sum(axis=1))[:, None]
    return out


def diffusion_tensor(points, model: Model, batch: int = 1024) -> np.ndarray:
    """D^ab at points (N, 2) in nm (site k at z = 0): array (N, 2, 2) in nm^2/s.

    Memory is bounded by ``batch`` points at a time (about batch x 300 doubles).
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    st = stencil(model)
    out = np.empty((len(pts), 2, 2))
    for sel, W in _rate_batches(np.column_stack([pts, np.zeros(len(pts))]), model, batch):
        d = 0.5 * (W @ st.dxy)  # (b, 3): xx, xy, yy
        out[sel, 0, 0] = d[:, 0]
        out[sel, 0, 1] = d[:, 1]
        out[sel, 1, 0] = d[:, 1]
        out[sel, 1, 1] = d[:, 2]
    return out


def isotropic(D: np.ndarray) -> np.ndarray:
    """D = (D^xx + D^yy) / 2 (article eq 25) from tensors (..., 2, 2)."""
    return 0.5 * (D[..., 0, 0] + D[..., 1, 1])


def bulk_diffusion(model: Model) -> float:
    """D with no electron (the (2,0) singlet, or far from the dot): the dipolar background, nm^2/s."""
    return float(isotropic(diffusion_tensor([[0.0, 0.0]], model.model_copy(update={"electron_sz": 0.0})))[0])


def polar_components(points, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D^rr and D^tt (radial and tangential) at points (N, 2); x and y directions at r = 0."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    r = np.hypot(pts[:, 0], pts[:, 1])
    er = np.where(r[:, None] > 0, pts / np.where(r > 0, r, 1.0)[:, None], np.array([1.0, 0.0]))
    et = np.stack([-er[:, 1], er[:, 0]], axis=1)
    Drr = np.einsum("na,nab,nb->n", er, D, er)
    Dtt = np.einsum("na,nab,nb->n", et, D, et)
    return Drr, Dtt


def site_rates(x: float, y: float, model: Model, z: float = 0.0) -> SiteRates:
    """Every flip-flop partner of the site at (x, y, z) with its rate W_ik (fast path)."""
    st = stencil(model)
    A_i, A_k, A_ik, C, g, W = _batch_terms(np.array([[x, y]], dtype=float), model, st, height_terms(model, z))
    return SiteRates(
        offsets=st.offsets.copy(),
        delta=model.a0 * st.offsets.astype(float),
        A_i=A_i[0],
        A_k=float(A_k[0]),
        A_ik=A_ik[0],
        C_ik=C[0],
        g_ik=np.asarray(g)[0].copy(),
        W_ik=W[0],
    )


def field_cuts(model: Model, r_max: float = 150.0, n: int = 601) -> dict[str, np.ndarray]:
    """D, D^rr and D^tt along the x axis (y = 0) and the diagonal (x = y), r from 0 to r_max nm."""
    r = np.linspace(0.0, r_max, n)
    out = {"r_nm": r}
    for name, direction in (("axis", np.array([1.0, 0.0])), ("diag", np.array([1.0, 1.0]) / math.sqrt(2))):
        pts = r[:, None] * direction
        D = diffusion_tensor(pts, model)
        Drr, Dtt = polar_components(pts, D)
        out[f"D_{name}"], out[f"Drr_{name}"], out[f"Dtt_{name}"] = isotropic(D), Drr, Dtt
    return out
