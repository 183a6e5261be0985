"""The geometries of MODEL.md 8 and 10, and the one line that says which an answer assumes.

- ``disk``: the article's 2D model. The finite elements solve on a disk of radius R; the
  lattice uses its columns (MODEL.md 8b).
- ``layer``: the dot layer alone, |z| <= Z = z0 / 2 (MODEL.md 8a).
- ``slab``: the layer with ``domain.barrier`` nm of host crystal above and below,
  Z = z0 / 2 + barrier.

The half-height Z is :meth:`app.config.Domain.half_height`. Units: nm.
"""

from __future__ import annotations

import math

import numpy as np

from app.config import Config
from app.physics import crystal


def geometry_label(config: Config) -> str:
    """One line saying which geometry an answer assumes, e.g. ``slab, R = 60 nm, -15 <= z <= 15 nm``."""
    d, m, g = config.domain, config.model, config.geometry
    if g.dim == 2:
        return f"{g.name} (2D), R = {d.radius:g} nm"
    Z = d.half_height(m.z0)
    text = f"{g.name}, R = {d.radius:g} nm, -{Z:g} <= z <= {Z:g} nm"
    if g.host:
        text += f" (barrier {Z - m.z0 / 2:g} nm)"
    text += ", initial state made by the pump phase" if config.pump.active else f", {config.z_profile} initial profile"
    if d.lattice_matched and config.diffusion.form != "master":
        if config.model.crystal == "article":
            text += f", lattice-matched (top face {continuum_top(config):.4g} nm, uniform edge {uniform_edge(config):.4g} nm)"
        else:  # each sublattice its own planes: As, Ga
            tops = "/".join(f"{continuum_top(config, s):.4g}" for s in ("anion", "cation"))
            edges = "/".join(f"{uniform_edge(config, s):.4g}" for s in ("anion", "cation"))
            text += f", lattice-matched per sublattice (As/Ga top face {tops} nm, uniform edge {edges} nm)"
    return text


def _sublattice(config: Config, sublattice: str | None) -> str:
    """GaAs: the sublattice given, or the As one (the dot centre's); the article's: its cubic lattice."""
    if config.model.crystal == "article":
        return "cubic"
    return sublattice or "anion"


def plane_face(height: float, a0: float, sublattice: str = "cubic") -> float:
    """The effective face of the outermost lattice plane within |z| <= height, nm: half a plane
    spacing beyond it (each plane stands for a slice one spacing thick, MODEL.md 8a).

    The article's crystal: planes a0 n, face (floor(height / a0) + 1/2) a0. GaAs (MODEL.md 11,
    a0 the cubic constant a): the As planes (a/4) m with m even, the Ga planes m odd; the
    outermost m <= floor(4 height / a) of the sublattice's parity, face (m + 1) a / 4.
    """
    spacing, offset = crystal.sublattice_planes(a0, sublattice)
    shift = offset / spacing  # 0 or 1/2: the planes at (shift + p) spacing
    return (math.floor(height / spacing - shift + 1e-9) + shift + 0.5) * spacing


def continuum_top(config: Config, sublattice: str | None = None) -> float:
    """The top face of the finite-element cylinder, nm: Z, or with ``domain.lattice_matched``
    the effective face of the lattice's outermost plane (:func:`plane_face`, MODEL.md 10): for
    GaAs that of ``sublattice`` ('anion' unless given), whose planes are its own (MODEL.md 11)."""
    d, m = config.domain, config.model
    Z = d.half_height(m.z0)
    if not d.lattice_matched:
        return Z
    return plane_face(Z, m.a0, _sublattice(config, sublattice))


def uniform_edge(config: Config, sublattice: str | None = None) -> float:
    """Where the uniform initial state ends, nm: z0 / 2, or with ``domain.lattice_matched`` the
    effective edge of the lattice's outermost plane of the layer (:func:`plane_face` of z0 / 2)."""
    m = config.model
    if not config.domain.lattice_matched:
        return m.z0 / 2
    return plane_face(m.z0 / 2, m.a0, _sublattice(config, sublattice))


def continuum_initial_state(config: Config, sublattice: str | None = None):
    """u(x, 0) for the finite elements, as ``x -> values`` for interpolation (x of shape (3, N)).

    exp(-(x^2 + y^2) / r0^2), in 3D times the z-profile of MODEL.md 8a: ``uniform`` is 1 up
    to :func:`uniform_edge` and 0 beyond (1/2 on the edge itself, an internal level of the
    mesh, so the piecewise-linear state holds the exact amount: the levels either side are
    equally spaced), ``pumped`` is cos^2(pi z / z0) inside the layer.
    """
    r0, z0 = config.initial.r0, config.model.z0
    if config.geometry.dim == 2:
        return lambda x: np.exp(-(x[0] ** 2 + x[1] ** 2) / r0**2)
    edge, top = uniform_edge(config, sublattice), continuum_top(config, sublattice)
    pumped = config.z_profile == "pumped"

    def u0(x):
        gauss = np.exp(-(x[0] ** 2 + x[1] ** 2) / r0**2)
        z = np.abs(x[2])
        if pumped:
            return gauss * np.where(z <= z0 / 2, np.cos(np.pi * x[2] / z0) ** 2, 0.0)
        tol = 1e-9 * max(edge, 1.0)
        on_edge = 0.5 if edge < top - tol else 1.0  # the top face is the edge: inside, not a jump
        profile = np.where(np.abs(z - edge) <= tol, on_edge, np.where(z < edge, 1.0, 0.0))
        return gauss * profile

    return u0
