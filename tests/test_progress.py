"""Progress in a batch job's log: whole lines every few seconds, never carriage-return frames."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import jobs
from app.runtime.progress import LineProgress, bar

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_file_gets_a_line_at_most_every_few_seconds():
    out, clock = io.StringIO(), Clock()
    p = LineProgress(62, "solve", "out", stream=out, every=10.0, clock=clock)
    for i in range(62):
        clock.t = i * 0.5  # 31 s in all
        p.set_postfix_str(f"t={i} s h/h0=0.5")
        p.update(1)
    p.write("case 3 done", file=out)
    p.close()
    assert p.n == 62
    assert out.getvalue().splitlines() == [
        "solve: 21/62 out (t=20 s h/h0=0.5), 10 s",
        "solve: 41/62 out (t=40 s h/h0=0.5), 20 s",
        "solve: 61/62 out (t=60 s h/h0=0.5), 30 s",
        "case 3 done",
    ]


def test_a_terminal_keeps_the_bar():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert type(bar(3, "x", "out", stream=Tty())).__name__ == "tqdm"
    assert isinstance(bar(3, "x", "out", stream=io.StringIO()), LineProgress)


@pytest.mark.serial
def test_the_cli_writes_no_frames_into_a_log(tmp_path):
    cmd = [sys.executable, "-m", "app.run", "--single", "--set", "mesh.h_min=6", "--set", "mesh.h_max=40",
           "--set", f"mesh.directory='{tmp_path / 'meshes'}'", "--out", str(tmp_path / "out")]  # fmt: skip
    proc = jobs.run(cmd, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr and "\r" not in proc.stdout
    assert proc.stdout.startswith("run: t_1/2 = ")
