"""Faults, as a user on a cluster meets them: a failure on one rank, a poisoned cache file,
a truncated or inaccurate solve. Each runs the real CLI under ``mpirun -n 2`` in a
subprocess with a time-out (its whole process group killed if it hangs): it must end,
with one line naming the rank and the reason and a non-zero exit code, and replace
nothing. Select them with ``-m faults``."""

from __future__ import annotations

import os
import platform
import signal
import time
import subprocess
from pathlib import Path

import jobs
import pytest

from app.config import build
from app.numerics import mesh_arrays
from app.numerics.mesh import DiskSpec, check_msh, spec_record

pytestmark = [pytest.mark.serial, pytest.mark.faults]
ROOT = Path(__file__).resolve().parents[1]
#: a hang is a failure: every job here ends within seconds when it works
TIMEOUT = 120

SMALL = ["--set", "mesh.h_min=10", "--set", "mesh.h_max=40", "--set", "solver.t_end=100", "--set", "output.progress=false"]


#: the small case solved on both ranks, not on rank 0 alone (app/numerics/fewer_ranks.py)
EVERY_RANK = ["--set", "solver.min_unknowns_per_rank=0", "--set", "solver.avoid_busy_cores=false"]


def mpirun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = ["mpirun", "-n", "2", "python3", "-m", "app.run", "--single", *SMALL,
           "--set", f"mesh.directory='{tmp_path / 'meshes'}'", "--out", str(tmp_path / "out"), *args]  # fmt: skip
    try:
        return jobs.run(cmd, timeout=TIMEOUT, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the job hung (killed after {TIMEOUT} s): {' '.join(args)}")


def error_lines(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]


@pytest.mark.parametrize("per_rank", [15000, 0], ids=["rank 1 asleep (small case)", "both ranks solving"])
def test_a_failure_on_rank_0_alone_ends_both_ranks(tmp_path, per_rank):
    """The lattice field's cache file is a directory: every rank reads it as corrupt, and
    rank 0 alone, rewriting it, fails (an unwritable cache directory is bad input instead,
    refused before any work). The small case is solved on rank 0 while rank 1 sleeps
    (app/numerics/fewer_ranks.py), unless every rank is made to solve."""
    from app.numerics.field import cache_key, cache_path

    cfg = build(mesh={"h_min": 10.0, "h_max": 40.0}, diffusion={"source": "lattice"})
    entry = cache_path(tmp_path / "cache", cache_key(cfg.model, DiskSpec.from_config(cfg).name, cfg.diffusion.degree))
    entry.mkdir(parents=True)
    (entry / "in-the-way").write_text("x")
    every = EVERY_RANK if per_rank == 0 else []
    proc = mpirun(tmp_path, "--set", "diffusion.source=lattice", "--set", f"diffusion.cache='{tmp_path / 'cache'}'", *every)
    assert proc.returncode != 0, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr  # the whole output, should this ever fail again
    (line,) = lines
    assert line == (f"error: rank 0 of 2: IsADirectoryError: cache entry {entry} is a directory with contents, "
                    "not a cache file: remove it and run again")
    assert not (tmp_path / "out" / "run").exists()


def mesh_file(tmp_path: Path, suffix: str = ".msh", **mesh) -> Path:
    cfg = build(mesh={"h_min": 10.0, "h_max": 40.0, **mesh})
    return tmp_path / "meshes" / f"{DiskSpec.from_config(cfg).name}{suffix}"


@pytest.mark.parametrize("suffix", [".msh", ".arrays", ".npz"])
def test_an_empty_directory_in_place_of_a_cache_file_heals(tmp_path, suffix):
    """Before, every later run failed the same way until a person removed it."""
    from app.numerics.field import cache_key, cache_path

    cfg = build(mesh={"h_min": 10.0, "h_max": 40.0}, diffusion={"source": "lattice"})
    cache = tmp_path / "cache"
    entry = (cache_path(cache, cache_key(cfg.model, DiskSpec.from_config(cfg).name, cfg.diffusion.degree))
             if suffix == ".npz" else mesh_file(tmp_path, suffix))  # fmt: skip
    entry.mkdir(parents=True)
    args = ("--set", "diffusion.source=lattice", "--set", f"diffusion.cache='{cache}'")
    if suffix == ".msh":  # read only when the arrays are missing
        args += ("--set", "output.name=first")
    proc = mpirun(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert f"cache entry {entry} was an empty directory: removed and rebuilt" in proc.stdout.splitlines()
    assert entry.is_file()
    again = mpirun(tmp_path, *args)
    assert again.returncode == 0 and "cache entry" not in again.stdout


@pytest.mark.parametrize("suffix", [".msh", ".arrays"])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "another mesh"])
def test_a_bad_mesh_file_in_the_cache_is_reported_and_rebuilt(tmp_path, damage, suffix):
    """The Gmsh file (read only when the arrays are missing) and the arrays every rank reads."""
    good = mpirun(tmp_path)
    assert good.returncode == 0, good.stderr
    path = mesh_file(tmp_path, suffix)
    reference = path.read_bytes()
    if damage == "garbage":
        path.write_text("$MeshFormat\ngarbage\n")
    elif damage == "truncated":  # what a full disk leaves
        path.write_bytes(reference[: len(reference) // 2])
    else:  # a valid mesh of other sizes under this name
        other = mpirun(tmp_path, "--set", "mesh.h_min=20", "--set", "output.name=other")
        assert other.returncode == 0, other.stderr
        path.write_bytes(mesh_file(tmp_path, suffix, h_min=20.0).read_bytes())
    if suffix == ".msh":  # the arrays made from it would be read instead
        mesh_file(tmp_path, ".arrays").unlink()
    proc = mpirun(tmp_path)
    assert proc.returncode == 0, proc.stderr
    status = "stale" if damage == "another mesh" else "corrupt"
    assert f"mesh cache {path} is {status}: rebuilt" in proc.stdout.splitlines()
    spec = DiskSpec.from_config(build(mesh={"h_min": 10.0, "h_max": 40.0}))
    assert check_msh(mesh_file(tmp_path), spec) == "hit"  # rewritten whole, with its checksum
    assert mesh_arrays.check(mesh_file(tmp_path, ".arrays"), spec_record(spec)) == "hit"
    assert mesh_file(tmp_path, ".arrays").read_bytes() == reference or suffix == ".msh"
    assert proc.stdout.count("dofs") == good.stdout.count("dofs") and " 574 dofs" in proc.stdout
    assert not list((tmp_path / "meshes").glob(".*"))  # no temporary file left


def test_a_truncated_solve_is_an_error_and_replaces_nothing(tmp_path):
    good = mpirun(tmp_path)
    assert good.returncode == 0, good.stderr
    csv = tmp_path / "out" / "run" / "overhauser.csv"
    before = csv.read_bytes()
    proc = mpirun(tmp_path, "--set", "solver.petsc_options.ts_max_steps=3")
    assert proc.returncode != 0
    assert set(error_lines(proc)) <= {
        f"error: rank {r} of 2: RuntimeError: the time stepper stopped at t = 0.007 s, before t_end = 100 s "
        "(CONVERGED_ITS after 3 steps; the limit is ts_max_steps)"
        for r in (0, 1)
    } and error_lines(proc)
    assert csv.read_bytes() == before


@pytest.mark.parametrize(
    "options,reason",
    [
        (["ksp_type=richardson", "ksp_max_it=1"],
         "did not converge (KSP reason CONVERGED_ITS, 1 iterations of richardson/hypre)"),
        (["ksp_max_it=1"], "(DIVERGED_STEP_REJECTED; last linear solve: KSP reason DIVERGED_MAX_IT after 1 iterations)"),
    ],
    ids=["richardson-1-it", "cg-1-it"],
)
def test_linear_solves_that_do_not_converge_are_an_error(tmp_path, options, reason):
    """On both ranks (the AMG; alone, the small case would be solved on rank 0 with Cholesky)."""
    args = [a for o in options for a in ("--set", f"solver.petsc_options.{o}")] + EVERY_RANK
    proc = mpirun(tmp_path, *args)
    assert proc.returncode != 0
    lines = error_lines(proc)
    assert lines and all(ln.endswith(reason) for ln in lines), lines
    assert not (tmp_path / "out" / "run").exists()


def test_a_second_run_into_the_same_out_is_refused_while_the_first_runs(tmp_path):
    import fcntl
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    slow = [sys.executable, "-m", "app.run", "--single", "--set", "mesh.h_min=1", "--set", "solver.t_end=1e4",
            "--set", "output.progress=false", "--set", f"mesh.directory='{tmp_path / 'meshes'}'", "--out", str(out)]  # fmt: skip
    first = jobs.start(slow, env=env, cwd=tmp_path)
    try:
        lock = out / ".overhauser.lock"

        def held() -> bool:
            if not lock.exists():
                return False
            with lock.open() as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(f, fcntl.LOCK_UN)
                return False

        end = time.monotonic() + 60
        while not held() and first.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        assert held(), "the first run never took the lock"
        second = mpirun(tmp_path)
        assert second.returncode == 2
        expected = f"error: --out: expected a directory no other run is writing to, got '{out}' (in use by a run started "
        assert second.stderr.startswith(expected), second.stderr
        sandboxed = bool(os.environ.get("FENICSX_ROOT"))  # a sandbox's PIDs are its own: none given
        assert (", PID " in second.stderr) != sandboxed and f" on {platform.node()}" in second.stderr
    finally:
        os.killpg(first.pid, 9)
        first.communicate()
    after = mpirun(tmp_path)  # the killed run's lock went with it
    assert after.returncode == 0, after.stderr


PRESET = """
[figure]
kind = "decay"
title = "two curves, the first animated (its VTX files are written while it is solved)"
animate = ["first"]

[config]
mesh = { h_min = 10.0, h_max = 40.0 }
solver = { t_end = 100.0, outputs_per_decade = 2 }
output = { progress = false }

[[curve]]
label = "first"
solver = { petsc_options = { ts_max_steps = 100000 } }   # a --set of ts_max_steps reaches only the second

[[curve]]
label = "second"
diffusion = { constant = 3.0 }
"""


def test_a_failed_figure_leaves_the_earlier_one_and_the_summary_as_they_were(tmp_path):
    preset = tmp_path / "one.toml"
    preset.write_text(PRESET)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = ["mpirun", "-n", "2", "python3", "-m", "app.run", "--preset", str(preset),
            "--set", f"mesh.directory='{tmp_path / 'meshes'}'", "--out", str(tmp_path / "out")]  # fmt: skip
    good = jobs.run(base, timeout=TIMEOUT, env=env, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    out = tmp_path / "out"
    files = {p.relative_to(out): p.read_bytes() for p in (out / "one").rglob("*") if p.is_file()}
    summary = (out / "summary.json").read_bytes()
    assert set(files) >= {Path("one/one.csv"), Path("one/one.png"), Path("one/run.json")}
    assert any(p.parts[1].endswith("_u.bp") for p in files)  # the first curve's VTX, rewritten by the bad run
    bad = jobs.run([*base, "--set", "solver.petsc_options.ts_max_steps=3"], timeout=TIMEOUT, env=env, cwd=tmp_path)
    assert bad.returncode != 0 and "RuntimeError: the time stepper stopped" in bad.stderr
    assert {p.relative_to(out): p.read_bytes() for p in (out / "one").rglob("*") if p.is_file()} == files
    assert (out / "summary.json").read_bytes() == summary
    again = jobs.run(base, timeout=TIMEOUT, env=env, cwd=tmp_path)  # and the next run cleans up after it
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir() if p.name != ".overhauser.lock") == ["one", "summary.json", "summary.md"]


@pytest.mark.parametrize(
    "args,key",
    [
        (["--set", "mesh.h_min=1e-6"], "mesh"),
        (["--set", "domain.radius=1e9", "--set", "mesh.h_max=40"], "mesh"),
        (["--set", "solver.outputs_per_decade=1000000000"], "solver.outputs_per_decade"),
        (["--set", "model.r_c=1000", "--set", "diffusion.source=lattice"], "model.r_c"),
    ],
    ids=["h_min", "radius", "outputs", "r_c"],
)
def test_runaway_sizes_are_refused_before_any_work(tmp_path, args, key):
    proc = mpirun(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {key}: expected ")  # then only mpirun's notice of exit code 2
    assert len(error_lines(proc)) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "meshes").exists()


def test_a_negative_or_unresolved_state_is_reported(tmp_path):
    proc = mpirun(tmp_path, "--set", "initial.r0=5")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("warning: ")]
    assert len(lines) == 2 and "u fell to -" in lines[0] and "initial.r0 = 5 nm is below" in lines[1]


@pytest.mark.serial
def test_a_dead_x_server_is_replaced_before_the_next_render(tmp_path):
    """VTK aborts the process when its X server is gone; the private Xvfb killed from outside
    (and a DISPLAY nobody answers) is replaced with one line instead, and the render lands."""
    script = tmp_path / "render_twice.py"
    script.write_text(
        "import os, signal, sys\n"
        "import numpy as np\n"
        "from app.render import render2d as render\n"
        "if not render.available():\n"
        "    sys.exit(77)\n"
        "x = np.linspace(-1.0, 1.0, 8)\n"
        "D = 1.0 + np.add.outer(x**2, x**2)\n"
        f"render.surface(x, x, D, {str(tmp_path / 'a.png')!r}, 'first')\n"
        "render._xvfb.kill(); render._xvfb.wait()\n"
        f"render.surface(x, x, D, {str(tmp_path / 'b.png')!r}, 'second')\n"
        "os.environ['DISPLAY'] = ':987'\n"
        f"render.surface(x, x, D, {str(tmp_path / 'c.png')!r}, 'third')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = jobs.run(["python3", str(script)], timeout=TIMEOUT, env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    if proc.returncode == 77:
        pytest.skip("no Xvfb here")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "render: the private Xvfb ended (exit code -9); starting another" in lines
    assert "render: the X server of DISPLAY=:987 does not answer; starting Xvfb" in lines
    assert all((tmp_path / f"{n}.png").stat().st_size > 1000 for n in "abc")


def test_a_test_failing_on_one_rank_stops_every_rank_under_x(tmp_path):
    """``mpirun -n 2 pytest -x`` with a test that fails on rank 1 alone and a collective
    test after it: every rank stops (tests/conftest.py), none waits in the collective."""
    (tmp_path / "conftest.py").write_text(f"exec(open({str(ROOT / 'tests' / 'conftest.py')!r}).read())\n")
    (tmp_path / "test_one_rank.py").write_text(
        "from mpi4py import MPI\n"
        "def test_fails_on_rank_1_only():\n    assert MPI.COMM_WORLD.rank == 0\n"
        "def test_a_collective():\n    assert MPI.COMM_WORLD.allreduce(1) == MPI.COMM_WORLD.size\n"
    )
    cmd = ["mpirun", "-n", "2", "python3", "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    try:
        proc = jobs.run(cmd, timeout=TIMEOUT, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail("the ranks hung after a test failed on one of them")
    assert proc.returncode != 0
    assert "test_fails_on_rank_1_only failed on another rank" in proc.stdout
    assert "[rank 1] FAILED test_one_rank.py::test_fails_on_rank_1_only (call)" in proc.stderr


@pytest.mark.serial
@pytest.mark.faults
def test_ctrl_c_mid_solve_says_interrupted(tmp_path):
    """SIGINT inside the time loop (a KeyboardInterrupt in a PETSc callback surfaces as the
    stepper's failure) is reported as an interrupt: one line, exit code 130, no traceback."""
    meshes = tmp_path / "meshes"
    cmd = ["python3", "-m", "app.run", "--single", "--set", "mesh.h_min=0.7", "--set", "solver.t_end=1e6",
           "--set", "solver.outputs_per_decade=200", "--set", "solver.error_estimate=false",
           "--set", f"mesh.directory='{meshes}'", "--out", str(tmp_path / "out")]  # fmt: skip
    proc = jobs.start(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(meshes.glob("*.arrays")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(2.0)  # into the time loop
    os.killpg(proc.pid, signal.SIGINT)
    done = jobs.finish(proc, timeout=60)
    assert done.returncode == 130, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]  # Open MPI adds its abort notice
    assert errors == ["error: rank 0: interrupted (SIGINT)"]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "run").exists()


def test_the_line_names_the_first_cause_not_the_clean_up_that_failed_after_it():
    """A full disk during a 2-rank figure: ADIOS2's write fails (errno 28), then the writer's
    close in ``with`` fails too, and that second error (which never mentions the disk) was
    the line the user got. The first cause is reported; ``raise ... from`` keeps its words."""
    from app.runtime.failure import one_line

    def nested():
        try:
            raise RuntimeError("\x1b[1;36m[Fri Dec 04 21:35:10 2026]\x1b[1;34m [ADIOS2 EXCEPTION]\x1b[0m <Write> : "
                               "couldn't write to file /o/u.bp/data.0 : errno = 28: "
                               "No space left on device\x1b[0m\n: iostream error")  # fmt: skip
        finally:
            raise RuntimeError("[Fri Dec 04 21:35:10 2026] [ADIOS2 EXCEPTION] <MPIChain> : An existing exchange is still active")

    with pytest.raises(RuntimeError) as info:
        nested()
    assert one_line(info.value) == ("RuntimeError: [ADIOS2 EXCEPTION] <Write> : couldn't write to file /o/u.bp/data.0 : "
                                    "errno = 28: No space left on device : iostream error")  # fmt: skip
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as exc:
            raise ValueError("the cache could not be written") from exc
    except ValueError as exc:
        assert one_line(exc) == "ValueError: the cache could not be written"
