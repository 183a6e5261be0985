"""The lattice master equation of real GaAs (MODEL.md 11): one system per isotope on its own
zincblende sublattice, the Ga isotopes in the virtual crystal or an explicit realisation.

Small lattices: R = 2 nm, a thin dot (z0 = 3 nm: 11 As planes), l0 = 5 nm, r_c = r_g = 1.5 a,
1 T (rates up to about 1e3 /s: A_k per nucleus grows as 1 / (l0^2 z0)), so the electron terms
matter and a solve takes about a second.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from mpi4py import MPI

from app.config import ConfigError, build
from app.numerics import master
from app.numerics.discretisation import solve_once, weights
from app.numerics.master import MasterProblem
from app.physics import crystal
from app.physics.geometry import continuum_top, plane_face, uniform_edge
from app.physics.sites import SublatticeSites

COMM = MPI.COMM_WORLD
NAMES = ["75As", "69Ga", "71Ga"]
A = 0.56533
#: tight time and linear tolerances for the comparisons with exact solutions
TIGHT = {"rtol": 1e-12, "atol": 1e-14, "dt0": 1e-7, "pc_drop": 0.0, "petsc_options": {"ksp_rtol": 1e-14}}


def small(geometry: str = "layer", **sections):
    base = {
        "model": {"crystal": "GaAs", "z0": 3.0, "l0": 5.0, "B0": 1.0, "r_c": 1.5, "r_g": 1.5},
        "initial": {"r0": 1.5},
        "domain": {"radius": 2.0, "geometry": geometry},
        "diffusion": {"form": "master", "source": "lattice", "cache": ""},
        "solver": {"t_end": 10.0, "t_first": 0.01, "outputs_per_decade": 1},
        "output": {"progress": False},
    }
    if geometry == "slab":
        base["domain"]["barrier"] = 0.6
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return build(**base)


def brute_sites(sublattice: str, R: float, Z: float) -> np.ndarray:
    """Every site of a sublattice in the cylinder, from the definition (units of a/4)."""
    B = int(4 * max(R, Z) / A) + 2
    r = np.arange(-B, B + 1)
    m = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    if sublattice == "anion":  # (a/2) n, n1 + n2 + n3 even: the dot centre is an As site
        ok = np.all(m % 2 == 0, axis=1) & ((m // 2).sum(axis=1) % 2 == 0)
    else:  # (a/4) m, every m_i odd, m1 + m2 + m3 = 1 (mod 4) seen from an As site
        ok = np.all(m % 2 == 1, axis=1) & (m.sum(axis=1) % 4 == 1)
    ok &= (m[:, 0] ** 2 + m[:, 1] ** 2 <= (4 * R / A) ** 2) & (np.abs(m[:, 2]) <= 4 * Z / A)
    return m[ok]


def dense_K(p: MasterProblem) -> np.ndarray:
    """K of a problem, whole, on every rank."""
    ptr, idx, data = p.K.getValuesCSR()
    rows = np.repeat(np.arange(p.lo, p.hi), np.diff(ptr))
    parts = COMM.allgather((rows, idx, data)) if p.comm.size > 1 else [(rows, idx, data)]
    K = np.zeros((p.sites.size, p.sites.size))
    for r, c, v in parts:
        np.add.at(K, (r, c), v)
    return K


def dense_reference(cfg, isotope: str):
    """L of one isotope's system, pair by pair from crystal.rates on the brute-force site set."""
    model, d = cfg.model, cfg.domain
    iso = crystal._isotope(model, isotope)
    sites = brute_sites(iso.sublattice, d.radius, d.half_height(model.z0))
    seed = cfg.diffusion.realisation
    holds = crystal.holds(sites, model, iso, seed)
    W = crystal.rates((A / 4) * sites, model, iso)
    off = 2 * crystal.partner_offsets(model, iso)
    scale = iso.abundance if seed is None else 1.0
    q2, qz = (4 * d.radius / A) ** 2, 4 * d.half_height(model.z0) / A
    k = np.repeat(np.arange(len(sites)), len(off))
    q = (sites[:, None, :] + off[None, :, :]).reshape(-1, 3)
    w = scale * W.ravel()
    pair = holds[k] & (np.abs(q[:, 2]) <= qz) & crystal.holds(q, model, iso, seed)
    inside = q[:, 0] ** 2 + q[:, 1] ** 2 <= q2
    index = {tuple(s): i for i, s in enumerate(sites)}
    L = np.zeros((len(sites), len(sites)))
    for kk, qq, ww in zip(k[pair & inside], q[pair & inside], w[pair & inside], strict=True):
        L[kk, index[tuple(qq)]] += ww
        L[kk, kk] -= ww
    if d.boundary == "dirichlet":
        lost = pair & ~inside
        L[np.diag_indices(len(sites))] -= np.bincount(k[lost], weights=w[lost], minlength=len(sites))
    return sites, holds, L


