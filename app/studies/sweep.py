"""Parameter studies: a sweep is a preset whose ``[sweep]`` table says which configuration
keys vary; its cases run concurrently on groups of MPI ranks and survive being killed.

A sweep file (in ``app/studies/presets/`` or the user's own) holds::

    [sweep]
    title = "t_1/2 against B0"
    vary = { "model.B0" = { log = [0.01, 5.0], n = 12 } }   # any key: a list, {log|lin = [a, b], n = N}
    combine = "product"              # several keys: their product, or "zip" (equal lengths)
    forms = ["tensor", "paper"]      # optional: diffusion.form of every case (product)
    states = [0.5, 0.0]              # optional: model.electron_sz of every case (product)
    x = "model.B0"                   # the plot's x axis (default: the first varied key)
    experiments = true               # draw the measured decay times of MODEL.md section 9
                                     # (or a list of references to draw: ["Makhonin"])
    [config]                         # laid over the configuration of every case

Each case's configuration is, last wins: defaults, ``--config``, ``[config]``, ``--quick``,
``--set``, the case's own values. A case is identified by a hash of its resolved
configuration (less ``[output]``); its result is written atomically to
``<out>/<name>/cases/<key>.json`` the moment it is finished, so a re-run of the same sweep
solves only the cases without a valid file (a job killed by a wall-time limit loses only
the cases in flight; ``--force`` solves them all again). The cases are handed out by
:mod:`app.runtime.scheduler` to groups of ``--ranks-per-case`` ranks. At the end rank 0 writes
``sweep.csv`` (one row per case), ``run.json`` and ``<name>.png``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from mpi4py import MPI
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from app import config as app_config
from app import lattice
from app.numerics.solve import solve
from app.physics.observables import T_1E, T_HALF, fit_constant_d
from app.render import plotting
from app.runtime import output, scheduler
from app.runtime.progress import bar as progress_bar
from app.studies.preset import fit_quick_mesh, layered

#: h(t)/h(0) reported at these times (s) in every row of sweep.csv
PROBE_TIMES = (1.0, 10.0, 100.0, 1000.0)
#: what a case reports besides its parameters: decay times, h at the probe times, the
#: constant D of MODEL.md section 5's exact formula fitted to h/h0 in [0.05, 0.95]
#: (nm^2/s), the lattice D at the dot centre (nm^2/s; with lattice rates; GaAs: 75As's), steps, wall time
RESULT_COLUMNS = (T_HALF, T_1E, *(f"h_at_{t:g}s" for t in PROBE_TIMES), "D_eff_formula", "D_centre",
                  "steps", "wall_s")  # fmt: skip
#: what a case with a pump phase (MODEL.md 12) reports besides: h / h_sat at the end of the pump,
#: u at the centre there and the pumped profile's width (nm, its second moment); its decay
#: times count from the end of the pump
PUMP_COLUMNS = ("h_over_hsat_reached", "u_centre_reached", "width_nm")
FORM_KEY, STATE_KEY = "diffusion.form", "model.electron_sz"


class Span(BaseModel):
    """``{log = [a, b], n = N}`` or ``{lin = [a, b], n = N}``: N values from a to b."""

    model_config = ConfigDict(extra="forbid")

    log: tuple[float, float] | None = None
    lin: tuple[float, float] | None = None
    n: int

    @model_validator(mode="after")
    def _one_range(self) -> Span:
        if (self.log is None) == (self.lin is None):
            raise PydanticCustomError("cross", "expected one of log = [a, b] or lin = [a, b], with n")
        if self.n < 1:
            raise PydanticCustomError("cross", f"expected n >= 1 values, got {self.n}")
        a, b = self.log or self.lin
        if not (math.isfinite(a) and math.isfinite(b)):
            raise PydanticCustomError("cross", f"expected finite ends, got {[a, b]}")
        if self.log is not None and not (a > 0 and b > 0):
            raise PydanticCustomError("cross", f"expected a log range of positive numbers, got {[a, b]}")
        return self

    def values(self) -> list[float]:
        if self.n == 1:
            return [float((self.log or self.lin)[0])]
        if self.log is not None:
            return [float(v) for v in np.geomspace(*self.log, self.n)]
        return [float(v) for v in np.linspace(*self.lin, self.n)]


def _span(key: str, values: dict) -> Span:
    try:
        return Span.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(["sweep.vary", key, *map(str, err["loc"])])
        if err["type"] == "cross":
            text = f"{where}: {err['msg']}"
        elif err["type"] == "missing":
            text = f"{where}: expected a value, got none"
        else:
            text = app_config._describe({**err, "loc": ("sweep", "vary", key, *err["loc"])})
        raise PydanticCustomError("cross", text) from None


class Metric(BaseModel):
    """A panel of the tornado chart: ``column`` of the cases where the ``where`` keys have
    these values (keys of ``for_each``, the form or the state)."""

    model_config = ConfigDict(extra="forbid")

    column: Literal["t_half_s", "t_1e_s", "D_eff_formula", "D_centre"]
    where: dict[str, Any] = {}
    label: str


class SweepSpec(BaseModel):
    """The ``[sweep]`` table."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sweep"] = "sweep"
    title: str
    article: str = ""
    vary: dict[str, Any] = {}  # key -> a list of values, or a Span (checked below)
    combine: Literal["product", "zip", "one_at_a_time"] = "product"
    for_each: dict[str, list] = {}  # a product over every case (e.g. the fields of a sensitivity study)
    metrics: list[Metric] = []  # one_at_a_time: the tornado chart's panels
    forms: list[Literal["paper", "conservative", "tensor", "master"]] = []
    states: list[Literal[0.5, -0.5, 0.0]] = []
    x: str | None = None
    experiments: bool | list[str] = False

    @property
    def compare_form(self) -> None:  # what run.py asks of every preset
        return None

    @model_validator(mode="after")
    def _axes(self) -> SweepSpec:
        for key, values in self.vary.items():
            if "." not in key:
                raise PydanticCustomError("cross", f"sweep.vary: expected section.key, got {key!r}")
            if isinstance(values, dict):
                self.vary[key] = _span(key, values)
            elif not isinstance(values, list):
                raise PydanticCustomError(
                    "cross", f"sweep.vary.{key}: expected a list of values or {{log|lin = [a, b], n = N}}, got {values!r}"
                )
            elif not values:
                raise PydanticCustomError("cross", f"sweep.vary.{key}: expected at least one value, got []")
        for key, values in self.for_each.items():
            if "." not in key or not values:
                raise PydanticCustomError("cross", f"sweep.for_each.{key}: expected section.key = [values], got {values!r}")
        if self.combine == "one_at_a_time" and not self.metrics:
            raise PydanticCustomError("cross", "sweep.metrics: expected the tornado chart's panels with one_at_a_time, got none")
        for m in self.metrics:
            if set(m.where) - set(self.axes()):
                raise PydanticCustomError(
                    "cross", f"sweep.metrics: {m.label!r}: expected where-keys among {self.axes()}, got {sorted(m.where)}"
                )
        if not self.vary and not self.forms and not self.states:
            raise PydanticCustomError("cross", "sweep.vary: expected at least one key to vary, got none")
        if self.combine == "zip" and len({len(self._values(k)) for k in self.vary}) > 1:
            lengths = {k: len(self._values(k)) for k in self.vary}
            raise PydanticCustomError("cross", f"sweep.combine: expected keys of equal length for 'zip', got {lengths}")
        if self.x is not None and self.x not in self.axes():
            raise PydanticCustomError("cross", f"sweep.x: expected one of the varied keys {self.axes()}, got {self.x!r}")
        return self

    def _values(self, key: str) -> list:
        v = self.vary[key]
        return v.values() if isinstance(v, Span) else list(v)

    def axes(self) -> list[str]:
        """Every varied key, in order: ``vary``'s, then the form, then the electron state."""
        return [*self.vary, *self.for_each, *([FORM_KEY] if self.forms else []), *([STATE_KEY] if self.states else [])]

    def x_key(self) -> str:
        return self.x or self.axes()[0]

    def cases(self) -> list[dict]:
        """The parameters of every case ({key: value}), in a fixed order. With
        ``one_at_a_time`` the first cases are the configuration as it is (the baseline),
        then each varied key alone takes each of its values."""
        keys = list(self.vary)
        columns = [self._values(k) for k in keys]
        if self.combine == "one_at_a_time":
            base = [{}] + [{k: v} for k, col in zip(keys, columns, strict=True) for v in col]
        else:
            rows = zip(*columns, strict=True) if self.combine == "zip" else itertools.product(*columns)
            base = [dict(zip(keys, r, strict=True)) for r in rows]
        extra = [[(k, v) for v in values] for k, values in self.for_each.items()]
        if self.forms:
            extra.append([(FORM_KEY, f) for f in self.forms])
        if self.states:
            extra.append([(STATE_KEY, s) for s in self.states])
        return [{**b, **dict(e)} for b in base for e in itertools.product(*extra)]


