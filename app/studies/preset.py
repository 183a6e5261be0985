"""Figure presets: the data files in ``app/studies/presets/`` (or a user's TOML file) with a ``[figure]``.

A preset is TOML with a ``[figure]`` table (what kind of figure, its title, what the
article shows, which curves to animate or fit), a ``[config]`` table laid over the
configuration of every curve, and ``[[curve]]`` tables, each a ``label`` plus the
configuration sections that define that curve. The configuration of a curve is, in
order of precedence (last wins): defaults, ``--config`` files, the preset's ``[config]``,
``--quick``, ``--set``, the curve's own settings (so ``--set`` changes everything except
what defines the figure's curves: ``--set diffusion.form=tensor`` re-solves figures 3-5
with the tensor form, but cannot collapse the comparison of forms).

Loading (:func:`from_data`) checks the preset's own structure; :func:`resolve` validates every
curve's configuration. :mod:`app.studies.catalogue` finds presets by name. What a preset makes
is :mod:`app.studies.figures`' work.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from app import config as app_config

#: reduced resolution for smoke tests and CI (--quick): numbers are not for publication
QUICK = {
    "mesh": {"h_min": 6.0, "h_max": 40.0, "fine_radius": 60.0, "coarse_radius": 200.0},
    "solver": {"outputs_per_decade": 3},
}


class FigureSpec(BaseModel):
    """The ``[figure]`` table of a preset."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["field", "decay", "validation"]
    title: str
    article: str = ""
    animate: list[str] = []
    fit: str | None = None
    fit_window: tuple[float, float] = (0.05, 0.95)
    surface_scale: Literal["linear", "log"] = "linear"
    window: tuple[float, float] = (0.1, 3000.0)  # validation: where max |h - h_ref| is taken, s
    # decay: every curve also solved with this form, drawn thin dashed
    compare_form: Literal["paper", "conservative", "tensor"] | None = None
    # decay: t_1/2 and t_1/e of the curves that have a group (a series) against this
    # configuration key (e.g. "model.B0"), on log-log axes
    lifetimes: str | None = None

    @model_validator(mode="after")
    def _ranges(self) -> FigureSpec:
        lo, hi = self.fit_window
        if not 0 <= lo < hi <= 1:
            raise PydanticCustomError(
                "cross", f"figure.fit_window: expected [low, high] with 0 <= low < high <= 1 (h/h0), got {[lo, hi]}"
            )
        lo, hi = self.window
        if not 0 <= lo < hi:
            raise PydanticCustomError("cross", f"figure.window: expected [low, high] with 0 <= low < high (s), got {[lo, hi]}")
        return self


@dataclass
class Preset:
    name: str
    spec: FigureSpec
    base: dict
    curves: list[tuple[str, dict]]
    configs: list[app_config.Config] = field(default_factory=list)
    extras: list[dict] = field(default_factory=list)  # validation: group and reference of each curve


def from_data(name: str, data: dict) -> Preset:
    """A figure preset from its TOML ``data`` (``name``: its file's stem); ConfigError if bad."""
    where = f"preset {name}"
    unknown = set(data) - {"figure", "config", "curve"}
    if unknown:
        raise app_config.ConfigError(f"{where}: unknown table [{sorted(unknown)[0]}]")
    try:
        spec = FigureSpec.model_validate(data.get("figure", {}))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise app_config.ConfigError(f"{where}: {app_config._describe({**err, 'loc': ('figure', *err['loc'])})}") from None
    if not isinstance(data.get("config", {}), dict):
        raise app_config.ConfigError(f"{where}: config: expected a table ([config]), got {data['config']!r}")
    if not isinstance(data.get("curve", []), list):
        raise app_config.ConfigError(f"{where}: curve: expected an array of tables ([[curve]]), got {data['curve']!r}")
    curves, extras = [], []
    for i, c in enumerate(data.get("curve", [])):
        if not isinstance(c, dict):
            raise app_config.ConfigError(f"{where}: curve {i + 1}: expected a table ([[curve]]), got {c!r}")
        c = dict(c)
        label = c.pop("label", None)
        if not isinstance(label, str) or not label:
            raise app_config.ConfigError(f"{where}: curve {i + 1}: expected a label, got {label!r}")
        if label in [lab for lab, _ in curves]:  # a label names a CSV column: two would lose one
            raise app_config.ConfigError(f"{where}: curve {i + 1}: expected a label no other curve has, got {label!r}")
        twin = next((lab for lab, _ in curves if slug(lab) == slug(label)), None)
        if twin is not None:  # a label names the files of an animation too: two would overwrite one
            raise app_config.ConfigError(f"{where}: curve {i + 1}: expected a label whose file name "
                                         f"({slug(label)!r}) no other curve has, got {label!r} beside {twin!r}")  # fmt: skip
        extra = {"group": c.pop("group", None), "reference": c.pop("reference", False)}
        if spec.kind == "validation" and not isinstance(extra["group"], str):
            raise app_config.ConfigError(f"{where}: curve {label!r}: expected a group, got {extra['group']!r}")
        curves.append((label, c))
        extras.append(extra)
    if not curves:
        raise app_config.ConfigError(f"{where}: expected at least one [[curve]]")
    labels = [lab for lab, _ in curves]
    for lab in [*spec.animate, *([spec.fit] if spec.fit else [])]:
        if lab not in labels:
            raise app_config.ConfigError(f"{where}: figure refers to curve {lab!r}, not one of {labels}")
    if spec.lifetimes and not any(isinstance(e["group"], str) for e in extras):
        raise app_config.ConfigError(f"{where}: figure.lifetimes: expected curves with a group (a series), got none")
    if spec.kind == "validation":
        groups = {e["group"] for e in extras}
        for g in groups:
            n = sum(1 for e in extras if e["group"] == g and e["reference"] is True)
            if n != 1:
                raise app_config.ConfigError(f"{where}: group {g!r}: expected one curve with reference = true, got {n}")
    return Preset(name, spec, data.get("config", {}), curves, extras=extras)


