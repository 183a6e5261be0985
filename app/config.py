"""One validated configuration object, read from TOML (pydantic v2).

Units, stated once: lengths in nm, times in s, magnetic fields in T, couplings as
angular frequencies in rad/s, diffusion coefficients in nm^2/s. Defaults are those of
``shared/MODEL.md``. Every bad value raises :class:`ConfigError` whose text is one line
naming the key, what was expected and what was given.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

# CODATA constants (MODEL.md section 2)
HBAR = 1.054571817e-34  # J s
MU_B = 9.2740100783e-24  # J / T
E_CHARGE = 1.602176634e-19  # C
MU0_OVER_4PI = 1e-7  # T m / A

#: 1 neV as an angular frequency, rad/s (MODEL.md: A0 = 1 neV = 1.5193e6 rad/s)
NEV_RAD_S = 1e-9 * E_CHARGE / HBAR

#: the article's simple cubic crystal (MODEL.md 3): lattice spacing (nm) and electron g factor
ARTICLE_A0 = 0.563
ARTICLE_G_E = -0.5
#: real zincblende GaAs (MODEL.md 11): cubic lattice constant (nm) and electron g factor
GAAS_A0 = 0.56533
GAAS_G_E = -0.44
#: model keys a crystal other than the article's fills when not given: {crystal: {key: default}}
CRYSTAL_DEFAULTS = {"GaAs": {"a0": GAAS_A0, "g_e": GAAS_G_E}}
#: model keys a crystal refuses, with the reason (its isotopes carry their own values)
CRYSTAL_REFUSES = {"GaAs": {"gamma": "each isotope has its own", "A0": "each isotope has its own"}}


class ConfigError(ValueError):
    """Bad user input; ``str(err)`` is one line naming the key, expectation and value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
    #: the TOML table this section is, for error messages
    section: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_finite_numbers(cls, data: Any) -> Any:
        """A boolean where a number belongs, or an infinite or NaN number, is an error."""
        if not isinstance(data, dict):
            return data
        for key, value in data.items():
            field = cls.model_fields.get(key)
            if field is None or field.annotation not in (float, int, float | None):
                continue
            where = f"{cls.section}.{key}"
            if isinstance(value, bool):
                raise _cross(where, "an integer" if field.annotation is int else "a number", value)
            if isinstance(value, float) and not math.isfinite(value):
                raise _cross(where, "a finite number", value)
        return data


def _cross(key: str, expected: str, given: Any) -> PydanticCustomError:
    return PydanticCustomError("cross", f"{key}: expected {expected}, got {given!r}")


