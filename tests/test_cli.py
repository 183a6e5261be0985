"""Command line and configuration: bad input gives one line, exit code 2, nothing written."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jobs
import numpy as np
import pytest

from app import config as app_config
from app import run as app_run
from app.runtime.output import read_csv

pytestmark = pytest.mark.serial
ROOT = Path(__file__).resolve().parents[1]

MASTER = ["--set", "diffusion.form=master", "--set", "diffusion.source=lattice"]

BAD = [
    (["--set", "model.foo=1"], "error: model.foo: unknown key 'foo' in [model]"),
    (["--set", "nosuch.key=1"], "error: nosuch: unknown section [nosuch]"),
    (["--set", "domain.radius=-5"], "error: domain.radius: expected greater than 0, got -5"),
    (["--set", "mesh.h_min=-1"], "error: mesh.h_min: expected greater than 0, got -1"),
    (["--set", "initial.r0=300"], "error: initial.r0: expected less than domain.radius = 300.0, got 300.0"),
    (["--set", "mesh.h_min=30"], "error: mesh.h_min: expected at most mesh.h_max = 20.0, got 30.0"),
    (["--set", "model.B0=abc"], "error: model.B0: expected a number, got 'abc'"),
    (["--set", "solver.t_end=[1, 2]"], "error: solver.t_end: expected a number, got [1, 2]"),
    (
        ["--set", "diffusion.form=weird"],
        "error: diffusion.form: expected 'paper', 'conservative', 'tensor' or 'master', got 'weird'",
    ),
    (
        ["--set", "model.B0=0"],
        "error: model.B0: expected a non-zero field when electron_sz != 0 "
        "(omega_e = g_e mu_B B0 / hbar must not vanish), got 0.0",
    ),
    (["--set", "B0=2"], "error: --set: expected section.key=value, got 'B0=2'"),
    (["--config", "/nonexistent/x.toml"], "error: --config: expected an existing TOML file, got '/nonexistent/x.toml'"),
    (["--bogus"], "error: unrecognized arguments: --bogus"),
    (
        ["--set", "solver.petsc_options.ts_max_time=5"],
        "error: solver.petsc_options.ts_max_time: expected solver.t_end instead (the product sets it), got 5",
    ),
    # non-finite numbers and booleans where numbers belong
    (["--set", "solver.t_end=inf"], "error: solver.t_end: expected a finite number, got inf"),
    (["--set", "solver.atol=inf"], "error: solver.atol: expected a finite number, got inf"),
    (["--set", "diffusion.constant=inf"], "error: diffusion.constant: expected a finite number, got inf"),
    (["--set", "domain.radius=inf"], "error: domain.radius: expected a finite number, got inf"),
    (["--set", "model.g_e=nan"], "error: model.g_e: expected a finite number, got nan"),
    (["--set", "model.g_e=-inf"], "error: model.g_e: expected a finite number, got -inf"),
    (["--set", "model.B0=inf"], "error: model.B0: expected a finite number, got inf"),
    (["--set", "solver.t_end=true"], "error: solver.t_end: expected a number, got True"),
    (["--set", "mesh.degree=true"], "error: mesh.degree: expected an integer, got True"),
    (["--set", "mesh.mass=lumped", "--set", "mesh.degree=2"],
     "error: mesh.mass: expected 'consistent' with mesh.degree > 1 (vertex lumping is for degree 1), got 'lumped'"),
    (["--set", "mesh.mass=diagonal"], "error: mesh.mass: expected 'consistent' or 'lumped', got 'diagonal'"),
    (["--set", "diffusion.zz=bond"], "error: diffusion.zz: expected 'planes' or 'point', got 'bond'"),
    (["--set", "domain.geometry=slab", "--set", "domain.barrier=inf", *MASTER],
     "error: domain.barrier: expected a finite number, got inf"),
    (["--set", "model.g_e=0"],
     "error: model.g_e: expected a non-zero g factor when electron_sz != 0 "
     "(omega_e = g_e mu_B B0 / hbar must not vanish), got 0.0"),
    # the run's directory is a sub-directory of --out, never --out itself or above it
    (["--set", "output.name=."], "error: output.name: expected a sub-directory name not starting with '.', got '.'"),
    (["--set", "output.name=.."], "error: output.name: expected a sub-directory name not starting with '.', got '..'"),
    (["--set", "output.name=.staging-run"],
     "error: output.name: expected a sub-directory name not starting with '.', got '.staging-run'"),
    # runaway sizes, refused before anything is meshed or allocated
    (["--set", "mesh.h_min=1e-6"],
     "error: mesh: expected at most 2e+06 cells (solver.max_memory_gb = 8), got about 2.61e+16 "
     "(domain.radius = 300, mesh.h_min = 1e-06, mesh.h_max = 20)"),
    (["--set", "domain.radius=1e9"],
     "error: mesh: expected at most 2e+06 cells (solver.max_memory_gb = 8), got about 1.81e+16 "
     "(domain.radius = 1e+09, mesh.h_min = 2, mesh.h_max = 20)"),
    (["--set", "solver.outputs_per_decade=1000000000"],
     "error: solver.outputs_per_decade: expected at most 100000 output times in all (6 decades), got 1000000000"),
    (["--set", "model.r_c=1000", "--set", "diffusion.source=lattice"],
     "error: model.r_c: expected a stencil within solver.max_memory_gb = 8 (r_c = 1000 and r_g = 4 need "
     "2.71e+08 GB), got 1000.0"),
    # the lattice master equation and its geometries
    (
        ["--set", "diffusion.form=master"],
        "error: diffusion.source: expected 'lattice' with diffusion.form = 'master' "
        "(the master equation needs the lattice rates), got 'constant'",
    ),
    (
        ["--set", "domain.barrier=5"],
        "error: domain.barrier: expected no value unless domain.geometry = 'slab' (it is 'disk'), got 5.0",
    ),
    (
        ["--set", "domain.geometry=layer", "--set", "domain.barrier=5", *MASTER],
        "error: domain.barrier: expected no value unless domain.geometry = 'slab' (it is 'layer'), got 5.0",
    ),
    (
        ["--set", "domain.geometry=slab", "--set", "domain.barrier=0", *MASTER],
        "error: domain.barrier: expected greater than 0, got 0",
    ),
    (
        ["--set", "initial.profile=pumped"],
        "error: initial.profile: expected no value with domain.geometry = 'disk' (its columns have no z), got 'pumped'",
    ),
    (
        ["--set", "domain.geometry=slab", "--set", "initial.profile=flat", *MASTER],
        "error: initial.profile: expected 'uniform' or 'pumped', got 'flat'",
    ),
    (
        ["--set", "domain.geometry=layer", "--set", "diffusion.form=paper"],
        "error: diffusion.form: expected 'tensor' or 'master' with domain.geometry = 'layer' "
        "(the paper and conservative forms are 2D), got 'paper'",
    ),
    (
        ["--set", "domain.geometry=slab", "--set", "diffusion.form=conservative"],
        "error: diffusion.form: expected 'tensor' or 'master' with domain.geometry = 'slab' "
        "(the paper and conservative forms are 2D), got 'conservative'",
    ),
    (
        ["--set", "domain.geometry=slab", "--set", "mesh.dz_layer=3.0"],
        "error: mesh.dz_layer: expected at most model.z0 / 4 = 2.5 (the dot layer needs 4 elements), got 3.0",
    ),
    (
        ["--set", "domain.geometry=layer", "--set", "mesh.dz_face=0.6"],
        "error: mesh.dz_face: expected at most mesh.dz_layer = 0.5, got 0.6",
    ),
    (
        ["--set", "domain.geometry=layer", "--set", "domain.lattice_matched=true", *MASTER],
        "error: domain.lattice_matched: expected false with diffusion.form = 'master' "
        "(the lattice's planes are its own), got True",
    ),
    (
        ["--set", "domain.lattice_matched=true"],
        "error: domain.lattice_matched: expected false with domain.geometry = 'disk' (it has no z), got True",
    ),
    (
        ["--set", "domain.geometry=slab", *MASTER],
        "error: solver.max_memory_gb: expected at least the 75.8 GB this lattice needs "
        "(3.02e+06 unknowns, 7.77e+08 nonzeros; reduce domain.radius or raise the budget), got 8",
    ),
]


def quick_args(out: Path) -> list[str]:
    return [
        "--single", "--out", str(out),
        "--set", "mesh.h_min=10", "--set", "mesh.h_max=30",
        "--set", f"mesh.directory='{out / 'meshes'}'",
        "--set", "solver.t_end=100", "--set", "output.progress=false",
    ]  # fmt: skip


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "results"
    assert app_run.main(["--single", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == message + "\n"
    assert not out.exists()


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert app_run.main(["--single", "--set", f"mesh.directory='{tmp_path / 'm'}'", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out: expected a writable directory, got '{blocker / 'sub'}' (")
    assert err.count("\n") == 1


@pytest.mark.parametrize("key", ["mesh.directory", "diffusion.cache"])
def test_unwritable_cache_directory_is_refused_before_any_work(tmp_path, capsys, key):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = tmp_path / "o"
    args = ["--single", "--set", "diffusion.source=lattice", "--set", f"mesh.directory='{tmp_path / 'm'}'",
            "--set", f"{key}='{blocker / 'sub'}'", "--out", str(out)]  # fmt: skip
    assert app_run.main(args) == 2
    assert capsys.readouterr().err == f"error: {key}: expected a writable directory, got '{blocker / 'sub'}' (Not a directory)\n"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a directory without write permission")
def test_cache_directory_without_permission_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = tmp_path / "o"
    assert app_run.main(["--single", "--set", f"mesh.directory='{locked / 'm'}'", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: mesh.directory: expected a writable directory, got '{locked / 'm'}' (Permission denied)\n"
    assert not out.exists() and not (locked / "m").exists()


def test_only_the_directories_a_solve_writes_are_checked(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = str(blocker / "sub")
    master = app_config.build(diffusion={"form": "master", "source": "lattice", "cache": bad}, mesh={"directory": bad})
    with pytest.raises(app_config.ConfigError, match="^diffusion.cache: expected a writable directory"):
        app_run.check_before_work([(master, None, False)], app_run.MPI.COMM_WORLD)
    master.diffusion.cache = ""  # no cache, and the lattice has no mesh: nothing to check
    app_run.check_before_work([(master, None, False)], app_run.MPI.COMM_WORLD)
    constant = app_config.build(diffusion={"cache": bad}, mesh={"directory": str(tmp_path / "new" / "meshes")})
    app_run.check_before_work([(constant, None, True)], app_run.MPI.COMM_WORLD)  # constant D: no cache
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # the check made nothing


@pytest.mark.parametrize("option", ["--config", "--preset"])
def test_config_and_preset_files_that_are_not_utf8_toml(tmp_path, capsys, option):
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b"[model]\n# gr\xf6\xdfer\n")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    out = tmp_path / "o"
    cases = [
        (folder, f"error: {option}: expected a TOML file, got '{folder}' (a directory)"),
        (binary, f"error: {option}: expected a UTF-8 TOML file, got '{binary}' (byte 0xff at offset 8)"),
        (latin1, f"error: {option}: expected a UTF-8 TOML file, got '{latin1}' (byte 0xf6 at offset 12)"),
        (broken, f"error: {option}: expected a valid TOML file, got '{broken}' "
                 "(Expected ']' at the end of a table declaration (at line 1, column 7))"),
        (tmp_path / "missing.toml", f"error: {option}: expected an existing TOML file, got '{tmp_path / 'missing.toml'}'"),
    ]  # fmt: skip
    for path, message in cases:
        assert app_run.main([option, str(path), "--out", str(out)]) == 2
        assert capsys.readouterr().err == message + "\n"
    assert not out.exists()


def test_bad_config_file_names_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[mesh]\nh_min = 'fine'\n")
    assert app_run.main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == "error: mesh.h_min: expected a number, got 'fine'\n"


def test_run_writes_csv_and_json_and_bad_rerun_leaves_them_untouched(tmp_path, capsys):
    out = tmp_path / "res"
    assert app_run.main(quick_args(out)) == 0
    csv, js = out / "run" / "overhauser.csv", out / "run" / "run.json"
    cols = read_csv(csv)
    assert list(cols) == ["t_s", "h_over_h0"]
    assert cols["t_s"][0] == 0 and cols["h_over_h0"][0] == pytest.approx(1.0)
    assert cols["t_s"][-1] == pytest.approx(100.0)
    assert 0 < cols["h_over_h0"][-1] < 1

    summary = json.loads(js.read_text())
    assert summary["ranks"] == 1
    assert summary["config"]["solver"]["t_end"] == 100.0
    assert summary["solver"]["steps_accepted"] > 0
    assert {"fenics-dolfinx", "petsc4py", "mpi4py", "gmsh"} <= set(summary["versions"])
    before = (csv.read_bytes(), js.read_bytes())
    assert app_run.main([*quick_args(out), "--set", "initial.r0=-1"]) == 2
    assert (csv.read_bytes(), js.read_bytes()) == before
    assert sorted(p.name for p in (out / "run").iterdir()) == ["overhauser.csv", "run.json"]


def test_module_entry_point_exit_code_and_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = jobs.run(
        [sys.executable, "-m", "app.run", "--single", "--set", "mesh.h_max=-3", "--out", str(tmp_path / "o")],
        env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == "error: mesh.h_max: expected greater than 0, got -3\n"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_set_parses_toml_literals_and_nested_petsc_options():
    cfg = app_config.load(
        overrides=["model.B0=2.0", "diffusion.form=tensor", "solver.petsc_options.ksp_type=cg", "output.progress=false"]
    )
    assert cfg.model.B0 == 2.0 and cfg.diffusion.form == "tensor"
    assert cfg.solver.petsc_options == {"ksp_type": "cg"} and cfg.output.progress is False


def test_output_times_are_log_spaced_from_zero_to_t_end():
    t = app_config.Solver(t_end=1e4, t_first=1e-2, outputs_per_decade=10).output_times()
    assert t[0] == 0 and t[1] == pytest.approx(1e-2) and t[-1] == 1e4
    assert len(t) == 62
    ratios = [t[i + 1] / t[i] for i in range(1, len(t) - 1)]
    assert max(ratios) == pytest.approx(min(ratios)) == pytest.approx(10**0.1)


def test_field_cuts_show_peak_dip_and_radial_tangential_split(tmp_path, capsys):
    out = tmp_path / "cuts"
    assert app_run.main(["--field-cuts", "--out", str(out), "--set", "model.B0=0.2", "--set", "output.name=f"]) == 0
    cols = read_csv(out / "f" / "field_cuts.csv")
    assert list(cols) == ["r_nm", "D_axis", "Drr_axis", "Dtt_axis", "D_diag", "Drr_diag", "Dtt_diag"]
    assert (out / "f" / "field_cuts.png").stat().st_size > 10_000
    D, r = cols["D_axis"], cols["r_nm"]
    assert D[0] > 10 * 6.93  # electron-mediated peak at the centre
    assert D[(r > 30) & (r < 60)].min() < 0.5 * 6.93  # Knight-shift dip
    assert D[-1] == pytest.approx(6.93, rel=2e-3)  # bulk far away
    ring = (r > 35) & (r < 50)
    assert np.all(cols["Drr_axis"][ring] < cols["Dtt_axis"][ring])
    assert "field cuts ->" in capsys.readouterr().out


def test_lattice_run_records_field_evaluation_and_uses_the_cache(tmp_path):
    out = tmp_path / "lat"
    args = [*quick_args(out), "--set", "diffusion.source=lattice", "--set", f"diffusion.cache='{tmp_path / 'fc'}'"]
    assert app_run.main(args) == 0
    first = json.loads((out / "run" / "run.json").read_text())["lattice_field"]
    assert first["cache"] == ["miss"] and first["points_evaluated"] == first["points_owned"] > 0
    assert app_run.main(args) == 0
    second = json.loads((out / "run" / "run.json").read_text())["lattice_field"]
    assert second["cache"] == ["hit"] and second["points_evaluated"] == 0


def test_unresolved_and_negative_states_are_reported(tmp_path, capsys):
    out = tmp_path / "w"
    assert app_run.main([*quick_args(out), "--set", "mesh.h_max=40", "--set", "initial.r0=5"]) == 0
    text = capsys.readouterr().out
    assert "warning: initial.r0 = 5 nm is below 2 mesh.h_min = 20 nm: the initial state is not resolved" in text
    assert "warning: u fell to -" in text
    stats = json.loads((out / "run" / "run.json").read_text())["solver"]
    assert stats["min_u_over_outputs"] < -1e-3 and stats["u0_max"] == pytest.approx(1.0)
    assert stats["integral_start"] > 0 and stats["integral_end"] > 0


def test_a_resolved_run_has_no_warning(tmp_path, capsys):
    assert app_run.main(quick_args(tmp_path / "ok")) == 0
    assert "warning" not in capsys.readouterr().out
