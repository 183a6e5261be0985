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
        n = self.size
        q, r = divmod(n, size)
        lo = rank * q + min(rank, r)
        return lo, lo + q + (1 if rank < r else 0)

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
