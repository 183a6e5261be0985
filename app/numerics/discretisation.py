"""The choice of discretisation, made once: the lattice master equation
(``diffusion.form = 'master'``) or the finite elements (every other form); and for the real
crystal (``model.crystal = 'GaAs'``, MODEL.md 11) one problem per isotope, whose
polarisations evolve independently and add up to h (either discretisation: the lattice's
systems live on each isotope's sublattice). With a pump phase (``[pump]``, MODEL.md 12) each
problem is pumped from u = 0 first and then decays from the state the pump left."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from app.config import Config
from app.numerics.fem import DiffusionProblem
from app.numerics.master import MasterProblem
from app.numerics.problem import Problem
from app.numerics.result import PumpPhase, Result
from app.physics import crystal
from app.physics import pump as pump_physics


def make_problem(
    cfg: Config, comm: MPI.Comm | None = None, isotope: str | None = None, like: Problem | None = None
) -> Problem:
    """The problem that solves ``cfg`` on ``comm`` (default MPI.COMM_WORLD), not yet set up; for
    the real crystal, that of one ``isotope`` (:func:`isotopes_of`); on the mesh of the
    finite-element problem ``like`` when given."""
    comm = comm or MPI.COMM_WORLD
    if cfg.diffusion.form == "master":
        return MasterProblem(cfg, comm, isotope=isotope)
    return DiffusionProblem(cfg, comm, isotope=isotope, like=like)


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
    cfg: Config,
    comm: MPI.Comm,
    *,
    progress: bool | None = None,
    desc: str = "solve",
    on_output: Callable | None = None,
    times=None,
) -> tuple[Result, list[Problem]]:
    """``cfg`` set up and solved on ``comm`` (collective): the Result and the problem(s) solved,
    at the output ``times`` (default ``solver.output_times()``).

    The real crystal: one problem per isotope (one after another), h = sum_alpha w_alpha
    h_alpha / h_alpha(0) (:func:`weights`), each isotope's h in ``Result.isotopes`` and its
    statistics in ``stats['isotopes']``. ``on_output`` is passed to a single problem only.
    With a pump phase: :func:`solve_pumped`.
    """
    if cfg.pump.active:
        return solve_pumped(cfg, comm, progress=progress, desc=desc, on_output=on_output)
    isotopes = isotopes_of(cfg)
    if not isotopes:
        problem = make_problem(cfg, comm).setup()
        result = problem.solve(times=times, progress=progress, desc=desc, on_output=on_output)
        share = weights(cfg)
        if share:  # the real crystal with a constant D: every isotope decays alike
            result.isotopes = {name: result.h.copy() for name in share}
        return result, [problem]
    problems, parts = [], {}
    for iso in isotopes:
        problem = make_problem(cfg, comm, isotope=iso.name).setup()
        parts[iso.name] = problem.solve(times=times, progress=progress, desc=f"{desc} {iso.name}")
        if isinstance(problem, MasterProblem):  # one isotope's operator at a time (master.estimate)
            problem.release()
        problems.append(problem)
    share = weights(cfg)
    first = next(iter(parts.values()))
    h = sum(share[name] * part.h for name, part in parts.items())
    result = Result(cfg, first.t, np.asarray(h), combined_stats(parts), isotopes={name: part.h for name, part in parts.items()})
    return result, problems


def combined_stats(parts: dict[str, Result]) -> dict:
    """The statistics of the isotopes' solves together: the first's, with the steps, linear
    iterations and wall times summed, the smallest u, and each isotope's in ``isotopes``."""
    first = next(iter(parts.values()))
    stats = dict(first.stats)
    for key in ("steps_accepted", "steps_rejected", "linear_iterations", "preconditioner_builds", "snes_failures"):
        stats[key] = int(sum(part.stats[key] for part in parts.values()))
    for key in ("wall_solve_s",):
        stats[key] = float(sum(part.stats[key] for part in parts.values()))
    stats["min_u_over_outputs"] = float(min(part.stats["min_u_over_outputs"] for part in parts.values()))
    stats["wall_setup_s"] = {k: float(sum(p.stats["wall_setup_s"].get(k, 0.0) for p in parts.values()))
                             for k in first.stats["wall_setup_s"]}  # fmt: skip
    stats["isotopes"] = {name: part.stats for name, part in parts.items()}
    return stats


#: how ``run.json`` says what the pumped profile's width is
WIDTH_METHOD = ("second moment: width_nm = sqrt(<x^2 + y^2>) of u at the end of the pump (the integral of "
                "(x^2 + y^2) u over that of u), the r0 of the Gaussian exp(-r^2 / r0^2) with the same moment")  # fmt: skip