# --- the site set --------------------------------------------------------------------------


@pytest.mark.parametrize("sublattice", ["anion", "cation"])
@pytest.mark.parametrize(("R", "Z"), [(3.0, 1.0), (2.2, 5.0), (1.0, 0.15)])
def test_the_site_set_is_the_sublattice_in_the_cylinder(sublattice, R, Z):
    """Counts, positions and order from the definition on integers; As planes at z = (a/2) n,
    Ga planes at z = a/4 + (a/2) n; index(positions) is the identity."""
    s = SublatticeSites.create(R, Z, A, sublattice)
    ref = brute_sites(sublattice, R, Z)
    pos = s.positions(np.arange(s.size))
    assert s.size == len(ref) and {tuple(x) for x in pos} == {tuple(x) for x in ref}
    assert np.array_equal(np.lexsort((pos[:, 2], pos[:, 1], pos[:, 0])), np.arange(s.size))  # by x, y, then z
    np.testing.assert_array_equal(s.index(pos), np.arange(s.size))
    z = s.nm(s.planes())
    if sublattice == "anion":
        np.testing.assert_allclose(z / (A / 2), np.round(z / (A / 2)), atol=1e-12)
        assert 0.0 in z
    else:
        np.testing.assert_allclose((z - A / 4) / (A / 2), np.round((z - A / 4) / (A / 2)), atol=1e-12)
    assert np.all(np.abs(z) <= Z) and np.max(np.abs(z)) + A / 2 > Z  # every plane within the faces
    # each plane is a checkerboard of spacing a/2 whose colour alternates from plane to plane
    colour = [set(((pos[pos[:, 2] == plane, :2] + s.c) // 2).sum(axis=1) % 2) for plane in s.planes()]
    assert all(len(c) == 1 for c in colour) and all(a != b for a, b in zip(colour[:-1], colour[1:], strict=True))


def test_layer_counts_at_the_validation_size():
    """The layer of R = 20 nm (z0 = 10 nm): 2.8e5 As sites on 35 planes, 36 Ga planes."""
    As = SublatticeSites.create(20.0, 5.0, A, "anion")
    Ga = SublatticeSites.create(20.0, 5.0, A, "cation")
    assert len(As.planes()) == 35 and len(Ga.planes()) == 36
    assert As.size == pytest.approx(2.8e5, rel=0.02) and Ga.size == pytest.approx(As.size, rel=0.05)


# --- realisations ----------------------------------------------------------------------------


def test_a_realisation_has_the_abundance_and_is_reproducible_by_seed():
    model = small().model
    m = SublatticeSites.create(20.0, 5.0, A, "cation").positions(np.arange(0, 283_000, 3))
    h69 = crystal.holds(m, model, "69Ga", 7)
    p = 0.60108
    assert abs(h69.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(m))
    np.testing.assert_array_equal(crystal.holds(m, model, "71Ga", 7), ~h69)  # one realisation, both isotopes
    np.testing.assert_array_equal(crystal.holds(m[::-1], model, "69Ga", 7), h69[::-1])  # a function of the site
    other = crystal.holds(m, model, "69Ga", 8)
    assert abs(np.mean(other == h69) - (p * p + (1 - p) ** 2)) < 0.01  # independent seeds
    assert crystal.holds(m, model, "69Ga", None).all() and crystal.holds(m, model, "75As", 7).all()


# --- the operator -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("isotope", "geometry", "boundary", "seed"),
    [("75As", "layer", "dirichlet", None), ("69Ga", "slab", "zero_flux", None), ("71Ga", "layer", "dirichlet", 3)],
)
def test_the_operator_is_the_dense_construction_and_symmetric(isotope, geometry, boundary, seed):
    """K = -L of an independent pair-by-pair construction (to 1e-12 of its largest entry), M K
    symmetric (M = 1 unfolded) to 1e-12, K's rows sum to the rim's loss (zero with zero flux)."""
    cfg = small(geometry, domain={"boundary": boundary}, diffusion={"realisation": seed})
    p = MasterProblem(cfg, COMM, isotope=isotope).setup()
    K = dense_K(p)
    sites, holds, L = dense_reference(cfg, isotope)
    order = p.sites.index(sites)
    ref = np.zeros_like(K)
    ref[np.ix_(order, order)] = -L
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(K - ref)) <= 1e-12 * scale
    assert np.max(np.abs(K - K.T)) <= 1e-12 * scale
    if boundary == "zero_flux":
        assert np.max(np.abs(K.sum(axis=1))) <= 1e-12 * scale
    if seed is not None:  # the other isotope's sites: uncoupled, no weight
        dead = order[~holds]
        assert 0 < len(dead) < len(sites)
        assert not np.any(K[dead]) and not np.any(K[:, dead])


def test_the_solution_is_the_matrix_exponential():
    """h(t) of the PETSc solve equals the exact u(t) = expm(-K t) u0 to 1e-8 (TIGHT), a
    realisation of 69Ga in the slab (uncoupled sites, faces, the rim's loss)."""
    cfg = small("slab", diffusion={"realisation": 1}, solver={**TIGHT, "t_end": 1.0})
    p = MasterProblem(cfg, COMM, isotope="69Ga").setup()
    K = dense_K(p)
    u0 = np.concatenate(COMM.allgather(p.u.getArray(readonly=True).copy()))
    w = np.concatenate(COMM.allgather(p.w.getArray(readonly=True).copy()))
    res = p.solve()
    lam, V = scipy.linalg.eigh(K)  # K is symmetric and M = 1: u(t) = V exp(-lam t) V^T u0
    c, wv = V.T @ u0, V.T @ w
    exact = [wv @ (np.exp(-np.maximum(lam, 0.0) * t) * c) / (w @ u0) for t in res.t]
    np.testing.assert_allclose(res.h, exact, rtol=0, atol=1e-8)


@pytest.mark.parametrize("seed", [None, 5])
def test_zero_flux_conserves_each_isotopes_polarisation(seed):
    """Zero flux through the rim and the faces: each isotope's sum of u constant to 1e-8 (the
    slab, default tolerances), and h falls."""
    cfg = small("slab", domain={"boundary": "zero_flux"}, diffusion={"realisation": seed}, solver={"t_end": 1e3})
    for name in NAMES:
        p = MasterProblem(cfg, COMM, isotope=name).setup()
        before = p.integral()
        res = p.solve()
        assert abs(p.integral() / before - 1) < 1e-8, name
        assert res.h[-1] < 0.9
        assert np.max(np.abs(res.stats["budget"]["lost_through_rim"])) < 1e-8


def test_75as_is_the_same_in_every_realisation():
    """75As fills its sublattice: a realisation's seed does not change its system (to 1e-12)."""
    h = [MasterProblem(small(diffusion={"realisation": s}), COMM, isotope="75As").solve().h for s in (None, 4)]
    np.testing.assert_allclose(h[0], h[1], rtol=0, atol=1e-12)


def test_solve_once_loops_over_the_isotopes():
    """h = sum_alpha x_alpha A^alpha h_alpha / h_alpha(0); statistics per isotope; each operator
    released after its solve."""
    cfg = small(solver={"t_end": 1.0})
    result, problems = solve_once(cfg, COMM)
    assert list(result.isotopes) == NAMES
    share = weights(cfg)
    np.testing.assert_allclose(result.h, sum(share[n] * result.isotopes[n] for n in NAMES), atol=1e-12)
    stats = result.stats["isotopes"]
    assert [stats[n]["isotope"] for n in NAMES] == NAMES
    assert stats["75As"]["unknowns"] == len(brute_sites("anion", 2.0, 1.5))
    assert stats["69Ga"]["unknowns"] == len(brute_sites("cation", 2.0, 1.5))
    assert all(p.K is None for p in problems)
    # the Ga isotopes differ in gamma and A: so do their decays
    assert np.max(np.abs(result.isotopes["71Ga"] - result.isotopes["69Ga"])) > 1e-3


@pytest.mark.parallel
def test_same_result_on_one_and_two_ranks():
    """Each isotope's h(t) on COMM_WORLD (2 ranks) equals that on COMM_SELF to 1e-6 relative, 1e-12
    absolute (default tolerances; a realisation, so that the draws must agree across ranks)."""
    cfg = small("slab", domain={"radius": 3.0}, diffusion={"realisation": 2}, solver={"t_end": 10.0})
    parallel, _ = solve_once(cfg, COMM)
    serial, _ = solve_once(cfg, MPI.COMM_SELF)
    for name in NAMES:
        assert parallel.isotopes[name][-1] < 0.5
        np.testing.assert_allclose(parallel.isotopes[name], serial.isotopes[name], rtol=1e-6, atol=1e-12)


# --- the configuration and the budget ----------------------------------------------------


def test_the_budget_refuses_in_one_line_per_isotope():
    cfg = small(domain={"radius": 20.0}, model={"z0": 10.0, "r_c": 2.0, "r_g": 2.0}, initial={"r0": 8.0},
                solver={"max_memory_gb": 1.0})  # fmt: skip
    est = master.estimate(cfg)
    assert est["per_isotope"]["75As"][0] == SublatticeSites.create(20.0, 5.0, A, "anion").size
    assert master.crystal_partners(cfg.model) == len(crystal.partner_offsets(cfg.model, "75As"))
    with pytest.raises(ConfigError) as err:
        master.check_budget(cfg)
    n, nz = est["unknowns"], est["nonzeros_max"]
    assert str(err.value) == (
        f"solver.max_memory_gb: expected at least the {est['memory_gb']:.3g} GB this lattice needs per isotope "
        f"({n:.3g} sites, {nz:.3g} nonzeros; the isotopes are solved one after another; reduce domain.radius "
        "or model.r_c, or raise the budget), got 1"
    )
    assert "\n" not in str(err.value)


def test_the_configuration_names_the_key():
    cfg = small()
    assert cfg.diffusion.fold is False  # the real crystal's default
    cases = [
        ({"diffusion": {"fold": True}}, "diffusion.fold: expected false with model.crystal = 'GaAs' (folding by the "
         "crystal's D2d is not implemented; the square's C4 and z -> -z map As sites onto empty sites, MODEL.md 11), "
         "got True"),
        ({"domain": {"geometry": "disk"}}, "diffusion.form: expected a continuum form with "
         "model.crystal = 'GaAs' on the disk (the columns are the article's reduction of its own crystal, MODEL.md 11), "
         "got 'master'"),
        ({"model": {"crystal": "article"}}, "diffusion.realisation: expected no value unless model.crystal = 'GaAs' "
         "and diffusion.form = 'master' (the continuum takes the virtual crystal), got 3"),
        ({"diffusion": {"form": "tensor"}}, "diffusion.realisation: expected no value unless model.crystal = 'GaAs' "
         "and diffusion.form = 'master' (the continuum takes the virtual crystal), got 3"),
    ]  # fmt: skip
    for change, text in cases:
        base = {
            "model": {"crystal": "GaAs", "z0": 3.0, "l0": 5.0},
            "initial": {"r0": 1.5},
            "domain": {"radius": 2.0, "geometry": "layer"},
            "diffusion": {"form": "master", "source": "lattice", "realisation": 3},
        }
        if "fold" in change.get("diffusion", {}) or "geometry" in change.get("domain", {}):
            base["diffusion"].pop("realisation")
        for key, value in change.items():
            base[key] = {**base[key], **value}
        if base["model"]["crystal"] == "article":
            base["model"] = {"crystal": "article", "z0": 3.0, "l0": 5.0}
        with pytest.raises(ConfigError) as err:
            build(**base)
        assert text in str(err.value), str(err.value)


# --- the continuum's faces per sublattice ------------------------------------------------


def test_lattice_matched_faces_are_each_sublattices_own():
    """With domain.lattice_matched, GaAs's continuum puts its top face half a plane spacing (a/4)
    beyond the outermost plane of the isotope's sublattice: the layer (Z = 5 nm) As 35 a/4,
    Ga 36 a/4; the article's crystal keeps (floor(Z / a0) + 1/2) a0."""
    cfg = build(model={"crystal": "GaAs"}, domain={"geometry": "layer", "lattice_matched": True, "radius": 40.0},
                diffusion={"source": "lattice"})  # fmt: skip
    assert continuum_top(cfg, "anion") == pytest.approx(35 * A / 4) and continuum_top(cfg) == continuum_top(cfg, "anion")
    assert continuum_top(cfg, "cation") == pytest.approx(36 * A / 4)
    assert uniform_edge(cfg, "cation") == pytest.approx(36 * A / 4)
    for sub in ("anion", "cation"):
        planes = SublatticeSites.create(40.0, 5.0, A, sub).planes()
        assert plane_face(5.0, A, sub) == pytest.approx((planes.max() + 1) * A / 4)
    article = build(domain={"geometry": "layer", "lattice_matched": True, "radius": 40.0})
    assert continuum_top(article) == pytest.approx(8.5 * article.model.a0)
    unmatched = build(model={"crystal": "GaAs"}, domain={"geometry": "layer", "radius": 40.0})
    assert continuum_top(unmatched, "cation") == 5.0
