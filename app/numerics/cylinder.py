"""The Gmsh cylinder of the 3D continuum model (MODEL.md 10), extruded from the disk (nm).

The mesh covers 0 <= z <= Z_top: A, D and both initial z-profiles are even in z, so the
solution is, and the mid-plane z = 0 is a plane of symmetry (zero flux). h(t)/h(0) and
every share of the polarisation are ratios, the same on the half as on the whole
cylinder; renders mirror the half.

It is the disk mesh of :mod:`app.numerics.mesh` (refined at the dot centre) extruded through
horizontal levels, each prism split into three tetrahedra, so every vertex lies on one
of few heights (the lattice D is built once per height, :func:`app.physics.lattice.height_terms`).
The levels (:func:`z_levels`) follow a size in z: ``mesh.dz_face`` within r_c of the face
of the dot layer z0 / 2 (where D^zz changes about 20-fold within one a0), ``mesh.dz_layer``
inside the layer, growing linearly (slope 0.3) to ``mesh.dz_host`` in the host crystal. The
face of the dot layer and the edge of the uniform initial state are levels and internal
surfaces of the mesh, so the cells of the layer (tag :data:`LAYER_TAG`) and of the host
crystal (:data:`HOST_TAG`) are separate; the lateral surface r = R is :data:`app.numerics.disk.RIM_TAG`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from app.config import Config
from app.numerics.disk import RIM_TAG, base_disk, number_tag
from app.physics.geometry import continuum_top, uniform_edge

#: cell tags of the cylinder
LAYER_TAG, HOST_TAG = 1, 3
#: facet tags: the mid-plane (symmetry) and the top face
MIDPLANE_TAG, TOP_TAG = 4, 5
#: growth of the element height away from the faces' band (nm per nm)
GROWTH = 0.3


def _breaks(cfg: Config, sublattice: str | None = None) -> list[float]:
    """Heights that must be levels: 0, the edge of the uniform state, the face, the top (nm)."""
    top = continuum_top(cfg, sublattice)
    inner = {round(z, 12) for z in (uniform_edge(cfg, sublattice), cfg.model.z0 / 2) if 1e-9 < z < top - 1e-9}
    return [0.0, *sorted(inner), top]


def _segments(cfg: Config, sublattice: str | None = None):
    """Each segment between breaks: (a, b, the heights z of its quadrature, the cumulated number
    of elements up to each z). Its element count is ceil of the last (nm, 1)."""
    m, me = cfg.model, cfg.mesh
    face, band = m.z0 / 2, m.r_c * m.a0

    def size(z):
        d = np.abs(z - face)
        cap = np.where(z < face, me.dz_layer, max(me.dz_host, me.dz_face))
        return np.where(d <= band, me.dz_face, np.minimum(cap, me.dz_face + GROWTH * (d - band)))

    breaks = _breaks(cfg, sublattice)
    for a, b in zip(breaks[:-1], breaks[1:], strict=True):
        z = np.linspace(a, b, 4001)
        inv = 1.0 / size(z)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (inv[1:] + inv[:-1]) * np.diff(z))])
        yield a, b, z, cum


def level_count(cfg: Config, sublattice: str | None = None) -> int:
    """How many levels :func:`z_levels` makes (0 and Z_top included), counted without making them."""
    return 1 + sum(max(1, math.ceil(cum[-1] - 1e-9)) for _, _, _, cum in _segments(cfg, sublattice))


def z_levels(cfg: Config, sublattice: str | None = None) -> list[float]:
    """The heights of the mesh's levels, 0 to Z_top (nm), from the size in z of ``[mesh]``
    (GaAs, lattice-matched: the top and edge of ``sublattice``'s planes)."""
    levels = [0.0]
    for _, b, z, cum in _segments(cfg, sublattice):
        n = max(1, math.ceil(cum[-1] - 1e-9))
        levels.extend(float(x) for x in np.interp(np.linspace(0, cum[-1], n + 1)[1:-1], cum, z))
        levels.append(float(b))
    return levels


@dataclass(frozen=True)
class CylinderSpec:
    """Geometry of the extruded cylinder: the disk's size field and the levels in z, nm."""

    radius: float
    h_min: float
    h_max: float
    fine_radius: float
    coarse_radius: float
    levels: tuple[float, ...]
    breaks: tuple[float, ...]  # the levels that are surfaces: 0, edge, face, top
    face: float  # z0 / 2: cells below are the dot layer

    gdim = 3

    @classmethod
    def from_config(cls, cfg: Config, sublattice: str | None = None) -> CylinderSpec:
        me = cfg.mesh
        return cls(
            cfg.domain.radius, me.h_min, me.h_max, me.fine_radius, me.coarse_radius,
            tuple(z_levels(cfg, sublattice)), tuple(_breaks(cfg, sublattice)), cfg.model.z0 / 2,
        )  # fmt: skip

    @property
    def name(self) -> str:
        f = number_tag
        digest = hashlib.sha256(np.asarray(self.levels).tobytes() + np.asarray(self.breaks).tobytes()).hexdigest()[:10]
        return (
            f"cyl_R{f(self.radius)}_Z{f(round(self.levels[-1], 6))}_hmin{f(self.h_min)}_hmax{f(self.h_max)}"
            f"_rf{f(self.fine_radius)}_rc{f(self.coarse_radius)}_n{len(self.levels) - 1}_{digest}"
        )

    def build(self) -> None:
        """Make the Gmsh model in the current (initialised) Gmsh session: one extrusion per
        segment between breaks, each with its own levels, so the breaks are surfaces."""
        import gmsh

        gmsh.model.add("cylinder")
        occ = gmsh.model.occ
        base = base_disk(self)
        levels = np.asarray(self.levels)
        surface, layer, host, rim = (2, base), [], [], []
        bottom = base
        for a, b in zip(self.breaks[:-1], self.breaks[1:], strict=True):
            inside = levels[(levels > a + 1e-12) & (levels <= b + 1e-12)]
            heights = list((inside - a) / (b - a))
            heights[-1] = 1.0
            out = occ.extrude([surface], 0.0, 0.0, b - a, numElements=[1] * len(heights), heights=heights)
            top = next(e for e in out if e[0] == 2)
            volume = next(e for e in out if e[0] == 3)
            (layer if b <= self.face + 1e-9 else host).append(volume[1])
            rim.extend(e[1] for e in out[out.index(volume) + 1 :] if e[0] == 2)
            surface = top
        occ.synchronize()
        gmsh.model.addPhysicalGroup(3, layer, LAYER_TAG, name="layer")
        if host:
            gmsh.model.addPhysicalGroup(3, host, HOST_TAG, name="host")
        gmsh.model.addPhysicalGroup(2, rim, RIM_TAG, name="rim")
        gmsh.model.addPhysicalGroup(2, [bottom], MIDPLANE_TAG, name="midplane")
        gmsh.model.addPhysicalGroup(2, [surface[1]], TOP_TAG, name="top")
        gmsh.model.mesh.generate(3)