class Model(_Section):
    """``[model]``: the crystal, the lattice and the electron (MODEL.md sections 2-3 and 11).

    ``crystal`` decides what a0, gamma and A0 mean: with ``"article"`` (the default) the
    article's simple cubic crystal of one species, every value as before; with ``"GaAs"`` the
    zincblende crystal of MODEL.md 11, a0 its cubic constant (default 0.56533 nm), g_e
    defaulting to -0.44, r_c and r_g in units of that constant, and gamma and A0 refused
    (each isotope carries its own: app.crystal). Defaults that depend on the crystal are
    filled before validation, only for keys the user did not give.
    """

    section: ClassVar[str] = "model"

    crystal: Literal["article", "GaAs"] = Field(
        "article",
        description="article: the article's simple cubic crystal of 75As (MODEL.md 3); GaAs: real zincblende GaAs "
        "with its isotopes 75As, 69Ga and 71Ga on two sublattices (MODEL.md 11)",
    )
    a0: float = Field(
        ARTICLE_A0, gt=0,
        description=f"lattice spacing, nm (article); the cubic lattice constant a with crystal = 'GaAs' "
        f"(default {GAAS_A0})",
    )  # fmt: skip
    gamma: float = Field(4.596e7, gt=0, description="nuclear gyromagnetic ratio, rad s^-1 T^-1 (article crystal only)")
    A0: float = Field(NEV_RAD_S, gt=0, description="hyperfine coupling at the dot centre, rad/s (article crystal only)")
    l0: float = Field(30.0, gt=0, description="Fock-Darwin radius, nm")
    z0: float = Field(10.0, gt=0, description="dot thickness, nm")
    g_e: float = Field(ARTICLE_G_E, description=f"electron g factor (default {GAAS_G_E} with crystal = 'GaAs')")
    B0: float = Field(0.2, ge=0, description="external field along z, T")
    electron_sz: Literal[0.5, -0.5, 0.0] = Field(
        0.5, description="electron spin projection s: +1/2 or -1/2 for (1,1), 0 for the (2,0) singlet"
    )
    r_c: float = Field(4.0, gt=0, description="flip-flop cutoff radius, in units of a0")
    r_g: float = Field(4.0, ge=0, description="near-set radius for g_ik, in units of a0")

    @model_validator(mode="before")
    @classmethod
    def _crystal_defaults(cls, data: Any) -> Any:
        """Fill the crystal's own defaults (a0, g_e) where not given; refuse keys it does not take."""
        if not isinstance(data, dict):
            return data
        crystal = data.get("crystal", "article")
        if not isinstance(crystal, str) or crystal not in CRYSTAL_DEFAULTS:
            return data  # the article's defaults are the fields' own; the Literal refuses a bad crystal
        for key, why in CRYSTAL_REFUSES.get(crystal, {}).items():
            if key in data:
                raise _cross(f"model.{key}", f"no value with model.crystal = {crystal!r} ({why}, MODEL.md 11)", data[key])
        missing = {k: v for k, v in CRYSTAL_DEFAULTS[crystal].items() if k not in data}
        return {**data, **missing} if missing else data

    @model_validator(mode="after")
    def _electron_needs_field(self) -> Model:
        if self.electron_sz != 0 and self.B0 == 0:
            raise _cross(
                "model.B0",
                "a non-zero field when electron_sz != 0 (omega_e = g_e mu_B B0 / hbar must not vanish)",
                self.B0,
            )
        if self.electron_sz != 0 and self.g_e == 0:
            raise _cross(
                "model.g_e",
                "a non-zero g factor when electron_sz != 0 (omega_e = g_e mu_B B0 / hbar must not vanish)",
                self.g_e,
            )
        return self

    @property
    def omega_e(self) -> float:
        """Signed electron Zeeman frequency g_e mu_B B0 / hbar, rad/s."""
        return self.g_e * MU_B * self.B0 / HBAR


class Initial(_Section):
    """``[initial]``: u(x, y, 0) = exp(-(x^2 + y^2) / r0^2), times a z-profile in 3D."""

    section: ClassVar[str] = "initial"

    r0: float = Field(30.0, gt=0, description="initial polarisation width, nm")
    profile: Literal["uniform", "pumped"] | None = Field(
        None,
        description="z-profile for layer and slab (MODEL.md 8a): 'uniform' in the dot layer (default) "
        "or 'pumped', cos^2(pi z / z0); not for the disk",
    )


#: the most output times a run may ask for
MAX_OUTPUTS = 1e5
#: host crystal above and below the dot layer of a slab when domain.barrier is not given, nm
DEFAULT_BARRIER = 10.0
#: 3D finite elements: mesh.h_min (nm) and diffusion.degree unless given (docs/model3d.md)
H_MIN_3D = 3.0
DEGREE_3D = 1
MASS_3D = "lumped"  # no undershoot below 0 at the faces of the uniform state (docs/model3d.md)


@dataclass(frozen=True)
class Geometry:
    """A geometry of MODEL.md 8 and 10, chosen once by ``domain.geometry``; every module asks
    it (``config.geometry``) rather than comparing names."""

    name: str
    #: 2: the article's disk (on the lattice: its columns, MODEL.md 8b); 3: z-resolved, |z| <= Z
    dim: int
    #: host crystal above and below the dot layer (``domain.barrier``)
    host: bool
    description: str


