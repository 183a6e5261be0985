"""The pump phase's rate and what is reported of its state (MODEL.md 12); pure NumPy.

During the pump, du_alpha/dt = div(D_alpha grad u_alpha) + Gamma_alpha(x) (P_inf - u_alpha)
with Gamma_alpha(x) = Gamma_0 (A_alpha(x) / A_ref)^2: a flip-flop with the electron has a
rate proportional to |psi|^4, A_ref is the largest coupling of any isotope at the dot
centre (the article's crystal: A0; GaAs: 71Ga's, A = 96 ueV), so Gamma_0 is the fastest
pump rate in the dot. Since every isotope shares |psi|^2,

    Gamma_alpha(x) = Gamma_0 (A^alpha / A_ref)^2 (A(x) / A(0))^2,

the isotope's scale (:func:`rate_scale`) times the square of the hyperfine profile. With
D = 0 the build-up is u_alpha(x, t) = P_inf (1 - exp(-Gamma_alpha(x) t)) (:func:`closed_form`).
Units: s, nm.
"""

from __future__ import annotations

import numpy as np

from app.config import Config, Model
from app.physics import crystal


def rate_scale(model: Model, isotope: str | None = None) -> float:
    """(A_alpha(0) / A_ref)^2: the isotope's pump rate at the dot centre over Gamma_0 (1 for the
    article's single nucleus, and for GaAs's 71Ga)."""
    couplings = {iso.name: crystal.centre_coupling(model, iso) for iso in crystal.isotopes(model)}
    name = isotope if isotope is not None else next(iter(couplings))
    return float((couplings[name] / max(couplings.values())) ** 2)


def rate(pos, config: Config, isotope: str | None = None) -> np.ndarray:
    """Gamma_alpha at positions (..., 3) nm, 1/s: Gamma_0 (A_alpha(x) / A_ref)^2 (the disk's
    columns: their sites at z = 0)."""
    model = config.model
    profile = crystal.hyperfine(pos, model, isotope or crystal.isotopes(model)[0].name)
    centre = crystal.centre_coupling(model, isotope or crystal.isotopes(model)[0].name)
    return config.pump.gamma0 * rate_scale(model, isotope) * (profile / centre) ** 2


def closed_form(gamma, t: float, p_inf: float = 1.0) -> np.ndarray:
    """u(t) = P_inf (1 - exp(-Gamma t)) from u = 0 without diffusion (``gamma`` in 1/s)."""
    return p_inf * -np.expm1(-np.asarray(gamma, dtype=float) * t)


def output_times(config: Config) -> list[float]:
    """The pump phase's output times, s: 0, then log-spaced over three decades up to t_pump
    (``solver.outputs_per_decade`` per decade)."""
    t_pump = config.pump.t_pump
    n = 3 * config.solver.outputs_per_decade + 1
    ts = [float(t) for t in t_pump * np.logspace(-3, 0, n)]
    ts[-1] = t_pump
    return [0.0, *ts]


def second_moment_width(r2_u: float, u_total: float) -> float:
    """The profile width sqrt(<x^2 + y^2>) (nm) from the integrals of (x^2 + y^2) u and of u: the
    r0 of the Gaussian exp(-r^2 / r0^2) with the same second moment in the plane."""
    return float(np.sqrt(r2_u / u_total)) if u_total > 0 else float("nan")
