"""Fitting the model to a measured decay (app/studies/fit.py, ``--fit``, ``app.fit``): known
parameters fitted back from data the product made, the number of solves, resuming, the
correlation warning for a degenerate pair, the Jacobian's solves on groups of ranks, and bad
input (one line, exit 2, nothing written). Tiny cases: constant D on a coarse mesh (a solve
is ~0.05 s), where h/h0 = s / (s + 4 D t), s = l0^2 + r0^2 (MODEL.md 5) on the infinite plane."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import app
from app import config as app_config
from app import run as app_run
from app.physics.observables import exact_constant_d
from app.runtime.output import read_csv
from app.studies import fit as app_fit

COMM = MPI.COMM_WORLD
TIMES = np.geomspace(0.1, 1000.0, 15)


def base(mesh_dir: Path) -> list[str]:
    return ["diffusion.source='constant'", "mesh.h_min=6", "mesh.h_max=40", f"mesh.directory='{mesh_dir}'",
            "solver.outputs_per_decade=4"]  # fmt: skip


def product_data(mesh_dir: Path, *extra: str) -> tuple[np.ndarray, np.ndarray]:
    """h/h0 at TIMES made by the product itself (collective)."""
    cfg = app.load([], [*base(mesh_dir), "output.progress=false", *extra])
    return TIMES, app.solve(cfg, times=np.r_[0.0, TIMES], error_estimate=False).h[1:]


def write_data(path: Path, text: str) -> Path:
    if COMM.rank == 0:
        path.write_text(text)
    COMM.barrier()
    return path


# --- fitting back -----------------------------------------------------------------------------


def test_a_constant_d_is_fitted_back_from_the_products_data_and_near_the_closed_form(mesh_dir):
    fitted = app.fit(product_data(mesh_dir, "diffusion.constant=7.0"), {"diffusion.constant": (1.0, 30.0)}, base(mesh_dir))
    assert isinstance(fitted, app.FitResult) and fitted.keys == ["diffusion.constant"]
    assert fitted.parameters["diffusion.constant"]["value"] == pytest.approx(7.0, rel=1e-4)
    assert fitted.residual_rms < 1e-5
    p = len(fitted.keys)
    assert fitted.solves <= (fitted.iterations + 1) * (p + 1)
    # the closed form's data (the infinite plane, exact in space and time): D within 0.5 %
    closed = exact_constant_d(TIMES, 7.0, 30.0, 30.0)
    near = app.fit((TIMES, closed), {"diffusion.constant": (1.0, 30.0)}, base(mesh_dir))
    assert near.values[0] == pytest.approx(7.0, rel=5e-3)
    # the same on every rank
    assert COMM.allgather(float(fitted.values[0])) == [float(fitted.values[0])] * COMM.size


def test_a_degenerate_pair_is_fitted_back_warned_about_and_resumes_without_a_solve(shared_tmp, mesh_dir):
    """D and r0 enter the infinite plane's decay only as D / (l0^2 + r0^2): only the disk's rim
    tells them apart. The noiseless data still give them back, with a warning."""
    data = product_data(mesh_dir, "diffusion.constant=7.0", "initial.r0=22.0")
    vary = {"diffusion.constant": (1.0, 30.0), "initial.r0": (8.0, 60.0)}
    first = app.fit(data, vary, base(mesh_dir), out=shared_tmp)
    assert first.values == pytest.approx([7.0, 22.0], rel=1e-3)
    assert abs(first.correlation[0, 1]) > 0.95
    assert len(first.warnings) == 1 and first.warnings[0].startswith("diffusion.constant and initial.r0 are correlated")
    assert first.solves <= (first.iterations + 1) * (2 + 1)
    assert first.solved_now == first.solves + 1  # and the paper form's, for the plot
    again = app.fit(data, vary, base(mesh_dir), out=shared_tmp)
    assert again.solved_now == 0 and again.solves == first.solves
    assert again.values.tolist() == first.values.tolist() and again.sigmas.tolist() == first.sigmas.tolist()
    record = json.loads((shared_tmp / "fit" / "run.json").read_text())["fit"]
    assert set(record["parameters"]) == set(vary) and record["solves"] == first.solves
    assert record["warnings"] == first.warnings
    assert record["correlation"]["initial.r0"]["diffusion.constant"] == pytest.approx(first.correlation[1, 0])


def test_the_start_is_the_geometric_mean_or_start_never_a_bound():
    assert app_fit.parse_vary("model.l0=10:40").start == pytest.approx(20.0)
    assert app_fit.parse_vary("model.l0=10:40:15").start == 15.0
    assert app_fit.parse_vary("model.g_e=-2:1").start == -0.5  # a range that is not positive: its middle
    lin = app_fit.parse_vary("model.g_e=-2:1")
    assert not lin.log and lin.from_z(lin.to_z(0.25)) == pytest.approx(0.25)


def test_uncertainties_follow_the_residuals_and_the_log_space():
    """s^2 (J^T J)^-1 in log space, mapped by v: a known linear model."""
    problem = app_fit.Problem(app_fit.Data(np.arange(1.0, 5.0), np.zeros(4)), [app_fit.parameter("model.l0", 1, 100)], {})
    jac = np.array([[1.0], [1.0], [1.0], [1.0]])
    residual = np.array([1.0, -1.0, 1.0, -1.0])
    cov, sig, corr = app_fit.uncertainties(problem, np.array([np.log(10.0)]), jac, residual)
    s2 = 4.0 / (4 - 1)
    assert sig[0] == pytest.approx(10.0 * np.sqrt(s2 / 4.0)) and corr[0, 0] == pytest.approx(1.0)


# --- the Jacobian's solves on groups of ranks --------------------------------------------------


@pytest.mark.parallel
def test_the_solves_of_a_jacobian_run_on_every_group(mesh_dir):
    times = np.r_[0.0, TIMES]
    ev = app_fit.Evaluator(COMM, 1, times)
    cfgs = [app.load([], [*base(mesh_dir), f"diffusion.constant={d}"]) for d in (5.0, 6.0)]
    hs = ev.evaluate(cfgs)
    assert COMM.allgather(ev.solved_here) == [1, 1]  # one solve on each group of one rank
    for cfg, h in zip(cfgs, hs, strict=True):
        alone = app.solve(cfg, MPI.COMM_SELF, times=times, error_estimate=False).h
        assert h == pytest.approx(alone, rel=1e-8)
    assert ev.evaluate(cfgs)[0] is hs[0] and ev.solved_now == 2  # a second time: the cache


# --- the command line -------------------------------------------------------------------------


def cli(data: Path, out: Path, mesh_dir: Path, *vary: str) -> list[str]:
    args = ["--fit", str(data), "--out", str(out)]
    for v in vary:
        args += ["--vary", v]
    for s in base(mesh_dir):
        args += ["--set", s]
    return args


@pytest.mark.serial
def test_the_command_line_writes_the_fit_and_resumes(tmp_path, mesh_dir, capsys):
    t, h = product_data(mesh_dir, "diffusion.constant=7.0")
    rng = np.random.default_rng(1)
    sigma = np.full_like(h, 2e-3)
    rows = "\n".join(f"{float(a)!r},{float(b)!r},{float(c)!r}" for a, b, c in zip(t, h + sigma * rng.standard_normal(t.size), sigma, strict=True))
    data = write_data(tmp_path / "data.csv", f"t_s,h_over_h0,sigma\n0,1,0.001\n{rows}\n")
    out = tmp_path / "out"
    assert app_run.main(cli(data, out, mesh_dir, "diffusion.constant=1:30")) == 0
    lines = capsys.readouterr()
    assert lines.out.strip().splitlines()[-1].startswith("fit: diffusion.constant = ")
    assert sorted(p.name for p in (out / "fit").iterdir()) == ["evals", "fit.csv", "fit.png", "run.json"]
    table = read_csv(out / "fit" / "fit.csv")
    assert list(table) == ["t_s", "h_over_h0", "h_fit", "sigma", "h_paper"] and table["t_s"].size == 16
    assert table["h_fit"][0] == 1.0
    record = json.loads((out / "fit" / "run.json").read_text())
    fitted = record["fit"]["parameters"]["diffusion.constant"]
    assert abs(fitted["value"] - 7.0) < 3 * fitted["sigma"] and 0 < fitted["sigma"] < 0.1
    assert record["fit"]["weighted"] and record["fit"]["chi2_reduced"] < 3
    assert record["fit"]["solves"] <= record["fit"]["solve_bound"]
    assert record["config"]["diffusion"]["constant"] == fitted["value"]
    assert app_run.main(cli(data, out, mesh_dir, "diffusion.constant=1:30")) == 0
    assert json.loads((out / "fit" / "run.json").read_text())["fit"]["solved_now"] == 0
    assert "(0 new)" in capsys.readouterr().out


GOOD = "t_s,h_over_h0\n0.1,0.99\n1,0.9\n10,0.6\n100,0.3\n"
BAD_FILES = [
    ("0.1,0.99\n1,0.9\n", "line 1: expected a header naming the columns t_s and h_over_h0 (and optionally sigma), "
                          "got '0.1,0.99'"),
    ("time,h\n0.1,0.99\n", "line 1: expected a header naming the columns t_s and h_over_h0 (and optionally sigma), "
                           "got 'time,h'"),
    ("t_s,h_over_h0\n0.1,0.99\n1,abc\n", "line 3: expected numbers, got '1,abc'"),
    ("t_s,h_over_h0\n0.1,0.99\n1,nan\n", "line 3: expected finite numbers, got '1,nan'"),
    ("t_s,h_over_h0\n0.1,0.99\n1\n", "line 3: expected 2 values (t_s,h_over_h0), got '1'"),
    ("t_s,h_over_h0\n0.1,0.99\n10,0.6\n1,0.9\n", "line 4: expected t_s increasing, got 1 after 10"),
    ("t_s,h_over_h0\n0.1,0.99\n0.1,0.98\n", "line 3: expected t_s increasing, got 0.1 after 0.1"),
    ("t_s,h_over_h0\n-1,1\n0.1,0.99\n", "line 2: expected t_s >= 0, got -1"),
    ("t_s,h_over_h0,sigma\n0.1,0.99,0.01\n1,0.9,0\n", "line 3: expected sigma > 0, got 0"),
    ("t_s,h_over_h0\n0,1\n0.1,0.99\n1,0.9\n", "expected more data points after t = 0 than the 2 fitted parameter(s), got 2"),
    ("", "expected a header line naming t_s and h_over_h0, got an empty file"),
]  # fmt: skip


@pytest.mark.serial
@pytest.mark.parametrize(("text", "why"), BAD_FILES, ids=[w[:40] for _, w in BAD_FILES])
def test_a_bad_data_file_is_one_line_and_nothing_written(tmp_path, capsys, mesh_dir, text, why):
    data = tmp_path / "d.csv"
    data.write_text(text)
    out = tmp_path / "out"
    assert app_run.main(cli(data, out, mesh_dir, "diffusion.constant=1:30", "initial.r0=8:60")) == 2
    assert capsys.readouterr().err == f"error: --fit: {data}: {why}\n"
    assert not out.exists()


BAD_ARGS = [
    (["--vary", "diffusion.constant=30:1"], "--vary diffusion.constant: expected LO < HI, got 30:1"),
    (["--vary", "diffusion.constant=1:30:30"],
     "--vary diffusion.constant: expected START inside (1, 30), not on or beyond a bound, got 30"),
    (["--vary", "diffusion.constant=1:x"], "--vary diffusion.constant: expected numbers LO:HI[:START], got '1:x'"),
    (["--vary", "diffusion.constant"], "--vary: expected KEY=LO:HI[:START], got 'diffusion.constant'"),
    (["--vary", "model.nosuch=1:2"], "model.nosuch: unknown key 'nosuch' in [model]"),
    (["--vary", "mesh.degree=1:3"], "--vary mesh.degree: expected a key with a real number as its value, got an integer"),
    (["--vary", "diffusion.form=1:3"], "--vary diffusion.form: expected a key with a real number as its value, got 'tensor'"),
    (["--vary", "initial.r0=10:400"], "--vary initial.r0=400: initial.r0: expected less than domain.radius = 300.0, "
                                      "got 400.0"),
    (["--vary", "diffusion.constant=1:30", "--vary", "diffusion.constant=2:20"],
     "--vary diffusion.constant: expected each key once, got it twice"),
    ([], "--vary: expected at least one parameter to fit (KEY=LO:HI[:START]), got none"),
    (["--vary", "diffusion.constant=1:30", "--single"],
     "--fit does not combine with --preset, --quick, --single, --field-cuts, --measured or --force"),
    (["--vary", "diffusion.constant=1:30", "--ranks-per-case", "2"],
     "--ranks-per-case: expected a divisor of the 1 rank(s) of the job, got 2"),
]  # fmt: skip


@pytest.mark.serial
@pytest.mark.parametrize(("args", "message"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_fit_arguments_are_one_line_and_nothing_written(tmp_path, capsys, mesh_dir, args, message):
    data = tmp_path / "d.csv"
    data.write_text(GOOD)
    out = tmp_path / "out"
    argv = ["--fit", str(data), "--out", str(out), *[x for s in base(mesh_dir) for x in ("--set", s)], *args]
    assert app_run.main(argv) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not out.exists()


@pytest.mark.serial
def test_fit_file_errors_without_the_file(tmp_path, capsys):
    out = tmp_path / "out"
    assert app_run.main(["--fit", str(tmp_path / "none.csv"), "--vary", "model.l0=10:60", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: --fit: expected a CSV file of t_s, h_over_h0[, sigma], got "
                                       f"'{tmp_path / 'none.csv'}' (no such file)\n")  # fmt: skip
    assert app_run.main(["--vary", "model.l0=10:60", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: --vary is for --fit DATA.csv\n"
    assert not out.exists()


def test_the_api_takes_the_same_inputs_and_raises_config_errors(mesh_dir):
    assert "fit" in app.__all__ and "FitResult" in app.__all__
    with pytest.raises(app.ConfigError, match=r"^data: point 2: expected t_s increasing, got 0.5 after 1$"):
        app.fit(([1.0, 0.5, 2.0], [0.9, 0.8, 0.7]), {"model.l0": (10, 60)})
    with pytest.raises(app.ConfigError, match=r"^--vary model.l0: expected \(lo, hi\) or \(lo, hi, start\), got 10$"):
        app.fit({"t_s": [1.0, 2.0], "h_over_h0": [0.9, 0.8]}, {"model.l0": 10})
    cfg = app_config.load([], base(mesh_dir))
    problem = app_fit.prepare((TIMES, np.ones_like(TIMES)), ["diffusion.constant=1:30"], base=cfg.model_dump(exclude_unset=True))
    assert problem.config_at([4.0]).diffusion.constant == 4.0 and problem.config_at([4.0]).mesh.h_max == 40
    assert problem.times[0] == 0 and problem.times[problem.index].tolist() == TIMES.tolist()
