"""The lattice physics under its stable name: flip-flop rates and D^ab at a point, for either
crystal (``model.crystal``), pure NumPy (no MPI or DOLFINx).

:func:`rates`, :func:`diffusion_tensor`, :func:`diffusion_tensor_3d` and
:func:`bulk_diffusion` take the isotope (``"75As"``, ``"69Ga"``, ``"71Ga"``); for the
article's crystal it may be omitted, as before, and everything is
:mod:`app.physics.lattice`'s (whose other names are re-exported here). For GaAs they are
:mod:`app.physics.crystal`'s (MODEL.md 11). Units: nm, s, rad/s; D in nm^2/s.
"""

from __future__ import annotations

import numpy as np

from app.config import Model
from app.physics import crystal
from app.physics import lattice as _article
from app.physics.crystal import ISOTOPES, Isotope, isotopes  # noqa: F401  (re-exported)
from app.physics.lattice import *  # noqa: F403

__all__ = sorted({*_article.__all__, "ISOTOPES", "Isotope", "isotopes"})


def _article_or_crystal(model: Model, isotope: str | Isotope | None) -> bool:
    """True where the article's own code answers (its crystal, the isotope omitted or its 75As)."""
    if model.crystal == "article":
        if isotope is not None:
            crystal._isotope(model, isotope)  # its one nucleus, 75As: another name is refused
        return True
    if isotope is None:
        names = ", ".join(i.name for i in crystal.isotopes(model))
        raise ValueError(f"isotope: expected one of {names} with model.crystal = {model.crystal!r}, got None")
    return False


def rates(points, model: Model, isotope: str | Isotope | None = None, batch: int = 1024) -> np.ndarray:
    """W_ik (1/s) of sites of ``isotope`` at points (N, 3) in nm towards their like partners: (N, M)."""
    if _article_or_crystal(model, isotope):
        return _article.rates(points, model, batch)
    return crystal.rates(points, model, isotope, batch=min(batch, 128))


def diffusion_tensor_3d(points, model: Model, isotope: str | Isotope | None = None, batch: int = 1024) -> np.ndarray:
    """D^ab of ``isotope`` at points (N, 3) in nm: (N, 3, 3), nm^2/s."""
    if _article_or_crystal(model, isotope):
        return _article.diffusion_tensor_3d(points, model, batch)
    return crystal.diffusion_tensor_3d(points, model, isotope, batch=min(batch, 128))


def diffusion_tensor(points, model: Model, isotope: str | Isotope | None = None, batch: int = 1024) -> np.ndarray:
    """D^ab, a, b in x, y, of ``isotope`` at points (N, 2) in nm, the site at z = 0: (N, 2, 2), nm^2/s."""
    if _article_or_crystal(model, isotope):
        return _article.diffusion_tensor(points, model, batch)
    return crystal.diffusion_tensor(points, model, isotope, batch=min(batch, 128))


def bulk_diffusion(model: Model, isotope: str | Isotope | None = None) -> float:
    """The bulk in-plane D (nm^2/s) with no electron: (D^xx + D^yy) / 2, far from the dot."""
    if _article_or_crystal(model, isotope):
        return _article.bulk_diffusion(model)
    return float(crystal.bulk_diffusion(model, isotope)[0, 0])