#: the geometries, by the name ``domain.geometry`` takes
GEOMETRIES = {
    g.name: g
    for g in (
        Geometry("disk", 2, False, "the article's 2D model (columns)"),
        Geometry("layer", 3, False, "the dot layer |z| <= z0/2 alone"),
        Geometry("slab", 3, True, "the layer with domain.barrier nm of host crystal above and below"),
    )
}


class Domain(_Section):
    """``[domain]``: the geometry (MODEL.md 8) and the boundary condition at its rim."""

    section: ClassVar[str] = "domain"

    radius: float = Field(300.0, gt=0, description="disk radius R, nm")
    boundary: Literal["dirichlet", "zero_flux"] = Field(
        "dirichlet", description="u = 0 on r = R, or no flux through it"
    )
    geometry: Literal[tuple(GEOMETRIES)] = Field(
        "disk", description="; ".join(f"{g.name}: {g.description}" for g in GEOMETRIES.values())
    )
    barrier: float | None = Field(
        None, gt=0, description=f"host crystal above and below the layer of a slab, nm (default {DEFAULT_BARRIER:g})"
    )
    lattice_matched: bool = Field(
        False,
        description="layer and slab, finite elements: the top face and the edge of the uniform initial state "
        "where the lattice's planes put them (MODEL.md 10; GaAs: those of each isotope's sublattice, MODEL.md 11), "
        "for comparisons with the lattice",
    )

    @model_validator(mode="after")
    def _barrier_only_for_slab(self) -> Domain:
        if self.barrier is not None and not self.shape.host:
            raise _cross("domain.barrier", f"no value unless domain.geometry = 'slab' (it is {self.geometry!r})", self.barrier)
        if self.lattice_matched and self.shape.dim == 2:
            raise _cross("domain.lattice_matched", "false with domain.geometry = 'disk' (it has no z)", True)
        return self

    @property
    def shape(self) -> Geometry:
        """The geometry chosen by ``geometry``."""
        return GEOMETRIES[self.geometry]

    def half_height(self, z0: float) -> float:
        """Z: the crystal spans |z| <= Z (nm); 0 for the disk, whose columns have no z."""
        if self.shape.dim == 2:
            return 0.0
        if not self.shape.host:
            return z0 / 2
        return z0 / 2 + (DEFAULT_BARRIER if self.barrier is None else self.barrier)


class Mesh(_Section):
    """``[mesh]``: Gmsh size field, fine at the centre and coarse at the rim."""

    section: ClassVar[str] = "mesh"

    h_min: float = Field(2.0, gt=0, description="element size within fine_radius, nm (3 in 3D unless given)")
    h_max: float = Field(20.0, gt=0, description="element size beyond coarse_radius, nm")
    fine_radius: float = Field(60.0, ge=0, description="radius of the finely meshed core, nm")
    coarse_radius: float = Field(200.0, gt=0, description="radius from which h = h_max, nm")
    degree: int = Field(1, ge=1, le=3, description="Lagrange element degree")
    mass: Literal["consistent", "lumped"] = Field(
        "consistent", description="mass matrix: 'lumped' (vertex quadrature, degree 1 only) keeps u >= 0"
    )
    dz_layer: float = Field(0.5, gt=0, description="layer and slab: element height inside the dot layer, nm")
    dz_face: float = Field(
        0.1, gt=0, description="layer and slab: element height within r_c of the faces of the dot layer, nm"
    )
    dz_host: float = Field(2.0, gt=0, description="slab: largest element height in the host crystal, nm")
    directory: str = Field("meshes", description="where .msh files are cached")

    @model_validator(mode="after")
    def _sizes(self) -> Mesh:
        if self.h_min > self.h_max:
            raise _cross("mesh.h_min", f"at most mesh.h_max = {self.h_max}", self.h_min)
        if self.dz_face > self.dz_layer:
            raise _cross("mesh.dz_face", f"at most mesh.dz_layer = {self.dz_layer}", self.dz_face)
        if self.mass == "lumped" and self.degree != 1:
            raise _cross("mesh.mass", "'consistent' with mesh.degree > 1 (vertex lumping is for degree 1)", self.mass)
        if self.fine_radius >= self.coarse_radius:
            raise _cross(
                "mesh.fine_radius", f"less than mesh.coarse_radius = {self.coarse_radius}", self.fine_radius
            )
        return self


