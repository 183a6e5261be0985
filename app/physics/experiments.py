"""Measured nuclear-spin decay times that the sweeps' plots draw beside the model, and the
measured diffusion coefficients of GaAs the real crystal's report sets its bulk D against.

Only what ``MODEL.md`` section 9 states, each with its reference: where a paper gives a
range, the range; where it gives one time, that time; where it gives no number (Reilly et
al. 2010: "seconds", faster at lower field), nothing is drawn and the caption says so.
Times in s. None of these dots is the model's disk: they are anchors, not fits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    label: str  # what the plot's legend says
    reference: str
    low_s: float
    high_s: float | None  # None: "longer than low_s"


ANCHORS = (
    Anchor("InGaAs/GaAs dot, 0.2-5 s", "Makhonin et al., arXiv:0708.2792", 0.2, 5.0),
    Anchor("GaAs/AlGaAs droplet dots, 1-10 s", "Millington-Hotze et al., Nat. Commun. 14, 2677 (2023)", 1.0, 10.0),
    Anchor("GaAs/AlGaAs interface dots, ~1 min", "Nikolaenko et al., arXiv:0901.2281", 60.0, 60.0),
    Anchor("InGaAs self-assembled dots, > 1 h", "Maletinsky, Kroner & Imamoglu, Nature Physics (2009)", 3600.0, None),
)

#: what is not drawn, for the caption
NOT_DRAWN = (
    "Reilly et al., PRL 104, 236802 (2010), GaAs double dot at tens of mT: decay in seconds, "
    "faster in (1,1) than in the (2,0) singlet and at lower field (no range given: not drawn)"
)


@dataclass(frozen=True)
class MeasuredD:
    """A measured nuclear spin diffusion coefficient of GaAs (MODEL.md 11), nm^2/s."""

    what: str
    reference: str
    value_nm2_s: float
    error_nm2_s: float | None = None


#: what MODEL.md 11 quotes, nothing more
BULK_D = (
    MeasuredD("bulk GaAs (about 1e-13 cm^2/s)", "Paget, PRB 25, 4444 (1982)", 10.0),
    MeasuredD("between the layers of a GaAs/AlGaAs double quantum well", "arXiv:1309.5185", 15.0, 7.0),
)
