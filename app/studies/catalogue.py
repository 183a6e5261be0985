"""The presets by name: the data files in ``app/studies/presets/`` (or a user's TOML file)
that ``--preset`` runs, each a figure (:mod:`app.studies.preset`, a ``[figure]`` table) or a
parameter study (:mod:`app.studies.sweep`, a ``[sweep]`` table)."""

from __future__ import annotations

from pathlib import Path

from app import config as app_config
from app.studies import preset as figure_preset
from app.studies import sweep

PRESET_DIR = Path(__file__).parent / "presets"
#: the default job's presets (``all``), in order
ORDER = ["fig1", "fig2", "fig3", "fig4", "fig5", "forms", "tau_vs_B0", "tau_vs_r0", "sensitivity"]


def preset_names() -> list[str]:
    """The default job's presets (``all``), in order."""
    return [n for n in ORDER if (PRESET_DIR / f"{n}.toml").exists()]


def every_preset() -> list[str]:
    """Every preset shipped: the default job's, then the others by name."""
    return preset_names() + sorted(p.stem for p in PRESET_DIR.glob("*.toml") if p.stem not in ORDER)


def load_preset(name: str) -> figure_preset.Preset | sweep.Sweep:
    """A preset by name (``fig3``) or by path to a TOML file; ConfigError if bad."""
    path = Path(name)
    if path.suffix != ".toml":
        path = PRESET_DIR / f"{name}.toml"
        if not path.exists():
            raise app_config.ConfigError(
                f"--preset: expected one of {', '.join(every_preset())}, all, or a .toml file, got {name!r}"
            )
    data = app_config.read_toml(path, "--preset")
    if "sweep" in data:  # a parameter study, not a figure
        return sweep.from_data(path.stem, data)
    return figure_preset.from_data(path.stem, data)


def resolve(preset, files=(), overrides=(), quick: bool = False):
    """Validate the configuration of every curve or case (ConfigError names the preset and curve)."""
    if isinstance(preset, sweep.Sweep):
        return sweep.resolve(preset, files, overrides, quick)
    return figure_preset.resolve(preset, files, overrides, quick)
