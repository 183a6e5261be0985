"""Observables: the Overhauser field h(t) and the numbers derived from it.

h(t) = integral over the disk of A(x, y, 0) u(x, y, t) dA (MODEL.md section 5), or in 3D
over the cylinder of A(x, y, z) u dV (section 10); only the ratio h(t)/h(0) is reported, so
A0 cancels and the weight is A / A0.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares


def exact_constant_d(t, D: float, l0: float, r0: float):
    """h(t)/h(0) for constant D on the infinite plane: (l0^2 + r0^2) / (l0^2 + r0^2 + 4 D t)."""
    s = l0**2 + r0**2
    return s / (s + 4.0 * D * np.asarray(t, dtype=float))


def crossing_time(t, h, level: float) -> float:
    """First time at which h falls to ``level`` (linear in log t between samples); nan if never.

    ``t`` must start at 0 or be positive and increasing; ``h`` is h(t)/h(0).
    """
    t = np.asarray(t, dtype=float)
    h = np.asarray(h, dtype=float)
    below = np.nonzero(h <= level)[0]
    if below.size == 0:
        return float("nan")
    i = below[0]
    if i == 0:
        return float(t[0])
    t0, t1, h0, h1 = t[i - 1], t[i], h[i - 1], h[i]
    w = (h0 - level) / (h0 - h1)
    if t0 > 0:
        return float(np.exp(np.log(t0) + w * (np.log(t1) - np.log(t0))))
    return float(t0 + w * (t1 - t0))


#: the decay times' keys (s) in ``run.json``'s ``decay``, a sweep's table and a figure's curves
T_HALF, T_1E = "t_half_s", "t_1e_s"


def decay_times(t, h) -> dict[str, float]:
    """t_1/2 and t_1/e of h(t)/h(0), s."""
    return {T_HALF: crossing_time(t, h, 0.5), T_1E: crossing_time(t, h, float(np.exp(-1.0)))}


def fit_constant_d(times, h, l0: float, r0: float, window=(0.05, 0.95)) -> float:
    """The constant D (nm^2/s) whose exact decay (:func:`exact_constant_d`) fits h/h0 best
    where h/h0 is within ``window`` (least squares, in log D); nan if fewer than two
    output times lie there."""
    times, h = np.asarray(times, dtype=float), np.asarray(h, dtype=float)
    sel = (times > 0) & (h >= window[0]) & (h <= window[1])
    if sel.sum() < 2:
        return float("nan")
    res = least_squares(lambda p: exact_constant_d(times[sel], np.exp(p[0]), l0, r0) - h[sel], x0=[0.0])
    return float(np.exp(res.x[0]))
