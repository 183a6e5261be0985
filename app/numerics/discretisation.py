"""The choice of discretisation, made once: the lattice master equation
(``diffusion.form = 'master'``) or the finite elements (every other form); and for the real
crystal (``model.crystal = 'GaAs'``, MODEL.md 11) one problem per isotope, whose
polarisations evolve independently and add up to h (either discretisation: the lattice's
systems live on each isotope's sublattice)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from app.config import Config
from app.numerics.fem import DiffusionProblem
from app.numerics.master import MasterProblem
from app.numerics.problem import Problem
from app.numerics.result import Result
from app.physics import crystal


def make_problem(cfg: Config, comm: MPI.Comm | None = None, isotope: str | None = None) -> Problem:
    """The problem that solves ``cfg`` on ``comm`` (default MPI.COMM_WORLD), not yet set up; for
    the real crystal, that of one ``isotope`` (:func:`isotopes_of`)."""
    comm = comm or MPI.COMM_WORLD
    if cfg.diffusion.form == "master":
        return MasterProblem(cfg, comm, isotope=isotope)
    return DiffusionProblem(cfg, comm, isotope=isotope)


def isotopes_of(cfg: Config) -> tuple[crystal.Isotope, ...]:
    """The isotopes solved one by one: GaAs's three with the lattice's D, else none (one problem:
    the article's single nucleus, or a constant D, the same for every isotope)."""
    if cfg.model.crystal == "article" or cfg.diffusion.source != "lattice":
        return ()
    return crystal.isotopes(cfg.model)


def weights(cfg: Config) -> dict[str, float]:
    """Each isotope's share of h(0): x_alpha A^alpha / sum (the same initial profile for every
    isotope, MODEL.md 11); {} for the article's crystal."""
    if cfg.model.crystal == "article":
        return {}
    w = {iso.name: iso.abundance * iso.A for iso in crystal.isotopes(cfg.model)}
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def solve_once(
    cfg: Config, comm: MPI.Comm, *, progress: bool | None = None, desc: str = "solve", on_output: Callable | None = None
) -> tuple[Result, list[Problem]]:
    """``cfg`` set up and solved on ``comm`` (collective): the Result and the problem(s) solved.

    The real crystal: one problem per isotope (one after another), h = sum_alpha w_alpha
    h_alpha / h_alpha(0) (:func:`weights`), each isotope's h in ``Result.isotopes`` and its
    statistics in ``stats['isotopes']``. ``on_output`` is passed to a single problem only.
    """
    isotopes = isotopes_of(cfg)
    if not isotopes:
        problem = make_problem(cfg, comm).setup()
        result = problem.solve(progress=progress, desc=desc, on_output=on_output)
        share = weights(cfg)
        if share:  # the real crystal with a constant D: every isotope decays alike
            result.isotopes = {name: result.h.copy() for name in share}
        return result, [problem]
    problems, parts = [], {}
    for iso in isotopes:
        problem = make_problem(cfg, comm, isotope=iso.name).setup()
        parts[iso.name] = problem.solve(progress=progress, desc=f"{desc} {iso.name}")
        if isinstance(problem, MasterProblem):  # one isotope's operator at a time (master.estimate)
            problem.release()
        problems.append(problem)
    share = weights(cfg)
    first = next(iter(parts.values()))
    h = sum(share[name] * part.h for name, part in parts.items())
    stats = dict(first.stats)
    for key in ("steps_accepted", "steps_rejected", "linear_iterations", "preconditioner_builds", "snes_failures"):
        stats[key] = int(sum(part.stats[key] for part in parts.values()))
    for key in ("wall_solve_s",):
        stats[key] = float(sum(part.stats[key] for part in parts.values()))
    stats["min_u_over_outputs"] = float(min(part.stats["min_u_over_outputs"] for part in parts.values()))
    stats["wall_setup_s"] = {k: float(sum(p.stats["wall_setup_s"].get(k, 0.0) for p in parts.values()))
                             for k in first.stats["wall_setup_s"]}  # fmt: skip
    stats["isotopes"] = {name: part.stats for name, part in parts.items()}
    result = Result(cfg, first.t, np.asarray(h), stats, isotopes={name: part.h for name, part in parts.items()})
    return result, problems
