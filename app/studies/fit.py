"""Fitting the model to a measured decay: bounded least squares of h(t)/h(0) to the data's,
any numeric configuration key a free parameter, each model evaluation a solve.

    python -m app.run --fit data.csv --vary model.l0=10:60 --vary initial.r0=5:50:20 [--set ...]
    app.fit("data.csv", vary={"model.l0": (10, 60), "initial.r0": (5, 50, 20)}, config=cfg)

The data: a CSV with a header naming the columns ``t_s`` and ``h_over_h0`` (and optionally
``sigma``, one standard deviation of each h), times increasing. A bad file is one line
(:class:`~app.config.ConfigError`) naming the file and the problem.

How a fit runs (:func:`run`):

- The model is solved at the data's times themselves (``solve(times=...)``, the stepper's
  interpolation between its steps) and on a log-spaced grid (``solver.outputs_per_decade``
  from ``solver.t_first``) up to the last of them, for the plot; the solve ends at the last
  data time. Points at t = 0 carry no information (h(0)/h(0) = 1) and are left out.
- A positive parameter is fitted in log space, any other one as the fraction of its range
  (LO to HI): in these coordinates a forward-difference step of :data:`REL_STEP` is a
  relative step of 1e-3, well above the solver's noise (rtol 2e-5; benchmarks/fit.py measured
  it). The start is START, or the bounds' geometric mean (their mean for a range that is not
  positive), never a bound.
- scipy.optimize.least_squares (``trf``) drives the fit on rank 0 only; every evaluation it
  asks for is solved collectively. The Jacobian at a point is the p solves at ``x + dx_j``,
  run concurrently on groups of ``ranks_per_case`` ranks by :func:`app.runtime.scheduler.run_tasks`,
  beside the one at ``x`` that ``fun`` already did (a cache hit). So a fit costs at most
  (nfev) x (p + 1) solves, nfev = iterations + 1 the points least_squares tried.
- Every evaluation is cached, in memory and (with an output directory) on disk in
  ``<out>/fit/evals/<key>.json``, the key a hash of the resolved configuration and the
  times; least_squares is deterministic, so a fit killed part-way retraces its path from the
  cache and solves only what it had not finished.
- Uncertainties: cov = s^2 (J^T J)^-1 in the fit's coordinates, s^2 = residual SS / (n - p)
  without a ``sigma`` column (with one, the residuals are weighted by 1/sigma and s^2 = 1),
  mapped to the parameters (x dv/dz); 1-sigma is the square root of its diagonal, the
  correlation cov_ij / (sigma_i sigma_j); a pair correlated beyond :data:`CORRELATION_WARN`
  gets a warning.
- With the result rank 0 writes ``fit.csv`` (t_s, h_over_h0, h_fit[, sigma][, h_paper]),
  ``fit.png`` (the data, the best fit and the article's ``paper`` form at the same values,
  one more solve, 2D only) and ``run.json`` (``"fit"``: the values, sigmas, correlation,
  residual, solves).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI
from scipy.optimize import least_squares

from app import config as app_config
from app.numerics.solve import solve
from app.render import plotting
from app.runtime import output, scheduler

#: the forward-difference step in the fit's coordinates: log v for a positive parameter
#: (a relative step), else the fraction of its range (benchmarks/fit.py: the solver's noise
#: at rtol 2e-5 is far below it)
REL_STEP = 1e-3
#: a pair of parameters correlated beyond this gets a warning
CORRELATION_WARN = 0.95
#: least_squares' tolerances: a relative change of the cost or of the parameters (in the
#: fit's coordinates) below these ends it
FTOL, XTOL, GTOL = 1e-8, 1e-6, 1e-8
#: at most this many points tried (each a solve, and each accepted one p more)
MAX_NFEV = 60
#: the data file's columns (``sigma`` optional)
T_COL, H_COL, SIGMA_COL = "t_s", "h_over_h0", "sigma"
#: the fit's directory in the output directory
NAME = "fit"


# --- the data ---------------------------------------------------------------------------------


@dataclass
class Data:
    """Measured h(t)/h(0) at times ``t`` (s), with one standard deviation ``sigma`` or None."""

    t: np.ndarray
    h: np.ndarray
    sigma: np.ndarray | None = None
    source: str = "data"

    @property
    def informative(self) -> np.ndarray:
        """The points after t = 0 (at t = 0 the model's h/h0 is 1 whatever its parameters)."""
        return self.t > 0


def read_data(path: str | Path) -> Data:
    """The data file; ConfigError (one line naming the file and the problem) if it is bad."""
    where = f"--fit: {path}"
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise app_config.ConfigError(f"--fit: expected a CSV file of {T_COL}, {H_COL}[, {SIGMA_COL}], got {str(path)!r} "
                                     "(no such file)") from None  # fmt: skip
    except IsADirectoryError:
        raise app_config.ConfigError(f"--fit: expected a CSV file, got {str(path)!r} (a directory)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise app_config.ConfigError(f"--fit: expected a readable UTF-8 CSV file, got {str(path)!r} "
                                     f"({getattr(exc, 'strerror', None) or exc})") from None  # fmt: skip
    lines = [(n, row) for n, row in enumerate(rows, start=1) if row and "".join(row).strip()]
    if not lines:
        raise app_config.ConfigError(f"{where}: expected a header line naming {T_COL} and {H_COL}, got an empty file")
    n0, header = lines[0]
    names = [c.strip() for c in header]
    if T_COL not in names or H_COL not in names:
        raise app_config.ConfigError(f"{where}: line {n0}: expected a header naming the columns {T_COL} and {H_COL} "
                                     f"(and optionally {SIGMA_COL}), got {','.join(header)!r}")  # fmt: skip
    cols = {c: names.index(c) for c in (T_COL, H_COL, SIGMA_COL) if c in names}
    values = []
    for n, row in lines[1:]:
        if len(row) != len(names):
            raise app_config.ConfigError(f"{where}: line {n}: expected {len(names)} values ({','.join(names)}), "
                                         f"got {','.join(row)!r}")  # fmt: skip
        try:
            v = {c: float(row[i]) for c, i in cols.items()}
        except ValueError:
            raise app_config.ConfigError(f"{where}: line {n}: expected numbers, got {','.join(row)!r}") from None
        if not all(math.isfinite(x) for x in v.values()):
            raise app_config.ConfigError(f"{where}: line {n}: expected finite numbers, got {','.join(row)!r}")
        values.append((n, v))
    t = np.array([v[T_COL] for _, v in values])
    h = np.array([v[H_COL] for _, v in values])
    sigma = np.array([v[SIGMA_COL] for _, v in values]) if SIGMA_COL in cols else None
    return check_data(Data(t, h, sigma, str(path)), where, [n for n, _ in values])


def check_data(data: Data, where: str, lines: list[int] | None = None) -> Data:
    """``data`` if its times are >= 0 and increasing and its sigmas positive; else ConfigError."""
    t, h = np.asarray(data.t, dtype=float).ravel(), np.asarray(data.h, dtype=float).ravel()
    sigma = None if data.sigma is None else np.asarray(data.sigma, dtype=float).ravel()
    at = "line" if lines else "point"
    lines = lines or [i + 1 for i in range(t.size)]
    if t.shape != h.shape or (sigma is not None and sigma.shape != t.shape):
        raise app_config.ConfigError(f"{where}: expected as many values of h and sigma as times, got {t.size} times, "
                                     f"{h.size} h" + ("" if sigma is None else f", {sigma.size} sigma"))  # fmt: skip
    for i in range(t.size):
        if not (math.isfinite(t[i]) and math.isfinite(h[i]) and (sigma is None or math.isfinite(sigma[i]))):
            raise app_config.ConfigError(f"{where}: {at} {lines[i]}: expected finite numbers")
        if t[i] < 0:
            raise app_config.ConfigError(f"{where}: {at} {lines[i]}: expected {T_COL} >= 0, got {t[i]:g}")
        if i and t[i] <= t[i - 1]:
            raise app_config.ConfigError(f"{where}: {at} {lines[i]}: expected {T_COL} increasing, got {t[i]:g} "
                                         f"after {t[i - 1]:g}")  # fmt: skip
        if sigma is not None and sigma[i] <= 0:
            raise app_config.ConfigError(f"{where}: {at} {lines[i]}: expected {SIGMA_COL} > 0, got {sigma[i]:g}")
    return Data(t, h, sigma, data.source)


def as_data(data) -> Data:
    """What :func:`fit` accepts as data: a file's path, a :class:`Data`, a dict with the
    columns ``t_s``, ``h_over_h0`` (and ``sigma``), or a tuple (t, h[, sigma])."""
    if isinstance(data, (str, Path)):
        return read_data(data)
    if isinstance(data, Data):
        return check_data(data, "data")
    if isinstance(data, dict):
        missing = [c for c in (T_COL, H_COL) if c not in data]
        if missing:
            raise app_config.ConfigError(f"data: expected the columns {T_COL} and {H_COL}, got {sorted(data)}")
        return check_data(Data(data[T_COL], data[H_COL], data.get(SIGMA_COL)), "data")
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return check_data(Data(*data), "data")
    raise app_config.ConfigError(f"data: expected a CSV path, a dict of columns or (t, h[, sigma]), got {type(data).__name__}")


# --- the parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A configuration key fitted between ``lo`` and ``hi`` from ``start``; in log space when
    the range is positive, else as the fraction of the range."""

    key: str
    lo: float
    hi: float
    start: float

    @property
    def log(self) -> bool:
        return self.lo > 0

    def to_z(self, v: float) -> float:
        return math.log(v) if self.log else (v - self.lo) / (self.hi - self.lo)

    def from_z(self, z: float) -> float:
        v = math.exp(z) if self.log else self.lo + z * (self.hi - self.lo)
        return min(max(v, self.lo), self.hi)  # a bound's round trip through log stays inside

    def dv_dz(self, v: float) -> float:
        return v if self.log else self.hi - self.lo

    def spec(self) -> str:
        return f"{self.key}={self.lo:g}:{self.hi:g}:{self.start:g}"


def parameter(key: str, lo, hi, start=None) -> Parameter:
    """A :class:`Parameter` from its parts; ConfigError if the numbers are not a range with
    the start inside it."""
    where = f"--vary {key}"
    try:
        lo, hi = float(lo), float(hi)
        start = None if start is None else float(start)
    except (TypeError, ValueError):
        raise app_config.ConfigError(f"{where}: expected numbers LO:HI[:START], got {lo}:{hi}"
                                     + ("" if start is None else f":{start}")) from None  # fmt: skip
    if not all(math.isfinite(v) for v in (lo, hi, start if start is not None else 0.0)):
        raise app_config.ConfigError(f"{where}: expected finite numbers, got {lo:g}:{hi:g}"
                                     + ("" if start is None else f":{start:g}"))  # fmt: skip
    if not lo < hi:
        raise app_config.ConfigError(f"{where}: expected LO < HI, got {lo:g}:{hi:g}")
    if start is None:
        start = math.sqrt(lo * hi) if lo > 0 else 0.5 * (lo + hi)
    elif not lo < start < hi:
        raise app_config.ConfigError(f"{where}: expected START inside ({lo:g}, {hi:g}), not on or beyond a bound, got {start:g}")
    return Parameter(key, lo, hi, start)


def parse_vary(text: str) -> Parameter:
    """``KEY=LO:HI[:START]`` (the command line's ``--vary``)."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    parts = rest.split(":")
    if not sep or "." not in key or len(parts) not in (2, 3):
        raise app_config.ConfigError(f"--vary: expected KEY=LO:HI[:START], got {text!r}")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise app_config.ConfigError(f"--vary {key}: expected numbers LO:HI[:START], got {rest!r}") from None
    return parameter(key, *numbers)


def as_parameters(vary) -> list[Parameter]:
    """What :func:`fit` accepts as ``vary``: ``{key: (lo, hi[, start])}`` or ``KEY=LO:HI[:START]`` strings."""
    if isinstance(vary, dict):
        out = []
        for key, spec in vary.items():
            if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
                raise app_config.ConfigError(f"--vary {key}: expected (lo, hi) or (lo, hi, start), got {spec!r}")
            out.append(parameter(key, *spec))
        return out
    if isinstance(vary, str):
        vary = [vary]
    return [p if isinstance(p, Parameter) else parse_vary(p) for p in vary]


# --- the problem: data, parameters, configuration ---------------------------------------------


def _set(data: dict, key: str, value) -> None:
    *path, last = key.split(".")
    node = data
    for part in path:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise app_config.ConfigError(f"--vary {key}: {part!r} is a value, not a section")
    node[last] = value


def layered(files=(), overrides=()) -> dict:
    """The configuration's tables from TOML files and ``--set`` overrides (not yet validated)."""
    data: dict = {}
    for f in files:
        data = app_config.merge(data, app_config.read_toml(f))
    for assignment in overrides:
        app_config.apply_override(data, assignment)
    return data


@dataclass
class Problem:
    """What is fitted: the data, the parameters and the configuration they are laid over."""

    data: Data
    params: list[Parameter]
    base: dict  # the configuration's tables, before the parameters' values
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the model's output times
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # data's informative points in times

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def config_at(self, values) -> app_config.Config:
        """The validated configuration with the parameters at ``values``."""
        merged = json.loads(json.dumps(self.base))
        for p, v in zip(self.params, values, strict=True):
            _set(merged, p.key, float(v))
        merged.setdefault("output", {}).update(progress=False)
        return app_config.validate(merged)

    def start(self) -> list[float]:
        return [p.start for p in self.params]

    def corners(self) -> list[app_config.Config]:
        """The configurations at the start and with each parameter at either bound."""
        out = [self.config_at(self.start())]
        for i, p in enumerate(self.params):
            for v in (p.lo, p.hi):
                values = self.start()
                values[i] = v
                out.append(self.config_at(values))
        return out


def model_times(cfg: app_config.Config, t_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The output times of every evaluation (0, the data's times after 0, and a log-spaced
    grid of ``solver.outputs_per_decade`` from ``solver.t_first`` to the last data time) and
    where the data's times after 0 are among them."""
    t_data = np.asarray(t_data, dtype=float)
    t_max = float(t_data[-1])
    s = cfg.solver
    grid = np.zeros(0)
    if t_max > s.t_first:
        n = max(2, int(round(math.log10(t_max / s.t_first) * s.outputs_per_decade)) + 1)
        grid = np.geomspace(s.t_first, t_max, n)
    times = np.unique(np.concatenate([[0.0], t_data[t_data > 0], grid]))
    return times, np.searchsorted(times, t_data[t_data > 0])


def prepare(data, vary, files=(), overrides=(), base: dict | None = None) -> Problem:
    """The fit's problem, every input checked (ConfigError, one line): the data, the
    parameters (each a real-valued key of the configuration, given once; the configuration
    valid at the start and with each parameter at either bound), more data points after t = 0
    than parameters."""
    data = as_data(data)
    params = as_parameters(vary)
    if not params:
        raise app_config.ConfigError("--vary: expected at least one parameter to fit (KEY=LO:HI[:START]), got none")
    keys = [p.key for p in params]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice:
        raise app_config.ConfigError(f"--vary {twice}: expected each key once, got it twice")
    base = layered(files, overrides) if base is None else json.loads(json.dumps(base))
    defaults = app_config.validate(base).model_dump(mode="json")  # every --set is checked, even one a parameter replaces
    problem = Problem(data, params, base)
    for p in params:  # a key of another type (an optional number is None until set)
        value = app_config.value_at(defaults, p.key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, float)):
            what = "an integer" if isinstance(value, int) and not isinstance(value, bool) else repr(value)
            raise app_config.ConfigError(f"--vary {p.key}: expected a key with a real number as its value, got {what}")
    problem.config_at(problem.start())  # an unknown key fails here, naming it
    for i, p in enumerate(params):
        for v in (p.lo, p.hi):
            values = problem.start()
            values[i] = v
            try:
                problem.config_at(values)
            except app_config.ConfigError as exc:
                raise app_config.ConfigError(f"--vary {p.key}={v:g}: {exc}") from None
    n = int(data.informative.sum())
    if n <= len(params):
        raise app_config.ConfigError(f"--fit: {data.source}: expected more data points after t = 0 than the "
                                     f"{len(params)} fitted parameter(s), got {n}")  # fmt: skip
    problem.times, problem.index = model_times(problem.config_at(problem.start()), data.t)
    return problem


# --- evaluations: solves on groups of ranks, cached -------------------------------------------


def eval_key(cfg: app_config.Config, times: np.ndarray) -> str:
    """An evaluation's identity: its resolved configuration (less ``[output]``) and its times."""
    body = {"config": cfg.model_dump(mode="json", exclude={"output"}), "times": [float(t).hex() for t in times]}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class Evaluator:
    """h(t)/h(0) of configurations at ``times``, each solved once: cached in memory and, with
    a ``directory``, in ``<directory>/<key>.json``. :meth:`evaluate` is collective; the solves
    it needs run concurrently on groups of ``ranks_per_group`` ranks."""

    def __init__(self, comm: MPI.Comm, ranks_per_group: int, times: np.ndarray, directory: Path | None = None):
        self.comm, self.k, self.times, self.directory = comm, ranks_per_group, np.asarray(times, dtype=float), directory
        self.memo: dict[str, np.ndarray] = {}
        self.solved_now = 0  # solves this process made
        self.solved_here = 0  # of those, the ones this rank's group made (on its first rank; 0 elsewhere)
        self.from_disk = 0  # evaluations read from the directory
        self.wall_solves = 0.0  # wall time in rounds of solves

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def _read(self, key: str, cfg: app_config.Config) -> np.ndarray | None:
        try:
            record = json.loads(self._path(key).read_text())
            h = np.array(record["h"], dtype=float)
            if (record["key"] == key and record["config"] == cfg.model_dump(mode="json", exclude={"output"})
                    and np.array_equal(np.array(record["t_s"], dtype=float), self.times)):  # fmt: skip
                return h
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def evaluate(self, configs: list[app_config.Config]) -> list[np.ndarray]:
        """h at ``times`` for each configuration (collective; the same on every rank)."""
        keys = [eval_key(c, self.times) for c in configs]
        todo: dict[str, app_config.Config] = {}
        for key, cfg in zip(keys, configs, strict=True):
            if key not in self.memo:
                todo.setdefault(key, cfg)
        found = {}
        if self.directory is not None and todo:
            if self.comm.rank == 0:
                found = {k: h for k, c in todo.items() if (h := self._read(k, c)) is not None}
            found = self.comm.bcast(found, root=0)
        self.memo.update(found)
        self.from_disk += len(found)
        order = [k for k in todo if k not in found]
        if order:
            t0 = time.perf_counter()
            mine: dict[str, np.ndarray] = {}

            def work(i: int, group: MPI.Comm) -> None:
                key = order[i]
                res = solve(todo[key], group, error_estimate=False, times=self.times)
                if group.rank == 0:
                    self.solved_here += 1
                    mine[key] = np.asarray(res.h, dtype=float)
                    if self.directory is not None:
                        output.write_json(self._path(key), {
                            "key": key, "t_s": self.times, "h": res.h, "wall_s": res.wall_total_s,
                            "steps": int(res.stats["steps_accepted"]), "ranks": res.ranks_solving,
                            "config": todo[key].model_dump(mode="json", exclude={"output"})})  # fmt: skip

            scheduler.run_tasks(self.comm, self.k, len(order), work)
            for part in self.comm.allgather(mine):  # every rank gets the same numbers
                self.memo.update(part)
            self.solved_now += len(order)
            self.wall_solves += time.perf_counter() - t0
        return [self.memo[k] for k in keys]


# --- the fit ----------------------------------------------------------------------------------


@dataclass
class FitResult:
    """What :func:`fit` found. ``values`` and ``sigmas`` (1 sigma, from the Jacobian) are in
    the order of ``keys``; ``correlation`` is their correlation matrix."""

    keys: list[str]
    values: np.ndarray
    sigmas: np.ndarray
    covariance: np.ndarray
    correlation: np.ndarray
    residual_rms: float  # rms of h_fit - h over the data after t = 0
    chi2_reduced: float | None  # with sigmas: sum(((h_fit - h) / sigma)^2) / (n - p)
    solves: int  # the evaluations the fit used (the paper form's not counted)
    solved_now: int  # of every evaluation here (paper form included), those not found in the cache
    nfev: int  # points least_squares tried (the start included): iterations + 1
    njev: int  # Jacobians (p solves each)
    status: int
    message: str
    data: Data
    h_fit: np.ndarray  # the best fit at the data's times (1 at t = 0)
    t_model: np.ndarray  # the model's output times
    h_model: np.ndarray  # the best fit there
    config: app_config.Config  # the configuration at the best values
    params: list[Parameter]
    h_paper_model: np.ndarray | None = None  # the article's paper form at the best values, at t_model
    paper_note: str = ""
    warnings: list[str] = field(default_factory=list)
    wall_s: float = float("nan")
    ranks: int = 1
    ranks_per_case: int = 1

    @property
    def iterations(self) -> int:
        return self.nfev - 1

    @property
    def parameters(self) -> dict[str, dict[str, float]]:
        """``{key: {"value": v, "sigma": s}}``."""
        return {k: {"value": float(v), "sigma": float(s)} for k, v, s in zip(self.keys, self.values, self.sigmas, strict=True)}

    @property
    def h_paper(self) -> np.ndarray | None:
        """The paper form at the data's times, or None."""
        if self.h_paper_model is None:
            return None
        return np.interp(self.data.t, self.t_model, self.h_paper_model)

    def correlation_dict(self) -> dict[str, dict[str, float]]:
        return {a: {b: float(self.correlation[i, j]) for j, b in enumerate(self.keys)} for i, a in enumerate(self.keys)}

    def summary(self) -> dict:
        """run.json's ``"fit"``."""
        params = self.parameters
        for p in self.params:
            params[p.key].update(lo=p.lo, hi=p.hi, start=p.start, scale="log" if p.log else "linear")
        n = int(self.data.informative.sum())
        return {
            "parameters": params,
            "correlation": self.correlation_dict(),
            "residual_rms": self.residual_rms,
            "chi2_reduced": self.chi2_reduced,
            "weighted": self.data.sigma is not None,
            "points": n,
            "solves": self.solves,
            "solved_now": self.solved_now,
            "iterations": self.iterations,
            "nfev": self.nfev,
            "njev": self.njev,
            "solve_bound": (self.iterations + 1) * (len(self.keys) + 1),
            "status": self.status,
            "message": self.message,
            "rel_step": REL_STEP,
            "paper_form": self.paper_note,
            "warnings": self.warnings,
            "data": self.data.source,
            "wall_s": self.wall_s,
            "ranks": self.ranks,
            "ranks_per_case": self.ranks_per_case,
        }

    def columns(self) -> dict[str, np.ndarray]:
        """fit.csv's columns."""
        out = {T_COL: self.data.t, H_COL: self.data.h, "h_fit": self.h_fit}
        if self.data.sigma is not None:
            out[SIGMA_COL] = self.data.sigma
        if self.h_paper_model is not None:
            out["h_paper"] = self.h_paper
        return out


def correlation_warnings(keys: list[str], corr: np.ndarray, limit: float = CORRELATION_WARN) -> list[str]:
    out = []
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            c = corr[i, j]
            if not math.isfinite(c) or abs(c) > limit:
                out.append(f"{keys[i]} and {keys[j]} are correlated (correlation {c:+.3f}, beyond +-{limit:g}): the data "
                           f"hardly tell them apart; fix one of them (--set) or fit data that separate them")  # fmt: skip
    return out


def uncertainties(problem: Problem, z: np.ndarray, jac: np.ndarray, residual: np.ndarray):
    """(covariance, sigmas, correlation) of the parameters at the fit's coordinates ``z``,
    from the Jacobian ``jac`` of the (weighted) residuals there."""
    n, p = jac.shape
    s2 = 1.0 if problem.data.sigma is not None else float(residual @ residual) / max(n - p, 1)
    cov_z = s2 * np.linalg.pinv(jac.T @ jac)
    if np.linalg.matrix_rank(jac) < p:
        cov_z = np.full((p, p), np.nan)
    scale = np.array([q.dv_dz(q.from_z(zi)) for q, zi in zip(problem.params, z, strict=True)])
    cov = cov_z * np.outer(scale, scale)
    sig = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sig, sig)
    return cov, sig, corr


def _say(comm: MPI.Comm, quiet: bool, line: str, err: bool = False) -> None:
    if comm.rank == 0 and not (quiet and not err):
        print(line, file=sys.stderr if err else sys.stdout, flush=True)


def run(problem: Problem, comm: MPI.Comm = MPI.COMM_WORLD, ranks_per_case: int = 1, cache: Path | None = None,
        rel_step: float = REL_STEP, quiet: bool = False, paper: bool = True) -> FitResult:  # fmt: skip
    """Fit (collective on ``comm``): least_squares on rank 0, every solve it asks for on
    groups of ``ranks_per_case`` ranks, evaluations cached in ``cache`` (a directory) if given."""
    t_start = time.perf_counter()
    problem_line = scheduler.check_group_size(comm, ranks_per_case)
    if problem_line:
        raise app_config.ConfigError(problem_line)
    ev = Evaluator(comm, ranks_per_case, problem.times, cache)
    data, params = problem.data, problem.params
    sel = data.informative
    y = data.h[sel]
    w = np.ones_like(y) if data.sigma is None else 1.0 / data.sigma[sel]
    lb = np.array([p.to_z(p.lo) for p in params])
    ub = np.array([p.to_z(p.hi) for p in params])
    z0 = np.array([p.to_z(p.start) for p in params])
    names = ", ".join(problem.keys)
    _say(comm, quiet, f"fit: {len(params)} parameter(s) ({names}) to {y.size} points of {data.source}, "
                      f"on {comm.size // ranks_per_case} group(s) of {ranks_per_case} rank(s)")  # fmt: skip

    def config_of(z) -> app_config.Config:
        return problem.config_at([p.from_z(zi) for p, zi in zip(params, z, strict=True)])

    used: set[str] = set()  # rank 0: the evaluations least_squares asked for

    def evaluate(cfgs: list[app_config.Config]) -> list[np.ndarray]:  # collective
        return [h[problem.index] for h in ev.evaluate(cfgs)]

    def residual_from(h: np.ndarray) -> np.ndarray:
        return (h - y) * w

    # the driver: rank 0 runs least_squares; every rank evaluates what it asks for
    count = {"fun": 0}

    def fun(z):
        (h,) = request([np.array(z, dtype=float)])
        r = residual_from(h)
        count["fun"] += 1
        values = ", ".join(f"{p.key}={p.from_z(zi):.6g}" for p, zi in zip(params, z, strict=True))
        _say(comm, quiet, f"fit: point {count['fun']} [{values}]: residual rms {np.sqrt(np.mean((h - y) ** 2)):.3g} "
                          f"({len(used)} solves)")  # fmt: skip
        return r

    def steps(z) -> np.ndarray:
        dz = np.full(len(params), rel_step)
        return np.where(z + dz > ub, -dz, dz)  # backward at the upper bound: never beyond it

    def jac(z, f=None):
        z = np.array(z, dtype=float)
        dz = steps(z)
        points = [z] + [z + dz[j] * np.eye(len(params))[j] for j in range(len(params))]
        hs = request(points)
        base = residual_from(hs[0])
        return np.column_stack([(residual_from(hs[j + 1]) - base) / dz[j] for j in range(len(params))])

    def request(points):  # rank 0: the configurations (ConfigError here, before any collective), then solve
        cfgs = [config_of(z) for z in points]
        used.update(eval_key(c, problem.times) for c in cfgs)
        tell(("eval", cfgs))
        return evaluate(cfgs)

    def tell(message) -> None:  # rank 0 to the others, which wait asleep (least_squares' own work is rank 0's)
        if comm.size > 1:
            scheduler.sleeping_barrier(comm)
            comm.bcast(message, root=0)

    outcome = None
    if comm.rank == 0:
        try:
            res = least_squares(fun, z0, jac=jac, bounds=(lb, ub), method="trf", ftol=FTOL, xtol=XTOL, gtol=GTOL,
                                max_nfev=MAX_NFEV)  # fmt: skip
            outcome = ("done", res, len(used))
        except BaseException as exc:
            tell(("failed", f"{type(exc).__name__} on rank 0"))
            raise
        tell(outcome)
    else:
        while True:
            scheduler.sleeping_barrier(comm)
            msg = comm.bcast(None, root=0)
            if msg[0] == "eval":
                evaluate(msg[1])
            elif msg[0] == "failed":
                raise RuntimeError(f"the fit failed: {msg[1]}")
            else:
                outcome = msg
                break
    _, res, fit_solves = outcome
    z = np.asarray(res.x, dtype=float)
    values = np.array([p.from_z(zi) for p, zi in zip(params, z, strict=True)])
    best = problem.config_at(values)
    (h_model,) = ev.evaluate([best])  # a cache hit: least_squares' x is a point it evaluated
    h_at = h_model[problem.index]
    cov, sig, corr = uncertainties(problem, z, np.asarray(res.jac, dtype=float), residual_from(h_at))
    h_fit = np.ones_like(data.t)
    h_fit[sel] = h_at
    n, p = y.size, len(params)
    chi2 = float(np.sum(((h_at - y) * w) ** 2) / max(n - p, 1)) if data.sigma is not None else None
    warnings = correlation_warnings(problem.keys, corr)
    if res.status <= 0:
        warnings.append(f"least_squares did not converge: {res.message}")
    for i, q in enumerate(params):
        if np.isclose(z[i], lb[i], atol=1e-9) or np.isclose(z[i], ub[i], atol=1e-9):
            warnings.append(f"{q.key} ended on a bound ({values[i]:g} in [{q.lo:g}, {q.hi:g}]): its sigma is not meaningful")
    h_paper, note = None, ""
    if paper:
        h_paper, note = paper_form(best, ev)
    for line in warnings:
        _say(comm, quiet, f"warning: {line}", err=True)
    return FitResult(
        keys=problem.keys, values=values, sigmas=sig, covariance=cov, correlation=corr,
        residual_rms=float(np.sqrt(np.mean((h_at - y) ** 2))), chi2_reduced=chi2, solves=fit_solves,
        solved_now=ev.solved_now, nfev=int(res.nfev), njev=int(res.njev or 0), status=int(res.status),
        message=str(res.message), data=data, h_fit=h_fit, t_model=problem.times, h_model=h_model, config=best,
        params=params, h_paper_model=h_paper, paper_note=note, warnings=warnings,
        wall_s=time.perf_counter() - t_start, ranks=comm.size, ranks_per_case=ranks_per_case,
    )  # fmt: skip


def paper_config(cfg: app_config.Config) -> tuple[app_config.Config | None, str]:
    """``cfg`` in the article's paper form, or None and why not."""
    if cfg.domain.geometry != "disk":
        return None, f"omitted: the paper form is 2D (domain.geometry = {cfg.domain.geometry!r})"
    if cfg.diffusion.form == "paper":
        return None, "omitted: the fitted model is the paper form"
    data = cfg.model_dump(mode="json", exclude_unset=True)
    data.setdefault("diffusion", {})["form"] = "paper"
    try:
        return app_config.validate(data), "solved at the best values with diffusion.form = 'paper'"
    except app_config.ConfigError as exc:
        return None, f"omitted: {exc}"


def paper_form(best: app_config.Config, ev: Evaluator) -> tuple[np.ndarray | None, str]:
    """The article's paper form at the best values (one more solve, cached), and a note."""
    cfg, note = paper_config(best)
    if cfg is None:
        return None, note
    (h,) = ev.evaluate([cfg])
    return h, note


# --- the files --------------------------------------------------------------------------------


def write(result: FitResult, out: Path, versions: dict | None = None) -> Path:
    """``<out>/fit/``: fit.csv, fit.png and run.json (rank 0)."""
    d = Path(out) / NAME
    output.write_csv(d / "fit.csv", result.columns())
    title = "; ".join(f"{k} = {v:.4g} ± {s:.2g}" for k, v, s in zip(result.keys, result.values, result.sigmas, strict=True))
    plotting.fit(result.data.t, result.data.h, result.data.sigma, result.t_model, result.h_model,
                 result.h_paper_model, d / "fit.png", title,
                 note=None if result.h_paper_model is not None else f"paper form {result.paper_note}")  # fmt: skip
    output.write_json(d / "run.json", {
        "fit": result.summary(), "config": result.config.model_dump(mode="json"), "versions": versions or {},
        "curves": {"t_s": result.t_model, "h_fit": result.h_model, "h_paper": result.h_paper_model}})  # fmt: skip
    return d


def fit(data, vary, config=None, *, comm: MPI.Comm | None = None, ranks_per_case: int = 1, out: str | Path | None = None,
        quiet: bool = True, rel_step: float = REL_STEP) -> FitResult:  # fmt: skip
    """Fit the model's h(t)/h(0) to ``data`` (collective on ``comm``, default MPI.COMM_WORLD).

    ``data``: a CSV path (columns t_s, h_over_h0[, sigma]), a dict of those columns or a tuple
    (t, h[, sigma]). ``vary``: ``{"model.l0": (10, 60), "initial.r0": (5, 50, 20)}`` (lo, hi and
    an optional start) or ``["model.l0=10:60", ...]``. ``config``: an :class:`app.config.Config`,
    a list of ``"section.key=value"`` overrides, or None (the defaults). With ``out`` the
    evaluations are cached in ``<out>/fit/evals/`` (a re-run resumes) and fit.csv, fit.png
    and run.json are written there, as the command line does. ConfigError for bad input.
    """
    comm = comm or MPI.COMM_WORLD
    if isinstance(config, app_config.Config):
        problem = prepare(data, vary, base=config.model_dump(mode="json", exclude_unset=True))
    elif isinstance(config, dict):
        problem = prepare(data, vary, base=config)
    else:
        problem = prepare(data, vary, overrides=list(config or []))
    cache = None if out is None else Path(out) / NAME / "evals"
    result = run(problem, comm, ranks_per_case, cache=cache, quiet=quiet, rel_step=rel_step)
    if out is not None:
        versions = output.versions()  # every rank: it may initialise PETSc, a collective
        if comm.rank == 0:
            write(result, Path(out), versions)
        comm.barrier()
    return result


#: what the command line prints at the end
def report_line(result: FitResult, out_dir: Path) -> str:
    values = ", ".join(f"{k} = {v:.5g} ± {s:.2g}" for k, v, s in zip(result.keys, result.values, result.sigmas, strict=True))
    return (f"fit: {values}; residual rms {result.residual_rms:.3g}; {result.solves} solves "
            f"({result.solved_now} new) in {result.nfev} points, {result.wall_s:.1f} s -> {out_dir / NAME}")


__all__ = ["Data", "FitResult", "Parameter", "fit", "prepare", "read_data", "run", "write"]
