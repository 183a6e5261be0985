"""Sweeps (app/studies/sweep.py, app/runtime/scheduler.py): the cases a spec makes, cases on groups of ranks
giving the numbers of the same cases run one by one, resuming, and bad specs (one line,
exit 2, nothing written). Tiny cases: a 100 nm disk on a coarse mesh, 0 to 100 s, default
solver tolerances."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jobs
import numpy as np
import pytest
from mpi4py import MPI

from app import config as app_config
from app import run as app_run
from app.numerics import mesh as app_mesh
from app.runtime import scheduler
from app.studies import catalogue as app_preset
from app.studies import sweep

COMM = MPI.COMM_WORLD

TINY = """
[sweep]
title = "tiny"
vary = {{ "model.B0" = [0.02, 0.2] }}
forms = ["tensor", "paper"]

[config]
model = {{ electron_sz = 0.5 }}
domain = {{ radius = 100.0 }}
mesh = {{ h_min = 5.0, h_max = 25.0, fine_radius = 30.0, coarse_radius = 60.0, directory = "{root}/meshes" }}
diffusion = {{ source = "lattice", cache = "{root}/fields" }}
solver = {{ t_end = 100.0, outputs_per_decade = 3 }}
"""


def tiny_file(root: Path, text: str = TINY) -> Path:
    path = root / "tiny.toml"
    if COMM.rank == 0:
        path.write_text(text.format(root=root))
    COMM.barrier()
    return path


def run_sweep(root: Path, *args: str) -> dict:
    assert app_run.main(["--preset", str(root / "tiny.toml"), "--out", str(root / "out"), *args]) == 0
    return json.loads((root / "out" / "tiny" / "run.json").read_text())


# --- the cases of a spec ------------------------------------------------------------------------


def spec(**sweep_table) -> sweep.Sweep:
    return sweep.from_data("s", {"sweep": {"title": "t", **sweep_table}})


def test_ranges_products_and_zips_give_the_cases_in_order():
    s = spec(vary={"model.B0": {"log": [0.01, 1.0], "n": 3}, "initial.r0": {"lin": [10.0, 30.0], "n": 2}})
    assert [tuple(c.values()) for c in s.cases] == pytest.approx(
        [(0.01, 10.0), (0.01, 30.0), (0.1, 10.0), (0.1, 30.0), (1.0, 10.0), (1.0, 30.0)], rel=1e-12
    )
    z = spec(vary={"model.B0": [0.1, 0.2], "initial.r0": [10.0, 20.0]}, combine="zip", forms=["tensor", "paper"])
    assert z.cases == [
        {"model.B0": 0.1, "initial.r0": 10.0, "diffusion.form": "tensor"},
        {"model.B0": 0.1, "initial.r0": 10.0, "diffusion.form": "paper"},
        {"model.B0": 0.2, "initial.r0": 20.0, "diffusion.form": "tensor"},
        {"model.B0": 0.2, "initial.r0": 20.0, "diffusion.form": "paper"},
    ]
    assert spec(states=[0.5, 0.0]).spec.axes() == ["model.electron_sz"]


def test_one_at_a_time_moves_each_key_alone_from_the_baseline():
    s = app_preset.resolve(spec(vary={"model.r_c": [3.0, 6.0], "model.l0": [20.0]}, combine="one_at_a_time",
                                for_each={"model.B0": [0.02, 0.2]},
                                metrics=[{"column": "t_half_s", "where": {"model.B0": 0.2}, "label": "t"}]))  # fmt: skip
    assert s.varied == [None, None, "model.r_c", "model.r_c", "model.r_c", "model.r_c", "model.l0", "model.l0"]
    assert [(c.model.r_c, c.model.l0, c.model.B0) for c in s.configs] == [
        (4.0, 30.0, 0.02), (4.0, 30.0, 0.2), (3.0, 30.0, 0.02), (3.0, 30.0, 0.2),
        (6.0, 30.0, 0.02), (6.0, 30.0, 0.2), (4.0, 20.0, 0.02), (4.0, 20.0, 0.2),
    ]  # fmt: skip
    assert s.cases[0] == {"model.r_c": 4.0, "model.l0": 30.0, "model.B0": 0.02}  # the baseline's own values
    pairs = enumerate(zip(s.cases, s.varied, strict=True))
    cases = [{"params": p, "varied": v, "t_half_s": 10.0 * (i + 1)} for i, (p, v) in pairs]
    (panel,) = sweep.tornado_rows(s, cases)
    assert panel["baseline"] == 20.0
    assert panel["bars"] == {"model.r_c": [(3.0, 40.0), (6.0, 60.0)], "model.l0": [(20.0, 80.0)]}


def test_the_sensitivity_preset_varies_what_model_md_leaves_open():
    s = app_preset.resolve(app_preset.load_preset("sensitivity"))
    assert set(s.spec.vary) == {"model.g_e", "model.r_c", "model.A0", "model.l0", "model.z0"}
    assert len(s.configs) == 3 * (1 + 3 + 2 + 2 + 2 + 2)
    assert [m.label for m in s.spec.metrics] == ["t_1/2 at 20 mT (s)", "t_1/2 at 0.2 T (s)", "D_eff at 2 T (nm^2/s)",
                                                 "D at the centre, 0.2 T (nm^2/s)"]  # fmt: skip


def test_the_key_is_the_resolved_configuration_less_output():
    s = app_preset.resolve(spec(vary={"model.B0": [0.1, 0.2]}))
    assert len(set(s.keys)) == 2
    same = app_config.build(model={"B0": 0.1}, output={"name": "other", "progress": True})
    assert sweep.case_key(same) == s.keys[0]


def test_the_presets_resolve():
    b0 = app_preset.resolve(app_preset.load_preset("tau_vs_B0"))
    assert len(b0.configs) == 48 and b0.spec.x_key() == "model.B0"
    assert {c.model.electron_sz for c in b0.configs} == {0.5, 0.0}
    assert min(c.model.B0 for c in b0.configs) == pytest.approx(0.01) and max(c.model.B0 for c in b0.configs) == 5.0
    r0 = app_preset.resolve(app_preset.load_preset("tau_vs_r0"))
    assert [c.initial.r0 / c.model.l0 for c in r0.configs[::2]] == pytest.approx(np.linspace(0.2, 1.2, 11))


def test_probe_interpolates_in_log_time():
    t, h = np.array([0.0, 1.0, 100.0]), np.array([1.0, 0.8, 0.4])
    assert sweep.probe(t, h, 10.0) == pytest.approx(0.6)
    assert np.isnan(sweep.probe(t, h, 1000.0))


# --- the scheduler ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, COMM.size])
def test_every_task_runs_once_on_one_group(k):
    def work(i, group):
        assert group.size == k
        return group.allreduce(i)

    mine = scheduler.run_tasks(COMM, k, 7, work)
    groups = COMM.allgather((COMM.rank // k, mine))
    by_group = dict(groups)  # ranks of one group ran the same tasks
    assert all(by_group[g] == m for g, m in groups)
    assert sorted(i for m in by_group.values() for i in m) == list(range(7))


# --- the singlet solved once --------------------------------------------------------------------


def test_without_the_electron_b0_and_g_e_do_not_change_the_answer(shared_tmp):
    """The oracle for solving a sweep's singlet once: h(t) of the singlet (s = 0) at 20 mT and
    g_e = -0.5 equals that at 2 T and g_e = -2 to 1e-12 (lattice D, tensor form); with the
    electron it does not."""
    import app

    def h(B0: float, g_e: float, sz: float):
        cfg = app.build(model={"B0": B0, "g_e": g_e, "electron_sz": sz}, domain={"radius": 100.0},
                        mesh={"h_min": 5.0, "h_max": 25.0, "fine_radius": 30.0, "coarse_radius": 60.0,
                              "directory": str(shared_tmp / "meshes")},
                        diffusion={"source": "lattice", "cache": ""},
                        solver={"t_end": 100.0, "outputs_per_decade": 3, "error_estimate": False})  # fmt: skip
        return app.solve(cfg).h, cfg

    (h_low, low), (h_high, high) = h(0.02, -0.5, 0.0), h(2.0, -2.0, 0.0)
    np.testing.assert_allclose(h_low, h_high, rtol=0, atol=1e-12)
    assert sweep.answer_key(low) == sweep.answer_key(high) and sweep.case_key(low) != sweep.case_key(high)
    (e_low, e1), (e_high, e2) = h(0.02, -0.5, 0.5), h(2.0, -0.5, 0.5)
    assert np.max(np.abs(e_low - e_high)) > 1e-3 and sweep.answer_key(e1) != sweep.answer_key(e2)
    pumped = [app.build(model={"B0": b, "electron_sz": 0.0}, pump={"t_pump": 1.0, "gamma0": 1.0, "electron_sz": 0.5})
              for b in (0.02, 2.0)]  # fmt: skip
    assert sweep.answer_key(pumped[0]) != sweep.answer_key(pumped[1])  # the pump's electron sees B0


@pytest.mark.serial
def test_a_sweep_over_b0_solves_its_singlet_once(tmp_path, capsys):
    """3 fields x ((1,1), singlet): 6 cases, 4 solves; each singlet case has its own file with
    its own B0 and the one answer."""
    tiny_file(tmp_path, TINY.replace('forms = ["tensor", "paper"]', 'forms = ["tensor"]\nstates = [0.5, 0.0]')
              .replace("[0.02, 0.2]", "[0.02, 0.2, 2.0]"))  # fmt: skip
    info = run_sweep(tmp_path)
    out = capsys.readouterr().out
    assert "6 cases, 0 already finished, 6 to solve (4 distinct: without the electron B0 and g_e do not act)" in out
    assert out.count("(and 2 equal cases)") == 1 and out.count("left\n") == 4
    singlet = [c for c in info["cases"] if c["params"]["model.electron_sz"] == 0]
    assert sorted(c["params"]["model.B0"] for c in singlet) == [0.02, 0.2, 2.0]
    assert len({c["t_half_s"] for c in singlet}) == 1 and len({c["key"] for c in singlet}) == 3
    assert info["solved_now"] == 6 and len(list((tmp_path / "out" / "tiny" / "cases").glob("*.json"))) == 6


# --- groups of ranks against one by one ---------------------------------------------------------


@pytest.mark.parallel
def test_cases_on_groups_equal_the_cases_one_by_one(shared_tmp):
    """4 cases on 2 groups of 1 rank, both groups making the same mesh and lattice-field
    cache files at once; then each case again on one rank alone: the same numbers (1e-8)."""
    tiny_file(shared_tmp)
    info = run_sweep(shared_tmp, "--ranks-per-case", "1")
    assert info["solved_now"] == 4 and info["ranks_per_case"] == 1
    s = app_preset.resolve(app_preset.load_preset(str(shared_tmp / "tiny.toml")))
    mine = range(COMM.rank, 4, COMM.size)  # each rank re-solves its share, alone
    alone = dict(COMM.allreduce([(i, sweep.solve_case(s.configs[i], MPI.COMM_SELF)) for i in mine]))
    header = (shared_tmp / "out" / "tiny" / "sweep.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["model.B0", "diffusion.form", "t_half_s"]
    for i, case in enumerate(info["cases"]):
        for col in ("t_half_s", "h_at_1s", "h_at_10s", "h_at_100s"):
            assert case[col] == pytest.approx(alone[i][col], rel=1e-8, abs=1e-12, nan_ok=True), (i, col)
    meshes = list((shared_tmp / "meshes").glob("*.msh"))
    assert len(meshes) == 1 and not list((shared_tmp / "meshes").glob(".*"))  # one file, no temporary left
    assert app_mesh.check_msh(meshes[0], app_mesh.DiskSpec.from_config(s.configs[0])) == "hit"
    assert not list((shared_tmp / "fields").glob(".*"))


# --- resuming -----------------------------------------------------------------------------------


@pytest.mark.serial
def test_a_rerun_solves_only_what_is_missing_corrupt_or_foreign(tmp_path, capsys):
    tiny_file(tmp_path)
    first = run_sweep(tmp_path)
    assert first["solved_now"] == 4
    cases = tmp_path / "out" / "tiny" / "cases"
    files = {c["key"]: cases / f"{c['key']}.json" for c in first["cases"]}
    keys = list(files)
    files[keys[0]].unlink()
    files[keys[1]].unlink()
    capsys.readouterr()
    again = run_sweep(tmp_path)
    solved = re.findall(r"case (\d)/4", capsys.readouterr().out)
    assert again["solved_now"] == 2 and sorted(solved) == ["1", "2"]
    t_half = [c["t_half_s"] for c in first["cases"]]
    assert [c["t_half_s"] for c in again["cases"]] == pytest.approx(t_half, rel=1e-12, nan_ok=True)
    files[keys[2]].write_text("{ not json")
    foreign = json.loads(files[keys[3]].read_text())
    foreign["config"]["model"]["B0"] = 7.0  # another case's result under this key
    files[keys[3]].write_text(json.dumps(foreign))
    assert run_sweep(tmp_path)["solved_now"] == 2
    assert json.loads(files[keys[3]].read_text())["config"]["model"]["B0"] != 7.0
    assert run_sweep(tmp_path)["solved_now"] == 0
    assert run_sweep(tmp_path, "--force")["solved_now"] == 4
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## tiny" in md and "| model.B0 | diffusion.form | t_1/2 (s)" in md
    data = tmp_path / "mine.csv"
    data.write_text("B0_T,t_s,who\n0.05,3.5,run 7\n0.5,40,\n")
    info = run_sweep(tmp_path, "--measured", str(data))
    assert info["solved_now"] == 0  # the plot is redrawn from the finished cases
    assert info["measured"] == [{"x": 0.05, "t_s": 3.5, "label": "run 7"}, {"x": 0.5, "t_s": 40.0, "label": ""}]


MEASURED = "--measured: expected a CSV of (parameter, time in s[, label]) rows after a header, got '{}'"


@pytest.mark.serial
@pytest.mark.parametrize(("text", "why"), [("x,t\n0.1,abc\n", " (line 2: '0.1,abc')"), ("x,t\n", " (no rows)"),
                                           ("x,t\n0.1,-2\n", " (line 2: a time must be a positive number)"),
                                           (None, " (no such file)")])  # fmt: skip
def test_bad_measurements_are_one_line(tmp_path, capsys, text, why):
    tiny_file(tmp_path)
    data = tmp_path / "mine.csv"
    if text is not None:
        data.write_text(text)
    args = ["--preset", str(tmp_path / "tiny.toml"), "--measured", str(data), "--out", str(tmp_path / "out")]
    assert app_run.main(args) == 2
    assert capsys.readouterr().err == "error: " + MEASURED.format(data) + why + "\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.serial
def test_a_killed_sweep_loses_only_the_cases_in_flight(tmp_path):
    """mpirun -n 2 killed once two cases are written, as a batch system ends a job at its
    wall-time limit: SIGKILL to every process of the job's session (Open MPI puts the ranks
    in process groups of their own, and without a launcher they do not always end by
    themselves: seen in the image). The same command again solves exactly the cases without
    a file, and the results are whole."""
    import os
    import signal
    import subprocess
    import sys
    import time

    text = TINY.replace('[0.02, 0.2]', '[0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]').replace("h_min = 5.0", "h_min = 1.5")
    text = text.replace("t_end = 100.0, outputs_per_decade = 3", "t_end = 1e4, outputs_per_decade = 8")
    tiny_file(tmp_path, text)
    cmd = ["mpirun", "-n", "2", sys.executable, "-m", "app.run", "--preset", str(tmp_path / "tiny.toml"),
           "--out", str(tmp_path / "out")]  # fmt: skip
    cases = tmp_path / "out" / "tiny" / "cases"
    proc = jobs.start(cmd, cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 240
    while len(list(cases.glob("*.json"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], check=False)  # the session: launcher and ranks
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)

    def alive() -> bool:
        return subprocess.run(["pgrep", "-f", str(tmp_path / "tiny.toml")], capture_output=True).returncode == 0

    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(), "a rank outlived the kill of its job's session by 30 s"
    kept = len(list(cases.glob("*.json")))
    assert 2 <= kept < 16, kept  # killed in the middle
    again = jobs.run(cmd, timeout=300, cwd=Path(__file__).parent.parent)
    assert again.returncode == 0, again.stderr
    assert f"16 cases, {kept} already finished, {16 - kept} to solve" in again.stdout
    info = json.loads((tmp_path / "out" / "tiny" / "run.json").read_text())
    assert info["solved_now"] == 16 - kept and len(info["cases"]) == 16
    assert all(c["h_at_1000s"] < 1 for c in info["cases"])


# --- bad specs ----------------------------------------------------------------------------------

BAD = [
    ('vary = { "model.nope" = [1.0] }',
     "sweep tiny [model.nope=1, diffusion.form=tensor]: model.nope: unknown key 'nope' in [model]"),
    ('vary = { "model.B0" = [] }', "sweep tiny: sweep.vary.model.B0: expected at least one value, got []"),
    ('vary = { "model.B0" = { log = [0.0, 1.0], n = 3 } }',
     "sweep tiny: sweep.vary.model.B0: expected a log range of positive numbers, got [0.0, 1.0]"),
    ('vary = { "model.B0" = { lin = [0.1, 1.0] } }', "sweep tiny: sweep.vary.model.B0.n: expected a value, got none"),
    ('vary = { "model.B0" = [0.2, 0.2] }',
     "sweep tiny: expected distinct cases, got [model.B0=0.2, diffusion.form=tensor] "
     "equal to [model.B0=0.2, diffusion.form=tensor]"),
    ('vary = { "model.B0" = [0.1] }\nx = "initial.r0"',
     "sweep tiny: sweep.x: expected one of the varied keys ['model.B0', 'diffusion.form'], got 'initial.r0'"),
    ('vary = { "model.B0" = [0.1], "initial.r0" = [1.0, 2.0] }\ncombine = "zip"',
     "sweep tiny: sweep.combine: expected keys of equal length for 'zip', got {'model.B0': 1, 'initial.r0': 2}"),
    ('vary = { "model.B0" = 0.1 }',
     "sweep tiny: sweep.vary.model.B0: expected a list of values or {log|lin = [a, b], n = N}, got 0.1"),
    ('vary = { "model.B0" = { log = [0.1, 1.0], n = "x" } }',
     "sweep tiny: sweep.vary.model.B0.n: expected an integer, got 'x'"),
    ('vary = { "model.B0" = [0.1] }\ncombine = "one_at_a_time"',
     "sweep tiny: sweep.metrics: expected the tornado chart's panels with one_at_a_time, got none"),
    ('vary = { "model.B0" = [0.1] }\ncombine = "one_at_a_time"\n'
     'metrics = [{ column = "t_half_s", where = { "model.r_c" = 3.0 }, label = "t" }]',
     "sweep tiny: sweep.metrics: 't': expected where-keys among ['model.B0', 'diffusion.form'], got ['model.r_c']"),
    ('vary = { "model.B0" = [0.1] }\ncolour = "red"', "sweep tiny: sweep.colour: unknown key 'colour' in [sweep]"),
]  # fmt: skip


@pytest.mark.serial
@pytest.mark.parametrize(("line", "message"), BAD)
def test_a_bad_spec_is_one_line_and_nothing_written(tmp_path, capsys, line, message):
    text = re.sub(r'vary = \{\{ "model.B0" = \[0.02, 0.2\] \}\}', line.replace("{", "{{").replace("}", "}}"), TINY)
    tiny_file(tmp_path, text)
    assert app_run.main(["--preset", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.serial
def test_ranks_per_case_must_divide_the_job_and_needs_a_sweep(tmp_path, capsys):
    tiny_file(tmp_path)
    out = str(tmp_path / "out")
    assert app_run.main(["--preset", str(tmp_path / "tiny.toml"), "--ranks-per-case", "2", "--out", out]) == 2
    assert capsys.readouterr().err == "error: --ranks-per-case: expected a divisor of the 1 rank(s) of the job, got 2\n"
    assert app_run.main(["--preset", "fig3", "--force", "--out", out]) == 2
    assert capsys.readouterr().err == (
        "error: --ranks-per-case, --force and --measured are for sweeps; none of the presets given is one\n"
    )
    assert not (tmp_path / "out").exists()
