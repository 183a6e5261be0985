"""Subprocesses for tests: each in a session of its own, and on a time-out its whole
process group is killed (never only the direct child), so nothing it started lives on."""

from __future__ import annotations

import os
import signal
import subprocess


def run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(cmd, capture_output=True, text=True, timeout=...)``."""
    return finish(start(cmd, **kwargs), timeout)


def start(cmd: list[str], **kwargs) -> subprocess.Popen:
    """A job in a session of its own, its output captured; end it with :func:`finish`."""
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    )


def finish(proc: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    """Wait for a job from :func:`start`; on a time-out kill its whole process group."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
