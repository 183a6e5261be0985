"""Progress bars for rank 0: tqdm's bar on a terminal; where stderr is a file (a batch job's
log, ``make run > log 2>&1``) a plain line at most every :data:`LINE_EVERY_S` seconds instead,
never carriage-return frames.

Call :func:`bar` on rank 0 only; it returns an object with tqdm's ``n``, ``update``,
``set_postfix_str``, ``write`` and ``close``.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

#: seconds between two progress lines when stderr is not a terminal
LINE_EVERY_S = 10.0


class LineProgress:
    """tqdm's interface, written as whole lines, at most one per ``every`` seconds."""

    def __init__(self, total: int, desc: str, unit: str, stream=None, every: float = LINE_EVERY_S, clock=time.monotonic):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every, self.clock = every, clock
        self.n, self.postfix = 0, ""
        self.start = self.last = clock()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            postfix = f" ({self.postfix})" if self.postfix else ""
            line = f"{self.desc}: {self.n}/{self.total} {self.unit}{postfix}, {now - self.start:.0f} s"
            print(line, file=self.stream, flush=True)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:  # noqa: ARG002  (tqdm's signature)
        self.postfix = s

    def write(self, s: str, file=None) -> None:
        """A message of its own line (tqdm's ``write``: above the bar there), to ``file`` (default stdout)."""
        print(s, file=file if file is not None else sys.stdout, flush=True)

    def close(self) -> None:
        pass


def bar(total: int, desc: str, unit: str, stream=None):
    """A progress bar on ``stream`` (default stderr): tqdm on a terminal, else :class:`LineProgress`."""
    stream = stream if stream is not None else sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(total=total, unit=unit, desc=desc, leave=False, dynamic_ncols=True, file=stream)
    return LineProgress(total, desc, unit, stream)
