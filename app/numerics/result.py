"""The result of a solve: h(t)/h(0) at the output times, the decay times, and the record
``run.json`` keeps. One class for every caller (the CLI, figures, sweeps, validation, a
user's script), and the one place that names the result's columns and keys.

With a pump phase (``[pump]``, MODEL.md 12) ``t`` and ``h`` are still the decay's (t from the
end of the pump, h normalised to its value there, so that the decay starts at 1 and every
decay time counts from the end of the pump), and :class:`PumpPhase` holds the pump's.

Units: t in s, h as h(t)/h(0) (dimensionless).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.config import Config
from app.physics import crystal
from app.physics.geometry import geometry_label
from app.physics.observables import T_1E, T_HALF, decay_times
from app.runtime.output import versions

#: the columns of ``overhauser.csv``, in order: output time (s) and h(t)/h(0)
COLUMNS = ("t_s", "h_over_h0")
#: with a pump phase: h over its value with every nucleus at P_inf, after ``COLUMNS``; and,
#: last, the phase of each row (0 pump, 1 decay)
H_SAT, PHASE = "h_over_hsat", "phase"


@dataclass
class PumpPhase:
    """The pump phase of a :class:`Result` (MODEL.md 12).

    ``t`` (s, from the start of the pump, 0 ... t_pump) and ``h``, h(t) / h(t_pump);
    ``h_over_hsat`` (pump) and ``h_over_hsat_decay`` (at the decay's ``Result.t``): h over h_sat,
    its value with every nucleus at P_inf; ``isotopes``: the real crystal's h_alpha(t) /
    h_alpha(t_pump) during the pump; ``record``: what ``run.json``'s ``pump`` holds;
    ``profile``: u at the end of the pump, its cuts (``r_nm``, ``u_mid``; in 3D ``z_nm``,
    ``u_axis``) per isotope name (None for the article's nucleus), for the picture.
    """

    t: np.ndarray
    h: np.ndarray
    h_over_hsat: np.ndarray
    h_over_hsat_decay: np.ndarray
    record: dict
    isotopes: dict[str, np.ndarray] | None = None
    profile: dict = field(default_factory=dict)


@dataclass
class Result:
    """What :func:`app.solve` (or a problem's ``solve()``) produced.

    ``t`` (s) and ``h`` (h(t)/h(0)) are NumPy arrays, complete on every rank; ``stats``
    are the time stepper's and the set-up's statistics. The job's fields (``ranks`` ...
    ``lattice_field``) are filled by :func:`app.solve`; a bare problem's ``solve()`` leaves
    them at their defaults.
    """

    config: Config
    t: np.ndarray
    h: np.ndarray
    stats: dict = field(default_factory=dict)
    #: ranks of the job, ranks that solved, and why fewer (``'small'``, ``'busy cores'``)
    ranks: int = 1
    ranks_solving: int = 1
    fewer_ranks_because: str | None = None
    #: the error estimate's dict (:mod:`app.numerics.error_estimate`), or None
    error_estimate: dict | None = None
    #: wall time of the whole solve (s), set-up and error estimate included
    wall_total_s: float = float("nan")
    #: where the lattice D came from (cache hits, points evaluated), or None
    lattice_field: dict | None = None
    #: the real crystal (MODEL.md 11): each isotope's h_alpha(t) / h_alpha(0), by name; None for the article's
    isotopes: dict[str, np.ndarray] | None = None
    #: the pump phase (MODEL.md 12), or None when there is none (``pump.t_pump = 0``)
    pump: PumpPhase | None = None

    @property
    def decay(self) -> dict[str, float]:
        """``{"t_half_s": ..., "t_1e_s": ...}`` (s; nan when not reached)."""
        return decay_times(self.t, self.h)

    @property
    def t_half(self) -> float:
        """First time (s) at which h(t)/h(0) falls to 1/2; nan when not reached."""
        return self.decay[T_HALF]

    @property
    def t_1e(self) -> float:
        """First time (s) at which h(t)/h(0) falls to 1/e; nan when not reached."""
        return self.decay[T_1E]

    @property
    def geometry(self) -> str:
        """The one line saying which geometry this answer assumes."""
        return geometry_label(self.config)

    def isotope_decay(self) -> dict[str, dict[str, float]]:
        """Each isotope's decay times (s), by name; {} for the article's crystal."""
        return {name: decay_times(self.t, h) for name, h in (self.isotopes or {}).items()}

    def columns(self) -> dict[str, np.ndarray]:
        """The columns of ``overhauser.csv``: ``t_s`` and ``h_over_h0``, then ``h_<isotope>``
        (each h_alpha / h_alpha(0)) for the real crystal.

        With a pump phase, both phases, the pump's rows first: ``t_s`` from the start of the
        pump, ``h_over_h0`` normalised to h at the end of the pump (each isotope's to its own),
        ``h_over_hsat`` after it, and last ``phase`` (0 pump, 1 decay). The end of the pump is
        two rows, the pump's last (phase 0) and the decay's first (phase 1), both at t_pump."""
        p = self.pump
        if p is None:
            out = dict(zip(COLUMNS, (self.t, self.h), strict=True))
            out.update({f"h_{name}": h for name, h in (self.isotopes or {}).items()})
            return out
        out = {"t_s": np.concatenate([p.t, p.t[-1] + self.t]), "h_over_h0": np.concatenate([p.h, self.h]),
               H_SAT: np.concatenate([p.h_over_hsat, p.h_over_hsat_decay])}  # fmt: skip
        out.update({f"h_{n}": np.concatenate([p.isotopes[n], h]) for n, h in (self.isotopes or {}).items()})
        out[PHASE] = np.concatenate([np.zeros(len(p.t)), np.ones(len(self.t))])
        return out

    def summary(self) -> dict:
        """The dict ``run.json`` records: configuration, versions, ranks, geometry, decay
        times, solver statistics, error estimate, wall time (and the lattice field's source)."""
        out = {
            "name": self.config.output.name,
            "config": self.config.model_dump(mode="json"),
            "versions": versions(),
            "ranks": self.ranks,
            "ranks_solving": self.ranks_solving,
            "fewer_ranks_because": self.fewer_ranks_because,  # 'small' problem, or 'busy cores'
            "geometry": self.geometry,
            "decay": self.decay,
            "solver": self.stats,
            "error_estimate": self.error_estimate,
            "wall_total_s": self.wall_total_s,
        }
        if self.lattice_field is not None:
            out["lattice_field"] = self.lattice_field
        if self.isotopes is not None:
            out["isotopes"] = self.isotope_summary()
        if self.pump is not None:
            out["pump"] = self.pump.record
            out["decay"] = {**self.decay, "counted_from": "the end of the pump (t_s = pump.t_pump in overhauser.csv)"}
        return out

    def isotope_summary(self) -> dict[str, dict]:
        """Per isotope: its share of h(0), decay times (s) and bulk D (nm^2/s: xx = yy, zz)."""
        model = self.config.model
        out = {}
        for iso in crystal.isotopes(model):
            bulk = crystal.bulk_diffusion(model, iso)
            out[iso.name] = {
                "abundance": iso.abundance,
                "A_ueV": iso.A / crystal.UEV_RAD_S,
                "share_of_h0": iso.abundance * iso.A / sum(i.abundance * i.A for i in crystal.isotopes(model)),
                **decay_times(self.t, self.isotopes[iso.name]),
                "bulk_D_nm2_s": {"xx": float(bulk[0, 0]), "zz": float(bulk[2, 2])},
            }
        return out