def resolve(preset: Preset, files=(), overrides=(), quick: bool = False) -> Preset:
    """Validate the configuration of every curve (ConfigError names the preset and curve)."""
    data = layered(preset.base, files, overrides, quick)
    preset.configs = []
    for label, curve in preset.curves:
        merged = app_config.merge(data, curve)
        merged.setdefault("output", {})["name"] = preset.name
        if quick:
            fit_quick_mesh(merged)
        try:
            cfg = app_config.validate(merged)
            if cfg.pump.active:  # a figure solves each curve as one problem from [initial]'s state
                raise app_config.ConfigError(
                    f"pump.t_pump: expected 0 in a figure preset (its curves are solved without the pump phase; "
                    f"--single or a sweep pumps), got {cfg.pump.t_pump:g}"
                )
            if preset.spec.kind == "field" and cfg.model.crystal != "article":  # figures 1 and 2: the article's lattice
                raise app_config.ConfigError(
                    f"model.crystal: expected 'article' in a field figure (its maps are the article's lattice rates; "
                    f"the real crystal's D is in the decay presets' run.json), got {cfg.model.crystal!r}"
                )
            preset.configs.append(cfg)
            if any(_sets(curve, o) for o in overrides):  # a --set this curve replaces is checked all the same
                checked = copy.deepcopy(merged)
                for o in overrides:
                    app_config.apply_override(checked, o)
                app_config.validate(checked)
        except app_config.ConfigError as exc:
            raise app_config.ConfigError(f"{preset.name} [{label}]: {exc}") from None
    if preset.spec.lifetimes:
        for (label, _), cfg, extra in zip(preset.curves, preset.configs, preset.extras, strict=True):
            if isinstance(extra["group"], str):
                extra["x"] = lifetime_x(cfg, preset.spec.lifetimes, f"{preset.name} [{label}]")
    return preset


def fit_quick_mesh(data: dict) -> dict:
    """``--quick``'s coarse mesh, but never coarser than the domain allows (h_max <= R / 2):
    ``data``'s mesh made to fit its own radius, in place (a curve's, a sweep case's)."""
    radius = data.get("domain", {}).get("radius", app_config.Domain().radius)
    if not isinstance(radius, (int, float)) or not isinstance(data.get("mesh"), dict):
        return data  # a bad value: validation says so
    mesh = data["mesh"] = dict(data["mesh"])
    if isinstance(mesh.get("h_max"), (int, float)):
        mesh["h_max"] = min(mesh["h_max"], radius / 2)
        if isinstance(mesh.get("h_min"), (int, float)):
            mesh["h_min"] = min(mesh["h_min"], mesh["h_max"])
    return data


def layered(base: dict, files=(), overrides=(), quick: bool = False) -> dict:
    """What every curve (or case) of a preset starts from, last wins: ``--config`` files,
    the preset's ``[config]`` (``base``), ``--quick``, ``--set``."""
    data: dict = {}
    for f in files:
        data = app_config.merge(data, app_config.read_toml(f))
    data = app_config.merge(data, base)
    if quick:
        data = app_config.merge(data, QUICK)
    for o in overrides:
        app_config.apply_override(data, o)
    return fit_quick_mesh(data) if quick else data


def lifetime_x(cfg: app_config.Config, key: str, where: str) -> float:
    """The value of the configuration key ``key`` (``section.name``), a positive number."""
    node = app_config.value_at(cfg.model_dump(mode="json"), key)
    if isinstance(node, bool) or not isinstance(node, (int, float)) or not node > 0:
        raise app_config.ConfigError(f"{where}: figure.lifetimes: expected a key with a positive number, got {key!r}")
    return float(node)


def _sets(curve: dict, override: str) -> bool:
    """Does ``curve`` set the key of the ``--set`` ``override`` (or a table above it)?"""
    node = curve
    for part in override.partition("=")[0].strip().split("."):
        if not isinstance(node, dict):
            return True  # the curve sets a value where the override has a table
        if part not in node:
            return False
        node = node[part]
    return True


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower()