@dataclass
class Sweep:
    name: str
    spec: SweepSpec
    base: dict
    cases: list[dict] = field(default_factory=list)  # parameters of each case
    configs: list[app_config.Config] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    varied: list[str | None] = field(default_factory=list)  # one_at_a_time: the key a case changes
    ranks_per_case: int = 1
    force: bool = False
    measured: list[dict] | None = None  # the user's points (--measured), drawn on the plot

    @property
    def columns(self) -> tuple[str, ...]:
        """What each case reports: :data:`RESULT_COLUMNS`, and :data:`PUMP_COLUMNS` when a case pumps."""
        return RESULT_COLUMNS + (PUMP_COLUMNS if any(c.pump.active for c in self.configs) else ())


def from_data(name: str, data: dict) -> Sweep:
    """A sweep from a preset file's tables; ConfigError if bad."""
    where = f"sweep {name}"
    unknown = set(data) - {"sweep", "config"}
    if unknown:
        raise app_config.ConfigError(f"{where}: unknown table [{sorted(unknown)[0]}]")
    try:
        spec = SweepSpec.model_validate(data["sweep"])
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise app_config.ConfigError(f"{where}: {app_config._describe({**err, 'loc': ('sweep', *err['loc'])})}") from None
    if not isinstance(data.get("config", {}), dict):
        raise app_config.ConfigError(f"{where}: config: expected a table ([config]), got {data['config']!r}")
    return Sweep(name, spec, data.get("config", {}), spec.cases())


