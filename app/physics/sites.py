"""The sites of the lattice master equation (MODEL.md 8a, 8b): which, in what order, folded.

Pure NumPy, no PETSc. Sites are a0 (n_x, n_y, n_z) with n_x^2 + n_y^2 <= floor((R / a0)^2)
and |n_z| <= floor(Z / a0) (the disk's columns: n_z = 0 alone, one site per column).

Folded (the problem is symmetric): one representative per orbit of the 8 symmetries of
the square about the central column and of z -> -z, 0 <= n_y <= n_x and n_z >= 0, with
orbit size m = m_xy m_z (m_xy = 1 on the axis, 4 on the x axis or the diagonal, 8
elsewhere; m_z = 1 at n_z = 0, else 2). Unfolded, every site is its own orbit (m = 1).

Order: by n_x, then n_y, then n_z (innermost), so a contiguous block of indices (one MPI
rank's rows) is a slab of n_x and its couplings stay within r_c of it. Every index
function works from O(R / a0) row counts, never a list of all sites, so no rank holds
the whole lattice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def block(n: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous range [lo, hi) of ``n`` indices owned by ``rank`` of ``size`` (the first
    n mod size ranks one more)."""
    q, r = divmod(n, size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


@dataclass(frozen=True)
class Sites:
    """The ordered (and possibly folded) sites of a cylinder of radius R, half-height Z."""

    a0: float
    n2: int  # floor((R / a0)^2): n_x^2 + n_y^2 <= n2
    nz: int  # floor(Z / a0): |n_z| <= nz
    fold: bool

    @classmethod
    def create(cls, radius: float, half_height: float, a0: float, fold: bool) -> Sites:
        return cls(
            a0=a0,
            n2=int(math.floor((radius / a0) ** 2 + 1e-9)),
            nz=int(math.floor(half_height / a0 + 1e-9)),
            fold=fold,
        )

    # --- layout ---------------------------------------------------------------------------

    @property
    def nmax(self) -> int:
        return math.isqrt(self.n2)

    @property
    def z_lo(self) -> int:
        return 0 if self.fold else -self.nz

    @property
    def planes(self) -> int:
        return self.nz - self.z_lo + 1

    def _rows(self):
        """For each n_x: the lowest n_y, the number of n_y, and the first column index."""
        nx = np.arange(0 if self.fold else -self.nmax, self.nmax + 1)
        ylim = np.array([math.isqrt(self.n2 - int(x) * int(x)) for x in nx])
        if self.fold:
            ylo = np.zeros_like(nx)
            count = np.minimum(nx, ylim) + 1
        else:
            ylo = -ylim
            count = 2 * ylim + 1
        start = np.concatenate([[0], np.cumsum(count)])
        return nx, ylo, count, start

    @property
    def columns(self) -> int:
        return int(self._rows()[3][-1])

    @property
    def size(self) -> int:
        """Number of unknowns (representatives when folded)."""
        return self.columns * self.planes

    @property
    def full_size(self) -> int:
        """Number of lattice sites the unknowns stand for."""
        if not self.fold:
            return self.size
        return Sites(self.a0, self.n2, self.nz, False).size

    def block(self, rank: int, size: int) -> tuple[int, int]:
        """The contiguous range [lo, hi) of indices owned by ``rank`` of ``size``."""
        return block(self.size, rank, size)

    # --- index <-> position ---------------------------------------------------------------

    def positions(self, index: np.ndarray) -> np.ndarray:
        """Integer (n_x, n_y, n_z) of the given indices, (N, 3)."""
        index = np.asarray(index, dtype=np.int64)
        nx, ylo, _, start = self._rows()
        col, iz = np.divmod(index, self.planes)
        row = np.searchsorted(start, col, side="right") - 1
        return np.stack([nx[row], col - start[row] + ylo[row], iz + self.z_lo], axis=1)

    def canonical(self, n: np.ndarray) -> np.ndarray:
        """The representative of each position's orbit (itself when unfolded)."""
        n = np.asarray(n, dtype=np.int64)
        if not self.fold:
            return n
        ax, ay = np.abs(n[:, 0]), np.abs(n[:, 1])
        return np.stack([np.maximum(ax, ay), np.minimum(ax, ay), np.abs(n[:, 2])], axis=1)

    def inside(self, n: np.ndarray) -> np.ndarray:
        """In the disk (radially)."""
        return n[:, 0] ** 2 + n[:, 1] ** 2 <= self.n2

    def within_faces(self, n: np.ndarray) -> np.ndarray:
        """Between the faces, |n_z| <= nz."""
        return np.abs(n[:, 2]) <= self.nz

    def index(self, n: np.ndarray) -> np.ndarray:
        """Index of each position's representative; positions must be inside and within faces."""
        c = self.canonical(n)
        nx, ylo, _, start = self._rows()
        row = c[:, 0] - nx[0]
        return (start[row] + c[:, 1] - ylo[row]) * self.planes + (c[:, 2] - self.z_lo)

    def orbit_size(self, n: np.ndarray) -> np.ndarray:
        """m = m_xy m_z of representatives (1 everywhere when unfolded), float."""
        n = np.asarray(n, dtype=np.int64)
        if not self.fold:
            return np.ones(len(n))
        x, y, z = n[:, 0], n[:, 1], n[:, 2]
        mxy = np.where((x == 0) & (y == 0), 1, np.where((y == 0) | (y == x), 4, 8))
        mz = np.where(z == 0, 1, 2)
        return (mxy * mz).astype(float)


# --- the real crystal: one zincblende sublattice (MODEL.md 11) -------------------------------


@dataclass(frozen=True)
class SublatticeSites:
    """The sites of one sublattice of zincblende GaAs in a cylinder of radius R, half-height Z.

    Integer positions m in units of a/4 (MODEL.md 11, the dot centre an As site at the
    origin): anion (As) sites m = 2n, cation (Ga) sites m = 2n - (1, 1, 1), n1 + n2 + n3 even
    in both. So As planes lie at z = (a/2) n3, Ga planes at z = a/4 + (a/2) n: each plane is
    a checkerboard of spacing a/2 whose colour alternates from plane to plane. The disk holds
    m1^2 + m2^2 <= floor((4R / a)^2), the faces |m3| <= floor(4Z / a): tests on integers.

    Not folded (the crystal's symmetry about the central As column is D2d; folding by it is
    not implemented). Order: by n1, then n2, then n3 (innermost), as :class:`Sites`, so a
    contiguous block of indices (one rank's rows) is a slab of x; every index function works
    from O(R / a) row counts.
    """

    a: float
    sublattice: str  # "anion" | "cation"
    q2: int  # floor((4R / a)^2): m1^2 + m2^2 <= q2
    qz: int  # floor(4Z / a): |m3| <= qz
    fold: bool = False

    @classmethod
    def create(cls, radius: float, half_height: float, a: float, sublattice: str) -> SublatticeSites:
        if sublattice not in ("anion", "cation"):
            raise ValueError(f"sublattice: expected 'anion' or 'cation', got {sublattice!r}")
        sites = cls(
            a=a,
            sublattice=sublattice,
            q2=int(math.floor((4 * radius / a) ** 2 + 1e-9)),
            qz=int(math.floor(4 * half_height / a + 1e-9)),
        )
        if sites.planes_of(0) + sites.planes_of(1) == 0:
            raise ValueError(f"half_height: expected room for a plane of the {sublattice} sublattice, got {half_height:g} nm")
        return sites

    @property
    def c(self) -> int:
        """m = 2n - c (1, 1, 1): 0 for the anions, 1 for the cations."""
        return 0 if self.sublattice == "anion" else 1

    # --- layout ---------------------------------------------------------------------------

    def _span(self, s: int) -> tuple[int, int]:
        """The n with |2n - c| <= s: (lowest, highest)."""
        return -((s - self.c) // 2), (s + self.c) // 2

    def planes(self) -> np.ndarray:
        """The heights of the sublattice's planes, m3 (units of a/4), ascending."""
        lo, hi = self._span(self.qz)
        return 2 * np.arange(lo, hi + 1) - self.c

    def planes_of(self, parity: int) -> int:
        """The number of n3 of the given parity within the faces."""
        lo, hi = self._span(self.qz)
        first = lo + ((lo - parity) % 2)
        return max(0, (hi - first) // 2 + 1)

    def _first_of(self, parity):
        lo, _ = self._span(self.qz)
        return lo + ((lo - parity) % 2)

    def _rows(self):
        """For each n1: the lowest n2, the number of n2, and the first index of the row."""
        lo, hi = self._span(math.isqrt(self.q2))
        nx = np.arange(lo, hi + 1)
        ylo, count = [], []
        for x in nx:
            s = math.isqrt(self.q2 - (2 * int(x) - self.c) ** 2)
            a, b = self._span(s)
            ylo.append(a)
            count.append(b - a + 1)
        ylo, count = np.array(ylo, dtype=np.int64), np.array(count, dtype=np.int64)
        sizes = self._before(nx, ylo, count)
        start = np.concatenate([[0], np.cumsum(sizes)])
        return nx, ylo, count, start

    def _before(self, nx, ylo, q):
        """Sites in the first q columns of the rows n1 = nx starting at n2 = ylo (arrays)."""
        p0 = (nx + ylo) % 2
        c0 = np.where(p0 == 0, self.planes_of(0), self.planes_of(1))
        c1 = np.where(p0 == 0, self.planes_of(1), self.planes_of(0))
        return (q + 1) // 2 * c0 + q // 2 * c1

    @property
    def columns(self) -> int:
        return int(self._rows()[2].sum())

    @property
    def size(self) -> int:
        """Number of unknowns: the sublattice's sites in the cylinder."""
        return int(self._rows()[3][-1])

    @property
    def full_size(self) -> int:
        return self.size

    def block(self, rank: int, size: int) -> tuple[int, int]:
        """The contiguous range [lo, hi) of indices owned by ``rank`` of ``size``."""
        return block(self.size, rank, size)

    # --- index <-> position ---------------------------------------------------------------

    def positions(self, index: np.ndarray) -> np.ndarray:
        """Integer positions m (units of a/4) of the given indices, (N, 3)."""
        index = np.asarray(index, dtype=np.int64)
        nx, ylo, _, start = self._rows()
        row = np.searchsorted(start, index, side="right") - 1
        x, y0 = nx[row], ylo[row]
        local = index - start[row]
        p0 = (x + y0) % 2
        c0 = np.where(p0 == 0, self.planes_of(0), self.planes_of(1))
        pair = self.planes_of(0) + self.planes_of(1)
        k, rem = np.divmod(local, pair)
        second = rem >= c0
        q = 2 * k + second
        iz = np.where(second, rem - c0, rem)
        y = y0 + q
        z = self._first_of((x + y) % 2) + 2 * iz
        return 2 * np.stack([x, y, z], axis=1) - self.c

    def canonical(self, m: np.ndarray) -> np.ndarray:
        return np.asarray(m, dtype=np.int64)

    def inside(self, m: np.ndarray) -> np.ndarray:
        """In the disk: m1^2 + m2^2 <= floor((4R / a)^2)."""
        return m[:, 0] ** 2 + m[:, 1] ** 2 <= self.q2

    def within_faces(self, m: np.ndarray) -> np.ndarray:
        """Between the faces, |m3| <= floor(4Z / a)."""
        return np.abs(m[:, 2]) <= self.qz

    def index(self, m: np.ndarray) -> np.ndarray:
        """Index of each position (units of a/4); positions must be sites, inside and within faces."""
        n = (np.asarray(m, dtype=np.int64) + self.c) // 2
        nx, ylo, _, start = self._rows()
        row = n[:, 0] - nx[0]
        y0 = ylo[row]
        q = n[:, 1] - y0
        iz = (n[:, 2] - self._first_of((n[:, 0] + n[:, 1]) % 2)) // 2
        return start[row] + self._before(n[:, 0], y0, q) + iz

    def orbit_size(self, m: np.ndarray) -> np.ndarray:
        """1 everywhere (not folded), float."""
        return np.ones(len(m))

    def nm(self, m: np.ndarray) -> np.ndarray:
        """Positions in nm, (a/4) m."""
        return (self.a / 4) * np.asarray(m, dtype=float)
