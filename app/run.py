"""Command line.

    python -m app.run [--preset NAME ...] [--quick] [--set section.key=value ...] [--out DIR]
    python -m app.run --config FILE.toml [--set ...] [--out DIR]      (one case)
    python -m app.run --field-cuts [--set model.B0=...]                (look at D)
    python -m app.run --preset tau_vs_B0 [--ranks-per-case K] [--force]  (a sweep, resumable)
    python -m app.run --fit data.csv --vary KEY=LO:HI[:START] ... [--set ...] [--ranks-per-case K]

With no ``--config``, it runs the article's figures (presets ``fig1`` ... ``fig5`` and
``forms``; ``all`` is the default) and writes ``DIR/<fig>/`` plus ``DIR/summary.md``.
With ``--config`` (or ``--single``) it solves one case and writes
``DIR/<output.name>/overhauser.csv`` (t_s, h_over_h0) and ``run.json`` (resolved
configuration, package versions, ranks, time-stepper statistics and wall times).
A sweep preset (:mod:`app.studies.sweep`) solves its cases on groups of K ranks and writes
``DIR/<name>/sweep.csv``; a re-run solves only the cases not finished yet.
``--fit`` (:mod:`app.studies.fit`) fits the ``--vary`` keys to a measured h(t)/h(0), the
Jacobian's solves on groups of K ranks, and writes ``DIR/fit/`` (fit.csv, fit.png, run.json);
a re-run resumes from the evaluations already solved.
Bad input: one line on stderr naming the key, exit code 2, nothing written.
Run it under ``mpirun -n N`` for any N; files and progress come from rank 0 only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mpi4py import MPI
from petsc4py import PETSc  # noqa: F401  (initialised here, on every rank, collectively)

from app import config as app_config
from app.numerics import budget, petsc_options
from app.numerics.result import Result
from app.numerics.solve import solve
from app.render import plotting
from app.runtime import output
from app.runtime.failure import run_or_abort
from app.runtime.scheduler import check_group_size
from app.studies import catalogue, figures, report
from app.studies import fit as app_fit
from app.studies.figures import write_cuts
from app.studies.sweep import read_measured


class UsageError(Exception):
    """Bad command-line usage (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, exit code 2 via main()
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m app.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--preset", nargs="+", action="extend", metavar="NAME",
        help="figures to make: fig1 ... fig5, forms, all (default), or preset .toml files (repeatable)",
    )
    p.add_argument("--quick", action="store_true", help="reduced resolution for smoke tests (coarse mesh, few outputs)")
    p.add_argument("--single", action="store_true", help="solve one case from the configuration instead of the figures")
    p.add_argument(
        "--config", action="append", default=[], metavar="FILE.toml", help="TOML configuration (repeatable; later files win)"
    )
    p.add_argument(
        "--set", action="append", default=[], dest="overrides", metavar="SECTION.KEY=VALUE", help="override a value (repeatable)"
    )
    p.add_argument(
        "--ranks-per-case", type=int, default=1, metavar="K",
        help="sweeps: solve the cases concurrently on groups of K ranks (K divides the job's ranks; default 1)",
    )
    p.add_argument(
        "--measured", metavar="FILE.csv",
        help="sweeps: draw these measurements on the plot (CSV: header, then parameter, time in s[, label])",
    )
    p.add_argument("--force", action="store_true", help="sweeps: solve every case again, also those already finished")
    p.add_argument(
        "--fit", metavar="DATA.csv",
        help="fit the --vary keys to this measured decay (CSV: header, then t_s, h_over_h0[, sigma]); writes DIR/fit/",
    )
    p.add_argument(
        "--vary", action="append", default=[], metavar="KEY=LO:HI[:START]",
        help="--fit: a configuration key to fit between LO and HI (from START, default their geometric mean; repeatable)",
    )
    p.add_argument("--out", default="results", metavar="DIR", help="output directory (default: results)")
    p.add_argument(
        "--field-cuts",
        action="store_true",
        help="write the lattice D, D^rr and D^tt along the x axis and the diagonal (CSV, PNG) and exit",
    )
    return p


