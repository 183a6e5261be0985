"""Nothing of a job or of the environment build outlives it, whatever kills it.

Every job here is started with ``start_new_session=True`` and, on any time-out, ended by
killing its whole process group. Its processes are found by a tag unique to the test,
an environment variable that every process of the job inherits (visible in
``/proc/PID/environ``), never by a broad name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox
ROOT = Path(__file__).resolve().parents[2]
FENICSX = str(ROOT / "scripts" / "fenicsx")
TAG = "OVERHAUSER_TEST_TAG"

#: two ranks that meet in a barrier, each leave a file, then compute until stopped
BUSY = (
    "import os, sys, time\n"
    "from mpi4py import MPI\n"
    "c = MPI.COMM_WORLD; c.barrier()\n"
    "open(os.path.join(sys.argv[1], f'rank{c.rank}'), 'w').close()\n"
    "t = time.time()\n"
    "while time.time() - t < 120: sum(range(10000))\n"
)


def tagged(tag: str) -> list[int]:
    """PIDs of the live processes whose environment carries ``TAG=tag``."""
    want = f"{TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path("/proc", entry, "environ").read_bytes().split(b"\0")
            state = Path("/proc", entry, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if want in env and state != "Z":
            found.append(int(entry))
    return found


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture(scope="module", autouse=True)
def environment_built():
    """The tests give a job seconds to start; the first build of the root (a fresh machine,
    a fresh CI) takes minutes: build it once, before them, with a generous limit. (Where the
    host has FEniCSx every test here is skipped, and a skipped test sets up no fixture.)"""
    subprocess.run([FENICSX, "true"], check=True, timeout=1800)


class Job:
    """``scripts/fenicsx ARGS`` in a session of its own, tagged; always cleaned up."""

    def __init__(self, args: list[str], tag: str | None = None, env: dict | None = None, cwd=None):
        self.tag = tag or uuid.uuid4().hex
        full_env = {**os.environ, **(env or {}), TAG: self.tag}
        self.proc = subprocess.Popen(
            [FENICSX, *args], env=full_env, cwd=cwd or ROOT, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def wait(self, timeout: float) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            out, _ = self.proc.communicate()
            pytest.fail(f"job did not end within {timeout} s:\n{out}")
        return self.proc.returncode, out

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.kill_group()
            self.proc.communicate()
        # last resort, so that a failing test leaves nothing running either
        for pid in tagged(self.tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def busy_job(tmp_path: Path) -> Job:
    marks = tmp_path / "marks"
    marks.mkdir()
    job = Job(["mpirun", "-n", "2", "python3", "-c", BUSY, str(marks)])
    if not wait_for(lambda: len(list(marks.iterdir())) == 2, timeout=60):
        job.kill_group()
        pytest.fail(f"the two ranks did not start:\n{job.proc.communicate()[0]}")
    return job


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_to_the_outermost_process_ends_the_whole_job(tmp_path, sig):
    with busy_job(tmp_path) as job:
        before = tagged(job.tag)
        assert len(before) >= 4  # this script, bwrap, the job's init, prterun, two ranks
        os.kill(job.proc.pid, sig)  # the outermost process alone, not its group
        assert wait_for(lambda: not tagged(job.tag), timeout=5), f"still alive 5 s after {sig.name}: {tagged(job.tag)}"
        rc = job.proc.wait(timeout=5)
        assert rc != 0
        if sig != signal.SIGKILL:
            assert rc == 128 + sig, f"exit code {rc} after {sig.name}"


def single_run(out: Path, name: str) -> list[str]:
    return [
        "python3", "-m", "app.run", "--single", "--out", str(out),
        "--set", "mesh.h_min=10", "--set", "mesh.h_max=40",
        "--set", f"mesh.directory='{out / ('meshes-' + name)}'",
        "--set", f"diffusion.cache='{out / ('cache-' + name)}'",
        "--set", "solver.t_end=10", "--set", "output.progress=false", "--set", f"output.name={name}",
    ]  # fmt: skip


def test_a_job_right_after_a_killed_one_succeeds(tmp_path):
    with busy_job(tmp_path) as job:
        os.kill(job.proc.pid, signal.SIGKILL)
        assert wait_for(lambda: not tagged(job.tag), timeout=5)
    out = tmp_path / "out"
    with Job(["mpirun", "-n", "2", *single_run(out, "after")]) as nxt:
        rc, text = nxt.wait(timeout=300)
    assert rc == 0, text
    assert (out / "after" / "overhauser.csv").exists()


def test_two_jobs_at_once_both_succeed(tmp_path):
    oa, ob = tmp_path / "out-a", tmp_path / "out-b"  # one --out each: a second run into one --out is refused
    with Job(["mpirun", "-n", "2", *single_run(oa, "a")]) as a, Job(["mpirun", "-n", "2", *single_run(ob, "b")]) as b:
        (ra, ta), (rb, tb) = a.wait(timeout=300), b.wait(timeout=300)
    assert ra == 0, ta
    assert rb == 0, tb
    assert (oa / "a" / "run.json").exists() and (ob / "b" / "run.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_ends_the_job_with_one_line_and_publishes_nothing(tmp_path):
    """--out on a 200 kB tmpfs: the figure's files do not fit. The job must end (not hang),
    name the rank, and leave no half-written figure in place of a result."""
    out = tmp_path / "full"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(out)], check=True, timeout=30)
    try:
        args = ["mpirun", "-n", "2", "python3", "-m", "app.run", "--quick", "--preset", "fig3",
                "--set", f"mesh.directory='{tmp_path / 'meshes'}'", "--set", f"diffusion.cache='{tmp_path / 'cache'}'",
                "--set", "output.progress=false", "--out", str(out)]  # fmt: skip
        with Job(args) as job:
            rc, text = job.wait(timeout=300)
            assert wait_for(lambda: not tagged(job.tag), timeout=5)
        assert rc != 0
        errors = [ln for ln in text.splitlines() if ln.startswith("error: ")]
        assert errors and all(ln.startswith("error: rank ") for ln in errors), text[-2000:]
        assert "No space left on device" in errors[0], errors  # the first cause, not the clean-up after it
        assert not (out / "fig3").exists() and not (out / "summary.json").exists()
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False, timeout=30)


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_a_read_only_cache_is_refused_before_any_work(tmp_path):
    """diffusion.cache on a read-only mount (root cannot write there either): the lattice
    field could not be cached; the job is refused in one line, exit code 2, before any work."""
    cache = tmp_path / "ro"
    cache.mkdir()
    subprocess.run(["mount", "--bind", str(cache), str(cache)], check=True, timeout=30)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(cache)], check=True, timeout=30)
        out = tmp_path / "out"
        args = ["mpirun", "-n", "2", *single_run(out, "ro")]
        args[args.index(f"diffusion.cache='{out / 'cache-ro'}'")] = f"diffusion.cache='{cache / 'fields'}'"
        args += ["--set", "diffusion.source=lattice"]
        with Job(args) as job:
            rc, text = job.wait(timeout=300)
            assert wait_for(lambda: not tagged(job.tag), timeout=5)
        assert rc == 2
        errors = [ln for ln in text.splitlines() if ln.startswith("error: ")]
        assert errors == [f"error: diffusion.cache: expected a writable directory, got '{cache / 'fields'}' "
                          "(Read-only file system)"], text[-2000:]  # fmt: skip
        assert not out.exists()
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False, timeout=30)


def test_the_users_own_command_works_as_typed_with_more_ranks_than_cores(tmp_path):
    """`mpirun -n N python ...` with N above the number of cores: `python` exists and
    Open MPI allows the oversubscription (docker/mpi-defaults, in the root)."""
    n = (os.cpu_count() or 1) + 2
    code = "from mpi4py import MPI; c = MPI.COMM_WORLD; c.rank or print('ranks', c.size)"
    with Job(["mpirun", "-n", str(n), "python", "-c", code], cwd=tmp_path) as job:
        rc, text = job.wait(timeout=300)
    assert rc == 0, text
    assert f"ranks {n}" in text.splitlines()
    assert "deprecated" not in text.lower()


@pytest.mark.skipif(not shutil.which("script"), reason="needs script(1) for a terminal")
def test_a_shell_on_a_terminal_reads_it_make_shell(tmp_path):
    """On a terminal the job runs in the foreground: an interactive shell reads what is typed."""
    typed = 'echo "inside $FENICSX_ROOT"; python -c "print(6 * 7)"; exit 3\n'
    proc = subprocess.run(["script", "-qec", f"{FENICSX} bash", "/dev/null"], input=typed, text=True,
                          capture_output=True, timeout=120, start_new_session=True, cwd=tmp_path)  # fmt: skip
    lines = [ln.strip() for ln in proc.stdout.replace("\r", "").splitlines()]
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "42" in lines and any(ln.startswith("inside /") for ln in lines), lines


def test_a_bad_suite_name_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([FENICSX, "true"], env={**os.environ, "FENICSX_SUITE": "../etc"}, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert (proc.returncode, proc.stderr) == (
        2, "fenicsx: FENICSX_SUITE: expected a Debian suite name (trixie, sid, ...), got '../etc'\n")


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [ln.split()[4] for ln in lines if (ln.split()[4] + "/").startswith(prefix)]


#: stands in for mmdebstrap: bind-mounts the host's /proc into the target, says so, sleeps
STAND_IN = """#!/bin/sh
target=$1
mkdir -p "$target/proc"
mount --bind /proc "$target/proc"
touch "$MARK"
exec sleep 600
"""


def stand_in_build(tmp_path: Path) -> tuple[Path, Path, dict]:
    """The cache, the mark and the environment of a job whose build is the stand-in."""
    cache = tmp_path / "cache"
    builder = tmp_path / "builder"
    builder.write_text(STAND_IN)
    builder.chmod(0o755)
    mark = tmp_path / "mounted"
    env = {"FENICSX_CACHE": str(cache), "FENICSX_FORCE_ROOT": "1", "FENICSX_BUILDER": str(builder), "MARK": str(mark)}
    return cache, mark, env


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="mounting needs root and unshare")
def test_a_build_killed_midway_leaves_no_mount_on_the_host(tmp_path):
    cache, mark, env = stand_in_build(tmp_path)
    with Job(["true"], env=env) as job:
        assert wait_for(mark.exists, timeout=60), job.proc.communicate()[0] if job.proc.poll() is not None else ""
        os.killpg(job.proc.pid, signal.SIGKILL)
        job.proc.wait(timeout=10)
        assert wait_for(lambda: not tagged(job.tag), timeout=5)
    assert mounts_under(cache) == []
    # the partial build is removed by the next build, which must not cross into the host's /proc
    assert list(cache.glob(".build-*")), "expected the killed build's directory to be left for the next build"
    # and the next one (killed again, while it runs) first removes the old partial build
    mark.unlink()
    with Job(["true"], env=env) as job:
        assert wait_for(mark.exists, timeout=60)
        assert len(list(cache.glob(".build-*"))) == 1
        os.killpg(job.proc.pid, signal.SIGKILL)
        job.proc.wait(timeout=10)
    assert mounts_under(cache) == []
    shutil.rmtree(cache)  # nothing mounted: a plain removal is safe


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="mounting needs root and unshare")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_build_whose_script_alone_is_killed_ends_with_it(tmp_path, sig):
    """`kill PID` of the script while it builds (not its process group): the builder and
    everything it started end at once, not minutes later when the build would be done."""
    cache, mark, env = stand_in_build(tmp_path)
    with Job(["true"], env=env) as job:
        assert wait_for(mark.exists, timeout=60), job.proc.communicate()[0] if job.proc.poll() is not None else ""
        os.kill(job.proc.pid, sig)
        rc = job.proc.wait(timeout=10)
        assert rc == -sig if sig == signal.SIGKILL else rc == 128 + sig
        assert wait_for(lambda: not tagged(job.tag), timeout=5), tagged(job.tag)
    assert mounts_under(cache) == []
    subprocess.run(["rm", "-rf", "--one-file-system", str(cache)], check=True, timeout=60)


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("mmdebstrap") or os.environ.get("FENICSX_TEST_REAL_BUILD") == "0",
    reason="the real build needs root and mmdebstrap (and the Debian archive); FENICSX_TEST_REAL_BUILD=0 skips it",
)
def test_the_real_build_killed_midway_leaves_no_mount_on_the_host(tmp_path):
    """mmdebstrap (root mode) mounts the host's /proc, /sys, /dev/pts and /dev/shm into the
    root while it installs the essential packages: SIGKILL it then."""
    cache = tmp_path / "cache"
    env = {"FENICSX_CACHE": str(cache), "FENICSX_FORCE_ROOT": "1"}
    tmp_before = set(os.listdir("/tmp"))
    with Job(["true"], env=env) as job:

        def installing():
            log = list(cache.glob("build-*.log"))
            return bool(log) and "installing essential packages" in log[0].read_text(errors="replace")

        if not wait_for(installing, timeout=600, step=0.5):
            job.kill_group()
            pytest.fail(f"the build did not reach its install step:\n{job.proc.communicate()[0]}")
        time.sleep(3)
        os.killpg(job.proc.pid, signal.SIGKILL)
        job.proc.wait(timeout=10)
        assert wait_for(lambda: not tagged(job.tag), timeout=5), tagged(job.tag)
    assert mounts_under(cache) == []
    assert not [n for n in set(os.listdir("/tmp")) - tmp_before if n.startswith("mmdebstrap")]  # its temporary files too
    subprocess.run(["rm", "-rf", "--one-file-system", str(cache)], check=True, timeout=120)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
