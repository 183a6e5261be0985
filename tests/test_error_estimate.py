"""The time and space error estimates of run.json (app/numerics/error_estimate.py) against the errors
measured with tight references, and their place in run.json and the warnings.

Solver settings: constant D, tensor form, a coarse disk (h_min 4, h_max 40 nm), 0 to 300 s;
the time reference at rtol 1e-8, atol 1e-10 on the same mesh, the space reference on a mesh
4x finer at the same tight tolerances."""

from __future__ import annotations

import json

import pytest
from mpi4py import MPI

from app import run as app_run
from app.config import build
from app.numerics import error_estimate
from app.numerics.discretisation import make_problem

COMM = MPI.COMM_WORLD


def case(mesh_dir, rtol=1e-4, atol=1e-6, refine=1.0):
    return build(mesh={"directory": str(mesh_dir), "h_min": 4.0 / refine, "h_max": 40.0 / refine},
                 solver={"t_end": 300.0, "rtol": rtol, "atol": atol}, output={"progress": False})  # fmt: skip


def h_of(cfg):
    return make_problem(cfg, COMM).setup().solve().h


@pytest.fixture(scope="module")
def references(mesh_dir):
    return h_of(case(mesh_dir, 1e-8, 1e-10)), h_of(case(mesh_dir, 1e-8, 1e-10, refine=4.0))


@pytest.mark.parametrize("rtol", [1e-3, 1e-4])
def test_the_estimates_are_within_a_factor_3_of_the_measured_errors(mesh_dir, references, rtol):
    cfg = case(mesh_dir, rtol, atol=rtol / 100)
    h = h_of(cfg)
    est = error_estimate.estimate(cfg, h, COMM)
    h_time_ref, h_fine = references
    time_error = error_estimate.max_difference(h, h_time_ref)
    space_error = error_estimate.max_difference(h_time_ref, h_fine)
    assert time_error / 3 <= est["time"] <= 3 * time_error, (est, time_error)
    assert space_error / 3 <= est["space"] <= 3 * space_error, (est, space_error)


def test_a_lattice_has_no_spatial_estimate():
    cfg = build(model={"z0": 2.0, "l0": 1.5, "B0": 0.2}, initial={"r0": 1.5}, domain={"radius": 2.5},
                diffusion={"form": "master", "source": "lattice", "cache": ""},
                solver={"t_end": 10.0, "outputs_per_decade": 1}, output={"progress": False})  # fmt: skip
    est = error_estimate.estimate(cfg, h_of(cfg), COMM)
    assert est["space"] is None and est["time"] >= 0


@pytest.mark.serial
def test_run_json_holds_the_estimates_and_a_loose_tolerance_is_warned_of(tmp_path, capsys):
    args = ["--single", "--set", f"mesh.directory='{tmp_path / 'm'}'", "--set", "mesh.h_min=4", "--set", "mesh.h_max=40",
            "--set", "solver.t_end=300", "--set", "output.progress=false", "--out", str(tmp_path / "o")]  # fmt: skip
    assert app_run.main([*args, "--set", "solver.rtol=1e-2", "--set", "solver.atol=1e-4"]) == 0
    captured = capsys.readouterr()
    est = json.loads((tmp_path / "o" / "run" / "run.json").read_text())["error_estimate"]
    assert est["time"] > est["space"] > 0
    assert f"warning: the estimated time error {est['time']:.2g} exceeds the spatial error {est['space']:.2g}" in captured.out
    assert f"error ~ {est['time']:.1g} (time), {est['space']:.1g} (space) ->" in captured.out
    assert app_run.main([*args, "--set", "solver.error_estimate=false"]) == 0
    assert json.loads((tmp_path / "o" / "run" / "run.json").read_text())["error_estimate"] is None
    assert "error ~" not in capsys.readouterr().out