class Diffusion(_Section):
    """``[diffusion]``: where D comes from and which continuum form is solved."""

    section: ClassVar[str] = "diffusion"

    source: Literal["constant", "lattice"] = Field("constant", description="constant D, or D(x, y) from lattice rates")
    constant: float = Field(6.93, gt=0, description="D when source = 'constant', nm^2/s")
    form: Literal["paper", "conservative", "tensor", "master"] = Field(
        "tensor",
        description="tensor: div(D^ab grad u), the form the lattice master equation supports (the default); "
        "paper: D lap u (article eq 25); conservative: div(D grad u); master: the lattice master equation "
        "(article eq 17) itself",
    )
    fold: bool = Field(
        True,
        description="master: solve on the sites of one symmetry orbit (D4 about the axis, z -> -z); GaAs: false "
        "(the default; folding by its D2d is not implemented)",
    )
    realisation: int | None = Field(
        None, ge=0,
        description="master, GaAs: the seed of an explicit random realisation of the Ga isotopes (each cation site "
        "holds 69Ga or 71Ga at random with its abundance, MODEL.md 11); none: the virtual crystal",
    )  # fmt: skip
    degree: int = Field(
        2, ge=1, le=3,
        description="Lagrange degree of the space D is interpolated into (2 on the disk; 1 in 3D unless given, "
        "whose levels in z are fine: docs/model3d.md)",
    )  # fmt: skip
    zz: Literal["planes", "point"] = Field(
        "planes",
        description="layer and slab, tensor form: D^zz with the resistance of the lattice's planes (each pair "
        "of sites counted across the planes it joins; docs/model3d.md), or 'point': D^zz of a site placed at "
        "each height (MODEL.md 10); GaAs: the planes of each isotope's own sublattice",
    )
    cache: str = Field(".cache/fields", description="directory caching lattice fields; '' turns caching off")


#: PETSc options the product sets itself, and the key that sets each
RESERVED_PETSC_OPTIONS = {
    "ts_max_time": "solver.t_end",
    "ts_exact_final_time": "no value",
    "ts_dt": "solver.dt0",
    "ts_rtol": "solver.rtol",
    "ts_atol": "solver.atol",
}