def say(comm, *args, **kwargs) -> None:
    if comm.rank == 0:
        print(*args, **kwargs, flush=True)


def prepare_output(directory: Path, comm) -> None:
    """Check on rank 0 that ``directory`` is writable and that no other run writes into it
    (this run then holds its lock); every rank raises the same error."""
    problem = None
    if comm.rank == 0:
        problem = output.check_writable(directory) or output.lock_output(directory)
    problem = comm.bcast(problem, root=0)
    if problem:
        raise app_config.ConfigError(problem)


def check_before_work(solves: list[tuple[app_config.Config, str | None, bool]], comm) -> None:
    """What validation of each configuration alone cannot see, checked before anything is
    meshed, allocated or written; ConfigError (the same on every rank) if anything is wrong.

    ``solves`` holds, for each configuration, the other form it is also solved with (a
    figure's compare_form) or None, and whether it is solved on a mesh. Checked: the size
    of a lattice, the PETSc options (by PETSc itself) and the cache directories the job
    will write (on rank 0: ``mesh.directory`` of a solve on a mesh, ``diffusion.cache`` of a
    solve with lattice rates).
    """
    for cfg, other_form, on_mesh in solves:
        if cfg.diffusion.form == "master" or on_mesh:  # size the lattice or the mesh before anything is allocated
            budget.check(cfg)
        petsc_options.check(cfg)
        if other_form:
            petsc_options.check(cfg, form=other_form)
    problem = None
    if comm.rank == 0:
        dirs = {}
        for cfg, _, on_mesh in solves:
            if on_mesh:
                dirs.setdefault(("mesh.directory", cfg.mesh.directory))
            if cfg.diffusion.source == "lattice" and cfg.diffusion.cache:
                dirs.setdefault(("diffusion.cache", cfg.diffusion.cache))
        problem = next(filter(None, (output.check_creatable(d, key) for key, d in dirs)), None)
    problem = comm.bcast(problem, root=0)
    if problem:
        raise app_config.ConfigError(problem)


def state_warnings(cfg: app_config.Config, stats: dict, estimate: dict | None = None) -> list[str]:
    """Lines about a non-physical or unresolved state, or a time error above the spatial one
    (the same on every rank)."""
    out = []
    if estimate and estimate["space"] is not None and estimate["time"] > estimate["space"]:
        out.append(f"the estimated time error {estimate['time']:.2g} exceeds the spatial error {estimate['space']:.2g} "
                   "(max |dh| over the outputs): lower solver.rtol and solver.atol")  # fmt: skip
    u0, umin = stats.get("u0_max", 1.0), stats.get("min_u_over_outputs", 0.0)
    if umin < -1e-3 * u0:
        out.append(f"u fell to {umin:.3g} (below -1e-3 of max u0 = {u0:.3g}): the mesh or the tolerances are too coarse")
    if cfg.diffusion.form != "master" and not cfg.pump.active and cfg.initial.r0 < 2 * cfg.mesh.h_min:
        out.append(f"initial.r0 = {cfg.initial.r0:g} nm is below 2 mesh.h_min = {2 * cfg.mesh.h_min:g} nm: "
                   "the initial state is not resolved")  # fmt: skip
    return out


def run_case(cfg: app_config.Config, out_dir: Path, comm=MPI.COMM_WORLD) -> dict:
    """Solve one configuration (:func:`app.solve`) and write its overhauser.csv and run.json;
    returns the summary (on every rank)."""
    result = solve(cfg, comm)
    summary = result.summary()  # every rank: the versions may initialise PETSc, a collective
    for line in state_warnings(cfg, result.stats, result.error_estimate):
        say(comm, f"warning: {line}")
    if comm.rank == 0:  # both files appear together, replacing the earlier pair
        write_case(result, summary, out_dir)
    comm.barrier()  # every rank returns once the files exist
    return summary


