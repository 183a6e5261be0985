"""The explicit set-up pipeline shared by every discretisation: ordered stages, each timed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def run_stages(stages: Iterable[Callable[[], None]], timings: dict[str, float]) -> None:
    """Call each ``create_<name>`` stage in order; its wall time (s) goes to ``timings[name]``."""
    for stage in stages:
        t0 = time.perf_counter()
        stage()
        timings[stage.__name__.removeprefix("create_")] = time.perf_counter() - t0
