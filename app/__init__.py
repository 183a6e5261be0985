"""Overhauser-field decay by nuclear spin diffusion in a quantum dot (FEniCSx).

The public API, for scripts and notebooks (docs/api.md)::

    import app
    cfg = app.build(model={"B0": 2.0}, diffusion={"source": "lattice"})   # or app.load("case.toml", overrides=["model.B0=2"])
    result = app.solve(cfg)          # serial, or collectively under mpirun; any form, any geometry
    result.t, result.h               # numpy arrays: output times (s) and h(t)/h(0), on every rank
    result.t_half, result.t_1e       # s (nan when not reached)
    result.summary()                 # the dict run.json records
    fitted = app.fit("data.csv", vary={"model.l0": (10, 60)}, config=cfg)   # least squares to a measured decay
    fitted.parameters                # {"model.l0": {"value": ..., "sigma": ...}}

Bad input raises :class:`ConfigError`, whose text is the one line the CLI prints.
``import app``, :func:`build` and :func:`load` are light: the solver (``solve``, ``Result``,
``make_problem``: DOLFINx, PETSc, MPI) is imported on first use, so a script that only
builds configurations or evaluates the lattice physics (:mod:`app.lattice`) never starts MPI.

Units throughout: nm, s, T, rad/s, nm^2/s. The layers, bottom first: :mod:`app.config`,
:mod:`app.physics` (and :mod:`app.lattice`), :mod:`app.runtime`, :mod:`app.numerics`,
:mod:`app.render`, :mod:`app.studies`, :mod:`app.run` (the CLI).
"""

import os
from importlib import import_module, metadata
from pathlib import Path

from app.config import Config, ConfigError, build, load

# PT-SCOTCH (DOLFINx's mesh partitioner) starts threads in every MPI rank; with one rank
# per core they only contend: partitioning a 9e4-cell disk on 2 ranks took 1.2 s with
# threads and 0.03 s without (docs/performance.md). Users may still override it.
os.environ.setdefault("SCOTCH_PTHREAD_NUMBER", "1")


def _version() -> str:
    """The installed distribution's version, or pyproject.toml's when run from the checkout."""
    try:
        return metadata.version("overhauser-diffusion")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"] + "+checkout"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


__version__ = _version()

#: the heavy names (MPI, PETSc, DOLFINx), imported on first use: name -> module
_LAZY = {
    "solve": "app.numerics.solve",
    "Result": "app.numerics.result",
    "make_problem": "app.numerics.discretisation",
    "fit": "app.studies.fit",
    "FitResult": "app.studies.fit",
}

__all__ = ["Config", "ConfigError", "FitResult", "Result", "__version__", "build", "load", "fit", "make_problem", "solve"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # once imported, an ordinary attribute
        return value
    raise AttributeError(f"module 'app' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