def write_case(result: Result, summary: dict, out_dir: Path) -> None:
    """``<out_dir>/<output.name>/`` with overhauser.csv and run.json, both or neither (rank 0)."""
    staging = output.staging_dir(out_dir, result.config.output.name)
    output.write_csv(staging / "overhauser.csv", result.columns())
    output.write_json(staging / "run.json", summary)
    if result.pump is not None:  # u at the end of the pump beside the Gaussian of its width
        cfg = result.config
        plotting.pump_profile(result.pump.profile, result.pump.record, staging / "pump_profile.png",
                              f"{cfg.output.name}: {result.geometry}", cfg.model.l0,
                              cfg.model.z0 if cfg.geometry.dim == 3 else None)  # fmt: skip
    output.publish(staging, out_dir / result.config.output.name)


def error_line(estimate: dict | None) -> str:
    """', error ~ 2e-05 (time), 5e-05 (space)' from run.json's estimate, or ''."""
    if not estimate:
        return ""
    space = f", {estimate['space']:.1g} (space)" if estimate["space"] is not None else ""
    return f", error ~ {estimate['time']:.1g} (time){space}"


def solving_on(summary: dict) -> str:
    """'2 ranks', or '1 of 2 ranks' for a problem solved on fewer ranks than the job has."""
    n, job = summary["ranks_solving"], summary["ranks"]
    if n == job:
        return f"{n} rank{'s' * (job > 1)}"
    return f"{n} of {job} ranks: {'small problem' if summary['fewer_ranks_because'] == 'small' else 'cores busy'}"


def write_field_cuts(cfg: app_config.Config, out_dir: Path, comm=MPI.COMM_WORLD) -> Path:
    """D along the x axis and the diagonal from the lattice (rank 0: a few hundred points)."""
    case_dir = out_dir / cfg.output.name
    if comm.rank == 0:
        m = cfg.model
        title = f"lattice D at B0 = {m.B0:g} T, s = {m.electron_sz:+g}"
        write_cuts(m, case_dir, "field_cuts", title, r_max=min(150.0, cfg.domain.radius))
    comm.barrier()  # every rank returns once the files exist
    return case_dir


def main(argv: list[str] | None = None, comm=MPI.COMM_WORLD) -> int:
    """The command line; exit code 0, or 2 for bad input. The output lock is held throughout."""
    try:
        return _main(argv, comm)
    finally:
        output.release_locks()