class Solver(_Section):
    """``[solver]``: PETSc TS time integration with an adaptive step."""

    section: ClassVar[str] = "solver"

    t_end: float = Field(1e4, gt=0, description="final time, s")
    t_first: float = Field(1e-2, gt=0, description="first output time after t = 0, s")
    outputs_per_decade: int = Field(10, ge=1, description="log-spaced output times per decade")
    dt0: float = Field(1e-3, gt=0, description="initial time step, s")
    rtol: float = Field(
        2e-5, gt=0, lt=1,
        description="relative local error tolerance of the TS (the default keeps the time error below the "
        "spatial error of the default mesh: docs/performance.md)",
    )
    atol: float = Field(
        2e-7, gt=0, description="absolute local error tolerance, as a fraction of max u(x, y, 0)"
    )
    pc_rebuild_ratio: float = Field(
        2.0, ge=1, description="rebuild the AMG preconditioner when the TS shift changes by more than this factor"
    )
    ts_type: Literal["bdf", "rosw"] = Field("bdf", description="PETSc TS type")
    pc_drop: float = Field(
        0.05, ge=0, lt=1,
        description="master: the AMG is built from K without couplings below this fraction of their row's "
        "largest (row sums kept); 0 builds it from K itself",
    )
    max_memory_gb: float = Field(
        8.0, gt=0, description="refuse a job whose estimated memory (all ranks together) exceeds this, GB"
    )
    min_unknowns_per_rank: int = Field(
        15000, ge=0,
        description="a single case with fewer unknowns than this per rank is solved on fewer ranks, "
        "the others waiting asleep (0: always on every rank)",
    )
    error_estimate: bool = Field(
        True, description="a single case (--single, --config) also estimates its time and spatial error "
        "(app/numerics/error_estimate.py: two cheaper companion solves) for run.json",
    )
    avoid_busy_cores: bool = Field(
        True, description="a single case is solved on at most as many of a node's ranks as it has cores that "
        "no other program keeps busy (the others waiting asleep)",
    )
    petsc_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="PETSc options laid over the defaults (no leading '-')"
    )

    @model_validator(mode="after")
    def _reserved_options(self) -> Solver:
        for key, instead in RESERVED_PETSC_OPTIONS.items():
            if key in self.petsc_options:
                raise _cross(f"solver.petsc_options.{key}", f"{instead} instead (the product sets it)", self.petsc_options[key])
        return self

    @model_validator(mode="after")
    def _times(self) -> Solver:
        if self.t_first >= self.t_end:
            raise _cross("solver.t_first", f"less than solver.t_end = {self.t_end}", self.t_first)
        return self

    def output_times(self) -> list[float]:
        """t = 0 followed by log-spaced times from t_first to t_end (inclusive), s."""
        decades = math.log10(self.t_end / self.t_first)
        n = max(2, int(round(decades * self.outputs_per_decade)) + 1)
        ts = [self.t_first * 10 ** (decades * i / (n - 1)) for i in range(n)]
        ts[-1] = self.t_end
        return [0.0, *ts]


class Pump(_Section):
    """``[pump]``: the pump phase (dynamic nuclear polarisation build-up, MODEL.md 12).

    For 0 < t < t_pump, from u = 0, du_alpha/dt = div(D_alpha grad u_alpha) + Gamma_alpha(x)
    (p_inf - u_alpha) with Gamma_alpha(x) = gamma0 (A_alpha(x) / A_ref)^2, A_ref the largest
    coupling of any isotope at the dot centre; then the decay from the state the pump left.
    ``t_pump = 0`` (the default): no pump phase, the initial state of ``[initial]``.
    """

    section: ClassVar[str] = "pump"

    t_pump: float = Field(0.0, ge=0, description="duration of the pump phase, s (0: no pump phase, [initial] instead)")
    gamma0: float | None = Field(
        None,
        description="pump rate Gamma_0 at the dot centre, the fastest in the dot, 1/s (MODEL.md 12: a free "
        "parameter, so no default; needed when t_pump > 0)",
    )
    p_inf: float = Field(
        1.0, gt=0, le=1,
        description="polarisation the pump drives towards (0 < p_inf <= 1; the equations are linear, so the sign "
        "is a convention and h/h0 does not depend on it)",
    )  # fmt: skip
    electron_sz: Literal[0.5, -0.5] | None = Field(
        None,
        description="the electron's spin projection during the pump (default that of [model]; 0 is refused: "
        "no electron, no pump); it sets the Knight-shift and mediated terms of D during the pump",
    )

    @model_validator(mode="before")
    @classmethod
    def _electron_present(cls, data: Any) -> Any:
        if isinstance(data, dict) and "electron_sz" in data and data["electron_sz"] == 0 and not isinstance(
            data["electron_sz"], bool
        ):
            raise _cross("pump.electron_sz", "+0.5 or -0.5 (pumping needs the electron, MODEL.md 12)", data["electron_sz"])
        return data

    @model_validator(mode="after")
    def _rate(self) -> Pump:
        if self.t_pump > 0 and self.gamma0 is None:
            raise _cross(
                "pump.gamma0",
                f"a pump rate in 1/s with pump.t_pump = {self.t_pump:g} (a free parameter, MODEL.md 12: no default)",
                None,
            )
        if self.gamma0 is not None and not self.gamma0 > 0:
            raise _cross("pump.gamma0", "a positive rate (1/s)", self.gamma0)
        return self

    @property
    def active(self) -> bool:
        """Whether there is a pump phase (t_pump > 0)."""
        return self.t_pump > 0


