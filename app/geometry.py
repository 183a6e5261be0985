"""The geometries of MODEL.md 8 and 10, and the one line that says which an answer assumes.

- ``disk``: the article's 2D model. The finite elements solve on a disk of radius R; the
  lattice uses its columns (MODEL.md 8b).
- ``layer``: the dot layer alone, |z| <= Z = z0 / 2 (MODEL.md 8a).
- ``slab``: the layer with ``domain.barrier`` nm of host crystal above and below,
  Z = z0 / 2 + barrier.

The half-height Z is :meth:`app.config.Domain.half_height`. Units: nm.
"""

from __future__ import annotations

from app.config import Config


def geometry_label(config: Config) -> str:
    """One line saying which geometry an answer assumes, e.g. ``slab, R = 60 nm, -15 <= z <= 15 nm``."""
    d, m = config.domain, config.model
    if d.geometry == "disk":
        return f"disk (2D), R = {d.radius:g} nm"
    Z = d.half_height(m.z0)
    text = f"{d.geometry}, R = {d.radius:g} nm, -{Z:g} <= z <= {Z:g} nm"
    if d.geometry == "slab":
        text += f" (barrier {Z - m.z0 / 2:g} nm)"
    return text + f", {config.z_profile} initial profile"