def _set(data: dict, key: str, value) -> None:
    *path, last = key.split(".")
    node = data
    for part in path:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise app_config.ConfigError(f"sweep.vary: {key}: {part!r} is a value, not a section")
    node[last] = value


def read_measured(path: str) -> list[dict]:
    """The user's measurements for a sweep's plot: a CSV with a header line and rows of
    (parameter value, time in s[, label]); ConfigError (one line) if it is not that."""
    import csv

    where = f"--measured: expected a CSV of (parameter, time in s[, label]) rows after a header, got {path!r}"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise app_config.ConfigError(f"{where} (no such file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise app_config.ConfigError(f"{where} ({getattr(exc, 'strerror', None) or exc})") from None
    points = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            x, t = float(row[0]), float(row[1])
        except (ValueError, IndexError):
            raise app_config.ConfigError(f"{where} (line {n}: {','.join(row)!r})") from None
        if not (math.isfinite(x) and math.isfinite(t) and t > 0):
            raise app_config.ConfigError(f"{where} (line {n}: a time must be a positive number)")
        points.append({"x": x, "t_s": t, "label": row[2].strip() if len(row) > 2 else ""})
    if not points:
        raise app_config.ConfigError(f"{where} (no rows)")
    return points


def label(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def case_key(cfg: app_config.Config) -> str:
    """What identifies a case: a hash of its resolved configuration, less ``[output]``."""
    body = cfg.model_dump(mode="json", exclude={"output"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


#: what no rate depends on when no electron acts (s = 0 and no pump phase): the field and the
#: electron's g factor enter only through the electron's terms (MODEL.md 3)
ELECTRON_ONLY = ("B0", "g_e")


def answer_key(cfg: app_config.Config) -> str:
    """What decides a case's answer: :func:`case_key`, less B0 and g_e when no electron acts at
    any time (the singlet with no pump), so that a sweep over B0 solves its singlet once."""
    if cfg.model.electron_sz != 0 or cfg.pump.active:
        return case_key(cfg)
    body = cfg.model_dump(mode="json", exclude={"output"})
    for key in ELECTRON_ONLY:
        body["model"].pop(key)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def resolve(sweep: Sweep, files=(), overrides=(), quick: bool = False) -> Sweep:
    """Validate every case's configuration (ConfigError names the sweep and the case)."""
    data = layered(sweep.base, files, overrides, quick)
    app_config.validate(data)  # every --set is checked, even one that every case replaces
    sweep.configs, sweep.keys, sweep.varied = [], [], []
    seen: dict[str, str] = {}
    for i, params in enumerate(sweep.cases):
        merged = copy.deepcopy(data)
        for key, value in params.items():
            _set(merged, key, value)
        if quick:  # a case may vary the radius
            fit_quick_mesh(merged)
        merged.setdefault("output", {}).update(name=sweep.name, progress=False)
        try:
            cfg = app_config.validate(merged)
        except app_config.ConfigError as exc:
            raise app_config.ConfigError(f"sweep {sweep.name} [{label(params)}]: {exc}") from None
        key = case_key(cfg)
        if key in seen:
            raise app_config.ConfigError(
                f"sweep {sweep.name}: expected distinct cases, got [{label(params)}] equal to [{seen[key]}]"
            )
        seen[key] = label(params)
        sweep.configs.append(cfg)
        sweep.keys.append(key)
        sweep.varied.append(next((k for k in params if k in sweep.spec.vary), None))
        dump = cfg.model_dump(mode="json")  # every axis's value, also where the case keeps the configuration's
        sweep.cases[i] = {a: params[a] if a in params else app_config.value_at(dump, a) for a in sweep.spec.axes()}
    return sweep



# --- running ----------------------------------------------------------------------------------


def _case_path(out: Path, sweep: Sweep, i: int) -> Path:
    return out / sweep.name / "cases" / f"{sweep.keys[i]}.json"


def finished(path: Path, key: str, cfg: app_config.Config, columns=RESULT_COLUMNS) -> dict | None:
    """The record in ``path`` if it is this case's (same key, same configuration, every
    result column: an older version's file is solved again), else None."""
    try:
        record = json.loads(path.read_text())
        if (record["key"] == key and record["config"] == cfg.model_dump(mode="json", exclude={"output"})
                and all(c in record for c in columns)):  # fmt: skip
            return record
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def probe(times, h, t: float) -> float:
    """h(t)/h(0) at ``t`` (linear in log t between outputs); nan beyond the solve."""
    times, h = np.asarray(times), np.asarray(h)
    sel = times > 0
    if t > times[-1] or not sel.any():
        return float("nan")
    return float(np.interp(np.log(t), np.log(times[sel]), h[sel]))


def solve_case(cfg: app_config.Config, comm) -> dict:
    """One case on ``comm`` (:func:`app.solve`, on fewer of its ranks if it is small): its decay
    times, h at the probe times, steps and wall time, on every rank."""
    res = solve(cfg, comm, error_estimate=False)
    row = dict(res.decay)
    row.update({f"h_at_{t:g}s": probe(res.t, res.h, t) for t in PROBE_TIMES})
    r0 = cfg.initial.r0
    if res.pump is not None:  # decay times from the end of the pump; the formula's r0: the pumped width
        p = res.pump.record
        row.update(h_over_hsat_reached=p["h_over_hsat_reached"], u_centre_reached=p["u_centre"], width_nm=p["width_nm"])
        r0 = p["width_nm"]
    row["D_eff_formula"] = fit_constant_d(res.t, res.h, cfg.model.l0, r0)
    row["D_centre"] = float("nan")
    if cfg.diffusion.source == "lattice":  # the real crystal: 75As's, the isotope with the largest share of h
        isotope = lattice.isotopes(cfg.model)[0].name if cfg.model.crystal != "article" else None
        row["D_centre"] = float(lattice.isotropic(lattice.diffusion_tensor(np.zeros((1, 2)), cfg.model, isotope))[0])
    row.update(steps=int(res.stats["steps_accepted"]), wall_s=res.wall_total_s, ranks=res.ranks_solving)
    return row


def run(sweep: Sweep, out: Path, comm=MPI.COMM_WORLD, quick: bool = False) -> dict:
    """Solve the cases not finished yet, then write the sweep's table, plot and run.json."""
    t0 = time.perf_counter()
    n = len(sweep.configs)
    todo = None
    if comm.rank == 0:
        todo = [i for i in range(n) if sweep.force
                or finished(_case_path(out, sweep, i), sweep.keys[i], sweep.configs[i], sweep.columns) is None]  # fmt: skip
    todo = comm.bcast(todo, root=0)
    by_answer: dict[str, list[int]] = {}  # one solve per distinct answer: each case of it gets the result
    for i in todo:
        by_answer.setdefault(answer_key(sweep.configs[i]), []).append(i)
    tasks = list(by_answer.values())
    if comm.rank == 0:
        distinct = f" ({len(tasks)} distinct: without the electron B0 and g_e do not act)" if len(tasks) < len(todo) else ""
        print(f"{sweep.name}: {n} cases, {n - len(todo)} already finished, {len(todo)} to solve{distinct} on "
              f"{comm.size // sweep.ranks_per_case} group(s) of {sweep.ranks_per_case} rank(s)", flush=True)  # fmt: skip
    versions = output.versions()  # every rank: it may initialise PETSc, a collective

    def work(j: int, group) -> dict:
        row = solve_case(sweep.configs[tasks[j][0]], group)
        if group.rank == 0:
            for i in tasks[j]:
                record = {"key": sweep.keys[i], "params": sweep.cases[i], **row, "versions": versions,
                          "config": sweep.configs[i].model_dump(mode="json", exclude={"output"})}  # fmt: skip
                output.write_json(_case_path(out, sweep, i), record)
        return row

    bar = None
    if comm.rank == 0 and tasks:  # the overall bar (stderr, on a terminal): moves when rank 0's group ends a case
        bar = progress_bar(len(tasks), sweep.name, "case")

    def done(j: int, row: dict, n_done: int) -> None:  # the group's first rank: its own line
        i, same = tasks[j][0], len(tasks[j]) - 1
        also = f" (and {same} equal case{'s' if same > 1 else ''})" if same else ""
        line = (f"{sweep.name}: case {i + 1}/{n} [{label(sweep.cases[i])}]{also}: t_1/2 = {row[T_HALF]:.4g} s, "
                f"{row['wall_s']:.1f} s wall, {len(tasks) - n_done} left")  # fmt: skip
        if bar is not None:
            bar.update(n_done - bar.n)
            bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    try:
        scheduler.run_tasks(comm, sweep.ranks_per_case, len(tasks), work, done)
    finally:
        if bar is not None:
            bar.close()
    info: dict = {}
    if comm.rank == 0:
        info = report(sweep, out, versions, time.perf_counter() - t0, comm.size, solved=len(todo))
    info = comm.bcast(info, root=0)
    info.update(name=sweep.name, title=sweep.spec.title, kind="sweep", article=sweep.spec.article,
                wall_s=time.perf_counter() - t0, quick=quick, ranks=comm.size)  # fmt: skip
    return info


def report(sweep: Sweep, out: Path, versions: dict, wall: float, ranks: int, solved: int) -> dict:
    """sweep.csv, run.json and the plot from the case files (rank 0)."""
    d = out / sweep.name
    rows = []
    for i in range(len(sweep.configs)):
        record = finished(_case_path(out, sweep, i), sweep.keys[i], sweep.configs[i], sweep.columns)
        if record is None:
            raise RuntimeError(f"sweep {sweep.name}: case {label(sweep.cases[i])} has no result file")
        rows.append(record)
    axes = sweep.spec.axes()
    columns = sweep.columns
    header = [*axes, *columns, "key"]
    table = [[r["params"][a] for a in axes] + [r[c] for c in columns] + [r["key"]] for r in rows]
    output.write_table(d / "sweep.csv", header, table)
    x = sweep.spec.x_key()
    cases = [{"params": r["params"], **{c: r[c] for c in columns}, "key": r["key"], "varied": v}
             for r, v in zip(rows, sweep.varied, strict=True)]  # fmt: skip
    extra = {}
    images = [f"{sweep.name}/{sweep.name}.png"]
    if sweep.spec.combine == "one_at_a_time":
        extra["tornado"] = tornado_rows(sweep, cases)
        plotting.tornado(extra["tornado"], d / f"{sweep.name}.png", sweep.spec.title)
    else:
        plotting.sweep(rows, x, [a for a in axes if a != x], d / f"{sweep.name}.png", sweep.spec.title,
                       experiments=sweep.spec.experiments, measured=sweep.measured)  # fmt: skip
        if PUMP_COLUMNS[0] in columns:  # what the pump left: the polarisation reached and its width
            plotting.pumped_states(rows, x, [a for a in axes if a != x], d / f"{sweep.name}_pumped.png", sweep.spec.title)
            images.append(f"{sweep.name}/{sweep.name}_pumped.png")
    output.write_json(d / "run.json", {"sweep": sweep.spec.model_dump(), "config": sweep.base, "cases": cases,
                                       "solved_now": solved, "wall_s": wall, "ranks": ranks,
                                       "ranks_per_case": sweep.ranks_per_case, "measured": sweep.measured,
                                       "versions": versions})  # fmt: skip
    return {"images": images, "csv": [f"{sweep.name}/sweep.csv"], "cases": cases,
            "axes": axes, "x": x, "solved_now": solved, **extra}  # fmt: skip


def tornado_rows(sweep: Sweep, cases: list[dict]) -> list[dict]:
    """For each metric: its baseline value and, for each varied key, the metric at each of
    the key's values (one_at_a_time)."""
    panels = []
    for m in sweep.spec.metrics:
        mine = [c for c in cases if all(c["params"][k] == v for k, v in m.where.items())]
        base = next(c[m.column] for c in mine if c["varied"] is None)
        bars = {}
        for c in mine:
            if c["varied"] is not None:
                bars.setdefault(c["varied"], []).append((c["params"][c["varied"]], c[m.column]))
        panels.append({"label": m.label, "column": m.column, "where": m.where, "baseline": base, "bars": bars})
    return panels