class Output(_Section):
    """``[output]``: where and how results are written."""

    section: ClassVar[str] = "output"

    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$", description="sub-directory of --out for this run")
    progress: bool = Field(True, description="show a progress bar on rank 0")

    @model_validator(mode="after")
    def _name_is_a_sub_directory(self) -> Output:
        if self.name.startswith("."):  # '.', '..' and the run's own hidden files (.staging-*, the lock)
            raise _cross("output.name", "a sub-directory name not starting with '.'", self.name)
        return self


class Config(_Section):
    """The whole configuration; sections follow MODEL.md's vocabulary."""

    model: Model = Field(default_factory=Model)
    initial: Initial = Field(default_factory=Initial)
    domain: Domain = Field(default_factory=Domain)
    mesh: Mesh = Field(default_factory=Mesh)
    diffusion: Diffusion = Field(default_factory=Diffusion)
    solver: Solver = Field(default_factory=Solver)
    pump: Pump = Field(default_factory=Pump)
    output: Output = Field(default_factory=Output)

    @model_validator(mode="before")
    @classmethod
    def _defaults_3d(cls, data: Any) -> Any:
        """In 3D (layer, slab) with the finite elements, keys not given take the 3D mesh study's
        defaults (docs/model3d.md): mesh.h_min, diffusion.degree and mesh.mass."""
        if not isinstance(data, dict) or not isinstance(data.get("domain", {}), dict):
            return data
        geometry = GEOMETRIES.get(data.get("domain", {}).get("geometry", "disk"))
        if geometry is None or geometry.dim != 3:
            return data
        data = dict(data)
        defaults = [("mesh", "h_min", H_MIN_3D), ("diffusion", "degree", DEGREE_3D)]
        mesh = data.get("mesh", {})
        if not isinstance(mesh, dict) or mesh.get("degree", 1) == 1:  # vertex lumping is for P1
            defaults.append(("mesh", "mass", MASS_3D))
        for section, key, value in defaults:
            table = data.get(section, {})
            if isinstance(table, dict) and key not in table:
                data[section] = {**table, key: value}
        return data

    @model_validator(mode="before")
    @classmethod
    def _defaults_crystal(cls, data: Any) -> Any:
        """GaAs: diffusion.fold = false unless given (its lattice master equation is not folded)."""
        if not isinstance(data, dict) or not isinstance(data.get("model", {}), dict):
            return data
        if data.get("model", {}).get("crystal", "article") != "GaAs":
            return data
        diffusion = data.get("diffusion", {})
        if isinstance(diffusion, dict) and "fold" not in diffusion:
            data = {**data, "diffusion": {**diffusion, "fold": False}}
        return data

    @model_validator(mode="after")
    def _crystal(self) -> Config:
        """What the real crystal does not have (yet): the columns, a folded lattice master equation; and
        the realisations, which only the real crystal's lattice master equation takes."""
        form, seed = self.diffusion.form, self.diffusion.realisation
        if seed is not None and (self.model.crystal == "article" or form != "master"):
            raise _cross("diffusion.realisation", "no value unless model.crystal = 'GaAs' and diffusion.form = 'master' "
                         "(the continuum takes the virtual crystal)", seed)  # fmt: skip
        if self.model.crystal == "article":
            return self
        crystal = self.model.crystal
        if form == "master" and self.geometry.dim == 2:
            raise _cross("diffusion.form", f"a continuum form with model.crystal = {crystal!r} on the disk (the columns "
                         "are the article's reduction of its own crystal, MODEL.md 11)", form)  # fmt: skip
        if form == "master" and self.diffusion.fold:
            why = "folding by the crystal's D2d is not implemented; the square's C4 and z -> -z map As sites onto empty sites"
            raise _cross("diffusion.fold", f"false with model.crystal = {crystal!r} ({why}, MODEL.md 11)", True)
        return self

    @model_validator(mode="after")
    def _pump(self) -> Config:
        """The pump needs the electron (MODEL.md 12), and the electron a field; it makes the initial state."""
        if not self.pump.active:
            return self
        s = self.pump_electron_sz
        if s == 0:
            raise _cross("pump.electron_sz", "+0.5 or -0.5 with pump.t_pump > 0 (pumping needs the electron, "
                         "MODEL.md 12; its default is model.electron_sz, the (2,0) singlet here)", 0.0)  # fmt: skip
        for key in ("B0", "g_e"):
            if getattr(self.model, key) == 0:
                raise _cross(f"model.{key}", f"a non-zero value with pump.t_pump > 0 (the pump's electron, s = {s:+g}, "
                             "needs omega_e = g_e mu_B B0 / hbar != 0)", 0.0)  # fmt: skip
        if self.initial.profile is not None:
            raise _cross("initial.profile", "no value with pump.t_pump > 0 (the pump makes the initial state)",
                         self.initial.profile)  # fmt: skip
        return self

    @property
    def pump_electron_sz(self) -> float:
        """The electron's spin projection during the pump: ``pump.electron_sz``, else ``model.electron_sz``."""
        return self.model.electron_sz if self.pump.electron_sz is None else self.pump.electron_sz

    def pump_config(self) -> Config:
        """This configuration with the pump's electron state in ``[model]`` (the pump phase's D,
        and the lattice field's cache key, follow it); the same object when the states agree."""
        s = self.pump_electron_sz
        if s == self.model.electron_sz:
            return self
        data = self.model_dump(mode="json")
        for key in CRYSTAL_REFUSES.get(self.model.crystal, {}):  # the crystal's own values, not keys
            data["model"].pop(key)
        data["model"]["electron_sz"] = s
        return validate(data)

    @model_validator(mode="after")
    def _geometry(self) -> Config:
        R = self.domain.radius
        if self.initial.r0 >= R:
            raise _cross("initial.r0", f"less than domain.radius = {R}", self.initial.r0)
        master = self.diffusion.form == "master"
        if master and self.diffusion.source != "lattice":
            raise _cross(
                "diffusion.source",
                "'lattice' with diffusion.form = 'master' (the master equation needs the lattice rates)",
                self.diffusion.source,
            )
        geometry, dim = self.domain.geometry, self.geometry.dim
        if dim == 2 and self.initial.profile is not None:
            raise _cross(
                "initial.profile", "no value with domain.geometry = 'disk' (its columns have no z)", self.initial.profile
            )
        if dim == 3 and self.diffusion.form in ("paper", "conservative"):
            raise _cross(
                "diffusion.form",
                f"'tensor' or 'master' with domain.geometry = {geometry!r} (the paper and conservative forms are 2D)",
                self.diffusion.form,
            )
        if master and self.domain.lattice_matched:
            raise _cross(
                "domain.lattice_matched", "false with diffusion.form = 'master' (the lattice's planes are its own)", True
            )
        if dim == 3 and not master and self.mesh.dz_layer > self.model.z0 / 4:
            raise _cross(
                "mesh.dz_layer", f"at most model.z0 / 4 = {self.model.z0 / 4:g} (the dot layer needs 4 elements)",
                self.mesh.dz_layer,
            )  # fmt: skip
        if not master and self.mesh.h_max > R / 2:  # a mesh check: the lattice has no mesh
            raise _cross("mesh.h_max", f"at most domain.radius / 2 = {R / 2}", self.mesh.h_max)
        return self

    @model_validator(mode="after")
    def _sizes(self) -> Config:
        """Runaway sizes are refused before anything is meshed or allocated."""
        limit = self.solver.max_memory_gb
        s = self.solver
        outputs = math.log10(s.t_end / s.t_first) * s.outputs_per_decade
        if outputs > MAX_OUTPUTS:
            raise _cross(
                "solver.outputs_per_decade",
                f"at most {MAX_OUTPUTS:g} output times in all ({math.log10(s.t_end / s.t_first):.3g} decades)",
                s.outputs_per_decade,
            )
        m = self.model
        if m.crystal == "article":
            reach = math.floor(m.r_c + m.r_g)
            stencil_gb = (2 * reach + 1) ** 2 * (4 / 3 * math.pi * m.r_c**3) * 8 * 2 / 1e9  # near-set matrix, twice
        else:  # zincblende, in half cubic constants: the like partners are half of the (2 r_c)-ball
            reach = math.floor(2 * (m.r_c + m.r_g))
            stencil_gb = (2 * reach + 1) ** 2 * (4 / 3 * math.pi * (2 * m.r_c) ** 3 / 2) * 8 * 2 / 1e9
        if self.diffusion.source == "lattice" and stencil_gb > limit:  # a constant D has no stencil
            raise _cross(
                "model.r_c",
                f"a stencil within solver.max_memory_gb = {limit:g} (r_c = {m.r_c:g} and r_g = {m.r_g:g} "
                f"need {stencil_gb:.3g} GB)",
                m.r_c,
            )
        return self

    @property
    def geometry(self) -> Geometry:
        """The geometry of ``domain.geometry`` (its dimension, whether it has host crystal)."""
        return self.domain.shape

    @property
    def z_profile(self) -> str:
        """The initial z-profile in effect: 'uniform' unless initial.profile says otherwise."""
        return self.initial.profile or "uniform"