def _main(argv: list[str] | None, comm) -> int:
    try:
        args = parser().parse_args(argv)
        if args.fit is not None or args.vary:
            return _fit(args, comm)
        figures_mode = not (args.single or args.field_cuts or (args.config and not args.preset))
        if figures_mode:
            names = list(dict.fromkeys(args.preset or ["all"]))  # each figure once, in the order given
            if "all" in names:
                names = [n for n in names if n != "all"] + [n for n in catalogue.preset_names() if n not in names]
            presets = [catalogue.resolve(catalogue.load_preset(n), args.config, args.overrides, args.quick) for n in names]
            sweeps = [p for p in presets if p.spec.kind == "sweep"]
            if (args.ranks_per_case != 1 or args.force or args.measured) and not sweeps:
                raise UsageError("--ranks-per-case, --force and --measured are for sweeps; none of the presets given is one")
            measured = None
            if args.measured:
                measured = read_measured(args.measured)
            problem = check_group_size(comm, args.ranks_per_case)
            if problem:
                raise UsageError(problem)
            for s in sweeps:
                s.ranks_per_case, s.force, s.measured = args.ranks_per_case, args.force, measured
        else:
            if args.preset or args.quick:
                raise UsageError("--preset and --quick make figures; they do not combine with --single or --field-cuts")
            cfg = app_config.load(args.config, args.overrides)
        if figures_mode:  # field figures (1, 2) need no mesh; a decay's compare_form solves on one
            solves = [(c, pr.spec.compare_form, pr.spec.kind != "field" and (c.diffusion.form != "master"
                       or bool(pr.spec.compare_form))) for pr in presets for c in pr.configs]  # fmt: skip
        else:
            solves = [(cfg, None, not args.field_cuts and cfg.diffusion.form != "master")]
        check_before_work(solves, comm)
        out_dir = Path(args.out)
        prepare_output(out_dir, comm)
    except (UsageError, app_config.ConfigError) as exc:
        if comm.rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    if figures_mode:
        t0 = time.perf_counter()
        versions = output.versions()  # every rank: it may initialise PETSc, a collective
        infos = []
        for p in presets:  # the summary follows each figure as it lands, so it always matches the files
            infos.append(figures.run_preset(p, out_dir, comm, args.quick))
            if comm.rank == 0:
                report.write_summary(out_dir, infos[-1:], versions)
        comm.barrier()  # every rank returns once the files exist
        wall = time.perf_counter() - t0
        say(comm, f"{len(infos)} figure(s) in {wall:.1f} s on {comm.size} rank(s) -> {out_dir / 'summary.md'}")
        return 0
    if args.field_cuts:
        case_dir = write_field_cuts(cfg, out_dir, comm)
        say(comm, f"field cuts -> {case_dir / 'field_cuts.csv'}, {case_dir / 'field_cuts.png'}")
        return 0
    summary = run_case(cfg, out_dir, comm)
    d, s = summary["decay"], summary["solver"]
    pumped = ""
    if "pump" in summary:
        p = summary["pump"]
        pumped = (f" after a {p['t_pump_s']:g} s pump (gamma0 = {p['gamma0_per_s']:g} 1/s: h/h_sat = "
                  f"{p['h_over_hsat_reached']:.3g}, width {p['width_nm']:.3g} nm), counted from its end")  # fmt: skip
    say(
        comm,
        f"{cfg.output.name}: t_1/2 = {d['t_half_s']:.4g} s, t_1/e = {d['t_1e_s']:.4g} s{pumped} "
        f"({s['steps_accepted']} steps, {s['dofs']} dofs, {solving_on(summary)}, "
        f"{summary['wall_total_s']:.1f} s){error_line(summary['error_estimate'])} -> {out_dir / cfg.output.name}",
    )
    return 0


def _fit(args, comm) -> int:
    """``--fit``: check everything before any work (exit 2 on bad input), fit, write DIR/fit/."""
    try:
        if args.fit is None:
            raise UsageError("--vary is for --fit DATA.csv")
        if args.preset or args.quick or args.single or args.field_cuts or args.measured or args.force:
            raise UsageError("--fit does not combine with --preset, --quick, --single, --field-cuts, --measured or --force")
        problem = app_fit.prepare(args.fit, args.vary, args.config, args.overrides)
        group_problem = check_group_size(comm, args.ranks_per_case)
        if group_problem:
            raise UsageError(group_problem)
        corners = problem.corners()
        other = "paper" if app_fit.paper_config(corners[0])[0] is not None else None
        check_before_work([(c, other, c.diffusion.form != "master" or bool(other)) for c in corners], comm)
        out_dir = Path(args.out)
        prepare_output(out_dir, comm)
    except (UsageError, app_config.ConfigError) as exc:
        if comm.rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    result = app_fit.run(problem, comm, args.ranks_per_case, cache=out_dir / app_fit.NAME / "evals")
    versions = output.versions()  # every rank: it may initialise PETSc, a collective
    if comm.rank == 0:
        app_fit.write(result, out_dir, versions)
    comm.barrier()  # every rank returns once the files exist
    say(comm, app_fit.report_line(result, out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(run_or_abort(main))
