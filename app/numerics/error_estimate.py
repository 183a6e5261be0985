"""Estimates of the time-integration and the spatial error of a solved case, for its run.json.

Both come from companion solves of the same configuration, each changing one thing:
- time: the TS tolerances (``solver.rtol``, ``solver.atol``) :data:`TOL_FACTOR` times looser
  on the same mesh. A method of order p whose steps keep the local error per step within
  the tolerance has a global error that grows as tol^(p/(p+1)) (measured on the default
  case, BDF3: as tol^0.68 from rtol 1e-3 to 3e-6), so the error at the case's tolerance is
  about ``max |h - h_loose| / (TOL_FACTOR^(p/(p+1)) - 1)``, p = :data:`ORDER` = 3 (BDF3; the
  Rosenbrock-W default of ``ts_type = "rosw"`` is of order 3 too);
- space: ``mesh.h_min`` and ``mesh.h_max`` doubled at the same tolerances. The observable
  (a weighted integral of u) of Lagrange degree k converges as h^(k+1), so the error of the
  case's mesh is about ``max |h - h_coarse| / (2^(k+1) - 1)`` (Richardson).

Each is a maximum over the output times (t > 0) of h(t)/h(0); a lattice (the master equation)
has no mesh and so no spatial estimate. ``benchmarks/tolerances.py`` checks both against the
errors measured with an exact solution and a tight reference (docs/performance.md).
"""

from __future__ import annotations

import time

import numpy as np

from app.numerics.discretisation import solve_once

#: the time companion's tolerances are this many times the case's
TOL_FACTOR = 10.0
#: the order of the time integrators (BDF3, PETSc's default Rosenbrock-W)
ORDER = 3


def time_companion(cfg):
    c = cfg.model_copy(deep=True)
    c.solver.rtol = min(0.5, cfg.solver.rtol * TOL_FACTOR)
    c.solver.atol = cfg.solver.atol * TOL_FACTOR
    return c


def space_companion(cfg):
    c = cfg.model_copy(deep=True)
    c.mesh.h_min, c.mesh.h_max = 2 * cfg.mesh.h_min, 2 * cfg.mesh.h_max
    return c


def max_difference(h, h_other) -> float:
    """max |h - h_other| over the output times after t = 0."""
    return float(np.max(np.abs(np.asarray(h)[1:] - np.asarray(h_other)[1:])))


def estimate(cfg, h, comm, times=None) -> dict:
    """The two estimates for ``cfg``, whose solve gave ``h`` at its output times (``times``,
    default ``solver.output_times()``; collective on ``comm``, the communicator that solved it)."""
    def solve(c):
        return solve_once(c, comm, desc="error estimate", times=times)[0].h

    t0 = time.perf_counter()
    loose = time_companion(cfg)
    rtol_ratio = loose.solver.rtol / cfg.solver.rtol
    growth = rtol_ratio ** (ORDER / (ORDER + 1))
    out = {"time": max_difference(h, solve(loose)) / (growth - 1)}
    if cfg.diffusion.form == "master":
        out["space"] = None
    else:
        out["space"] = max_difference(h, solve(space_companion(cfg))) / (2 ** (cfg.mesh.degree + 1) - 1)
    out["method"] = (f"time: tolerances x{rtol_ratio:g}, same mesh, error ~ tol^{ORDER}/{ORDER + 1}; space: h_min "
                     f"and h_max x2, same tolerances, error ~ h^{cfg.mesh.degree + 1}; each max over the output times of "
                     "|h - h_companion| / (ratio^order - 1)")  # fmt: skip
    out["wall_s"] = time.perf_counter() - t0
    return out