# --- reading and error text -------------------------------------------------------------


def _describe(err: dict) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "cross":
        return err["msg"]
    if kind == "extra_forbidden":
        section, _, key = loc.rpartition(".")
        return f"{loc}: unknown key {key!r} in [{section}]" if section else f"{loc}: unknown section [{loc}]"
    if kind == "missing":
        return f"{loc}: expected a value, got none"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    expected = msg.replace("Input should be ", "").replace("input should be ", "")
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        expected = "a number" if kind.startswith("float") else "an integer"
    return f"{loc}: expected {expected}, got {err['input']!r}"


def validate(data: dict) -> Config:
    """A Config from nested sections; ConfigError (one line) if anything is wrong."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ConfigError(_describe(first)) from None


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (number, bool, array, quoted string) or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``section.key=value`` (``solver.petsc_options.ksp_type=cg`` nests deeper)."""
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key or "." not in key:
        raise ConfigError(f"--set: expected section.key=value, got {assignment!r}")
    *path, last = key.split(".")
    node = data
    for part in path:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set: {key}: {part!r} is a value, not a section")
        node = child
    node[last] = parse_value(value.strip())


def read_toml(path: str | Path, what: str = "--config") -> dict:
    """A TOML file's tables; ConfigError naming ``what`` (the option that gave the path)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what}: expected an existing TOML file, got {str(path)!r}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what}: expected a TOML file, got {str(path)!r} (a directory)") from None
    except OSError as exc:
        raise ConfigError(f"{what}: expected a readable TOML file, got {str(path)!r} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what}: expected a UTF-8 TOML file, got {str(path)!r} (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: expected a valid TOML file, got {str(path)!r} ({exc})") from None


def value_at(data: dict, key: str):
    """The value of ``section.name`` (or deeper) in nested sections; None if absent."""
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def merge(base: dict, over: dict) -> dict:
    """Recursive dictionary merge: values of ``over`` win."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load(files: list[str | Path] = (), overrides: list[str] = ()) -> Config:
    """Configuration from TOML files (later ones win) and ``--set`` overrides."""
    data: dict = {}
    for f in files:
        data = merge(data, read_toml(f))
    for assignment in overrides:
        apply_override(data, assignment)
    return validate(data)


def build(**sections: dict) -> Config:
    """Configuration from keyword sections, e.g. ``build(model={"B0": 2.0})``; validated."""
    return validate(sections)