def solve_pumped(
    cfg: Config, comm: MPI.Comm, *, progress: bool | None = None, desc: str = "solve", on_output: Callable | None = None
) -> tuple[Result, list[Problem]]:
    """The pump phase and then the decay (MODEL.md 12), for each isotope of the crystal (each
    pumps at its own rate, so the real crystal's isotopes are solved one by one also with a
    constant D). The pump's D is that of the pump's electron state (:meth:`Config.pump_config`:
    a second problem on the same mesh when it differs from the decay's).

    h(t) = sum_alpha x_alpha A^alpha (w . u_alpha), reported as h / h_sat (h_sat: every nucleus
    at P_inf) and as h / h(t_pump); the Result's ``t`` and ``h`` are the decay's, its ``pump``
    the pump's (:class:`app.numerics.result.PumpPhase`).
    """
    pump_cfg = cfg.pump_config()
    names = [iso.name for iso in crystal.isotopes(cfg.model)] if cfg.model.crystal != "article" else [None]
    share = weights(cfg) or {None: 1.0}
    runs, parts, sat, profiles, problems = {}, {}, {}, {}, []
    for name in names:
        label = f" {name}" if name else ""
        decay = make_problem(cfg, comm, isotope=name).setup()
        pumper = decay if pump_cfg is cfg else make_problem(pump_cfg, comm, isotope=name, like=decay).setup()
        run = pumper.pump(progress=progress, desc=f"{desc} pump{label}")
        profiles[name] = pumper.profile()
        sat[name] = pumper.saturation()  # h_alpha with every nucleus at P_inf
        if pumper is not decay:
            decay.set_state(pumper.state)
            del pumper
        decay.restart()  # the decay's stepper from the pumped state
        h_end = float(run.h_raw[-1])
        parts[name] = decay.solve(progress=progress, desc=f"{desc}{label}", h_ref=h_end,
                                  on_output=on_output if len(names) == 1 else None)  # fmt: skip
        runs[name] = run
        problems.append(decay)
    first = next(iter(parts.values()))
    # each isotope's h / h_sat, and the crystal's: sum_alpha share_alpha (h_alpha / h_alpha,sat)
    pumped = {n: runs[n].h_raw / sat[n] for n in names}
    decayed = {n: parts[n].h * runs[n].h_raw[-1] / sat[n] for n in names}
    f_pump = sum(share[n] * pumped[n] for n in names)
    f_decay = sum(share[n] * decayed[n] for n in names)
    f_end = float(f_pump[-1])
    stats = combined_stats(parts) if names != [None] else dict(first.stats)
    stats["pump"] = runs[None].stats if names == [None] else {n: runs[n].stats for n in names}
    record = pump_record(cfg, share, pumped, profiles, f_end)
    phase = PumpPhase(
        t=np.asarray(runs[names[0]].times), h=f_pump / f_end, h_over_hsat=f_pump, h_over_hsat_decay=f_decay,
        record=record, isotopes=None if names == [None] else {n: runs[n].h_raw / runs[n].h_raw[-1] for n in names},
        profile=profiles,
    )  # fmt: skip
    isotopes = None
    if names != [None]:
        isotopes = {n: parts[n].h for n in names}
    result = Result(cfg, first.t, np.asarray(f_decay / f_end), stats, isotopes=isotopes, pump=phase)
    return result, problems


def pump_record(cfg: Config, share: dict, pumped: dict, profiles: dict, reached: float) -> dict:
    """``run.json``'s ``pump``: the parameters (gamma0 with every result: a free parameter), the
    polarisation reached (h / h_sat at the end of the pump), u at the centre and the profile's
    width (:data:`WIDTH_METHOD`) of the polarisation as h sees it (sum_alpha share_alpha u_alpha)."""
    p = cfg.pump
    total = sum(share[n] * profiles[n]["total"] for n in profiles)
    r2 = sum(share[n] * profiles[n]["r2"] for n in profiles)
    record = {
        "gamma0_per_s": p.gamma0,
        "gamma0_is": "a free parameter (MODEL.md 12): the pump rate at the dot centre, the fastest in the dot",
        "t_pump_s": p.t_pump,
        "p_inf": p.p_inf,
        "electron_sz": cfg.pump_electron_sz,
        "electron_sz_decay": cfg.model.electron_sz,
        "h_over_hsat_reached": reached,
        "u_centre": float(sum(share[n] * profiles[n]["u_centre"] for n in profiles)),
        "width_nm": pump_physics.second_moment_width(r2, total),
        "width_method": WIDTH_METHOD,
    }
    if list(profiles) != [None]:
        record["isotopes"] = {
            n: {"rate_scale": pump_physics.rate_scale(cfg.model, n), "h_over_hsat_reached": float(pumped[n][-1]),
                "u_centre": profiles[n]["u_centre"],
                "width_nm": pump_physics.second_moment_width(profiles[n]["r2"], profiles[n]["total"])}
            for n in profiles
        }  # fmt: skip
    return record
