"""The lattice master equation (MODEL.md 8): exact small cases, conservation, symmetry, ranks.

Solver settings are stated in each test. Small lattices use a thin dot (z0 = 2 nm, so a
few planes) and a small l0 so that the electron terms matter on a few nm.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import scipy.linalg
from mpi4py import MPI

from app.config import build
from app.numerics import master, stepper
from app.numerics.master import MasterProblem, column_rates, column_stencil
from app.physics import lattice
from app.physics.observables import decay_times, exact_constant_d

COMM = MPI.COMM_WORLD

#: tight time and linear tolerances for the comparisons with exact solutions
TIGHT = {"rtol": 1e-12, "atol": 1e-14, "dt0": 1e-7, "pc_drop": 0.0, "petsc_options": {"ksp_rtol": 1e-14}}


def small(geometry: str, **sections):
    """A small lattice: R = 2.5 nm, z0 = 2 nm, l0 = r0 = 1.5 nm, 0.2 T, s = +1/2."""
    base = {
        "model": {"z0": 2.0, "l0": 1.5, "B0": 0.2},
        "initial": {"r0": 1.5},
        "domain": {"radius": 2.5, "geometry": geometry},
        "diffusion": {"form": "master", "source": "lattice", "cache": ""},
        "solver": {"t_end": 10.0, "t_first": 0.01, "outputs_per_decade": 1},
        "output": {"progress": False},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return build(**base)


def solve_states(cfg, comm=COMM):
    """h(t)/h(0), and the state u at every output time as {position: value} on every rank."""
    p = MasterProblem(cfg, comm).setup()
    states = []

    def keep(t, vec):
        states.append(vec.getArray(readonly=True).copy())

    res = p.solve(on_output=keep)
    positions = np.concatenate(comm.allgather(p.n))
    states = [np.concatenate(comm.allgather(s)) for s in states]
    return p, res, positions, states


# --- an independent dense construction of the same rate matrix ------------------------------


def dense_reference(cfg):
    """Sites, L, u0 and A of the full (unfolded) lattice, built pair by pair from lattice.rates."""
    m, a0 = cfg.model, cfg.model.a0
    n2 = int(np.floor((cfg.domain.radius / a0) ** 2 + 1e-9))
    nz = int(np.floor(cfg.domain.half_height(m.z0) / a0 + 1e-9))
    r = np.arange(-10, 11)
    cols = [(x, y) for x in r for y in r if x * x + y * y <= n2]
    disk = cfg.domain.geometry == "disk"
    sites = [(x, y, 0) for x, y in cols] if disk else [(x, y, z) for x, y in cols for z in range(-nz, nz + 1)]
    index = {s: i for i, s in enumerate(sites)}
    off = lattice.stencil(m).offsets
    L = np.zeros((len(sites), len(sites)))
    if disk:
        def colrate(p):  # w(p -> p + c) for every column offset c, summed over the column's sites
            W = lattice.rates(np.array([[a0 * p[0], a0 * p[1], 0.0]]), m)[0]
            out = {}
            for n, w in zip(off, W, strict=True):
                if n[0] or n[1]:
                    out[(n[0], n[1])] = out.get((n[0], n[1]), 0.0) + w
            return out

        rates = {}
        for k, (x, y, _) in enumerate(sites):
            fwd = colrate((x, y))
            for (cx, cy), w in fwd.items():
                back = colrate((x + cx, y + cy))[(-cx, -cy)]
                ws = 0.5 * (w + back)
                j = index.get((x + cx, y + cy, 0))
                L[k, k] -= ws  # in or out of the disk: the rate leaves k
                if j is not None:
                    L[k, j] += ws
        del rates
    else:
        for k, (x, y, z) in enumerate(sites):
            W = lattice.rates(np.array([[a0 * x, a0 * y, a0 * z]]), m)[0]
            for n, w in zip(off, W, strict=True):
                q = (x + n[0], y + n[1], z + n[2])
                if abs(q[2]) > nz:
                    continue  # beyond the faces: dropped
                L[k, k] -= w
                if q in index:
                    L[k, index[q]] += w
    pos = a0 * np.array(sites, dtype=float)
    u0 = np.exp(-(pos[:, 0] ** 2 + pos[:, 1] ** 2) / cfg.initial.r0**2)
    if not disk:
        u0 = np.where(np.abs(pos[:, 2]) <= m.z0 / 2 + 1e-12, u0, 0.0)
    return sites, L, u0


def as_full(sites_full, positions, state, fold):
    """The state on every site of the full lattice (folded states unfolded by symmetry)."""
    value = {tuple(p): v for p, v in zip(positions.tolist(), state, strict=True)}
    out = []
    for x, y, z in sites_full:
        if fold:
            ax, ay = abs(x), abs(y)
            key = (max(ax, ay), min(ax, ay), abs(z))
        else:
            key = (x, y, z)
        out.append(value[key])
    return np.array(out)


@pytest.mark.parametrize("geometry", ["disk", "slab"])
@pytest.mark.parametrize("fold", [False, True], ids=["full", "folded"])
def test_petsc_solution_equals_the_matrix_exponential(geometry, fold):
    """Max over sites of |u - expm(L t) u0| / max u0 <= 1e-8 at every output time (TIGHT)."""
    extra = {"domain": {"barrier": 1.0}} if geometry == "slab" else {}
    cfg = small(geometry, diffusion={"fold": fold}, solver=TIGHT, **extra)
    p, res, positions, states = solve_states(cfg)
    sites, L, u0 = dense_reference(cfg)
    assert p.sites.full_size == len(sites)
    assert len(states) == len(res.t) >= 5
    for t, state in zip(res.t, states, strict=True):
        exact = scipy.linalg.expm(L * t) @ u0
        got = as_full(sites, positions, state, fold)
        err = np.max(np.abs(got - exact)) / u0.max()
        assert err <= 1e-8, f"t = {t}: {err:.2e}"
    assert res.h[-1] < 0.8  # it did decay: the comparison is not vacuous


def test_column_rates_reproduce_the_diffusion_tensor_at_the_column():
    """D^ab(k) = 1/2 sum_k' w(k -> k') Delta^a Delta^b, to 1e-12 of max |D| (MODEL.md 8b)."""
    for model in (build(model={"B0": 0.2}).model, build(model={"B0": 2.0, "electron_sz": -0.5}).model):
        cs = column_stencil(model)
        pts = np.array([[0.0, 0.0], [0.563 * 20, 0.563 * 7], [-0.563 * 53, 0.563 * 31]])
        w = column_rates(pts, model, cs)
        d = model.a0 * cs.offsets.astype(float)
        D = 0.5 * np.einsum("nc,ca,cb->nab", w, d, d)
        ref = lattice.diffusion_tensor(pts, model)
        assert np.max(np.abs(D - ref)) <= 1e-12 * np.max(np.abs(ref))
        assert len(cs.offsets) == 48 and np.all(w >= 0)


def test_singlet_disk_follows_the_exact_constant_d_decay():
    """s = 0 on the 150 nm disk: h(t)/h(0) within 0.5% of the constant-D formula for t <= 300 s
    (D = the lattice's bulk 6.93 nm^2/s; rtol 1e-6)."""
    cfg = build(
        model={"electron_sz": 0.0},
        domain={"radius": 150.0},
        diffusion={"form": "master", "source": "lattice", "cache": ""},
        solver={"t_end": 300.0, "t_first": 1.0, "outputs_per_decade": 4, "rtol": 1e-6},
        output={"progress": False},
    )
    res = MasterProblem(cfg, COMM).solve()
    D = lattice.bulk_diffusion(cfg.model)
    exact = exact_constant_d(res.t, D, cfg.model.l0, cfg.initial.r0)
    rel = np.max(np.abs(res.h / exact - 1))
    assert rel < 5e-3, rel
    assert res.h[-1] < 0.7  # it did decay


def test_singlet_layer_is_within_two_percent_of_the_singlet_disk():
    """s = 0: the z-resolved layer and the columns differ only by the partners missing beyond
    the faces; t_1/2 within 2% (R = 30 nm, l0 = r0 = 10 nm, rtol 1e-6)."""
    common = {
        "model": {"electron_sz": 0.0, "l0": 10.0},
        "initial": {"r0": 10.0},
        "diffusion": {"form": "master", "source": "lattice", "cache": ""},
        "solver": {"t_end": 300.0, "t_first": 0.1, "outputs_per_decade": 20, "rtol": 1e-6},
        "output": {"progress": False},
    }
    disk = MasterProblem(build(domain={"radius": 30.0}, **common), COMM).solve()
    layer = MasterProblem(build(domain={"radius": 30.0, "geometry": "layer"}, **common), COMM).solve()
    t_disk, t_layer = decay_times(disk.t, disk.h)["t_half_s"], decay_times(layer.t, layer.h)["t_half_s"]
    assert abs(t_layer / t_disk - 1) < 0.02, (t_disk, t_layer)
    assert t_layer != t_disk  # the faces do cut some partners


@pytest.mark.parametrize("geometry", ["disk", "slab"])
def test_zero_flux_conserves_the_total_polarisation(geometry):
    """No flux through the rim (and none through the faces): sum_k m_k u_k constant to 1e-8
    (default tolerances, ksp_rtol 1e-10)."""
    cfg = small(geometry, domain={"boundary": "zero_flux"}, solver={"t_end": 1e3})
    p = MasterProblem(cfg, COMM).setup()
    before = p.integral()
    res = p.solve()
    after = p.integral()
    assert abs(after / before - 1) < 1e-8, (before, after)
    assert res.h[-1] < 0.9
    budget = res.stats["budget"]
    assert np.max(np.abs(budget["lost_through_rim"])) < 1e-8
    if geometry == "slab":
        assert budget["host"][-1] > 0.1  # polarisation left the layer, into the host crystal


def test_dirichlet_budget_adds_up_and_loses_through_the_rim():
    cfg = small("slab", solver={"t_end": 1e3})
    res = MasterProblem(cfg, COMM).solve()
    b = res.stats["budget"]
    np.testing.assert_allclose(np.asarray(b["layer"]) + b["host"] + b["lost_through_rim"], 1.0, atol=1e-12)
    assert b["layer"][0] == pytest.approx(1.0) and b["host"][0] == 0.0
    assert b["lost_through_rim"][-1] > 0.5


@pytest.mark.parametrize("geometry", ["disk", "slab"])
def test_folded_equals_full_lattice(geometry):
    """Folded and full lattice: the same u on every site to 1e-8 of max u0 (max norm), and h
    (TIGHT tolerances: both are then within 1e-8 of the exact solution)."""
    extra = {"domain": {"barrier": 1.0}} if geometry == "slab" else {}
    results = {}
    for fold in (False, True):
        cfg = small(geometry, diffusion={"fold": fold}, solver=TIGHT, **extra)
        results[fold] = solve_states(cfg)
    sites, _, u0 = dense_reference(cfg)
    (_, rf, pf, sf), (pp, rr, ppos, ss) = results[False], results[True]
    assert pp.sites.size < pp.sites.full_size
    np.testing.assert_allclose(rr.h, rf.h, rtol=0, atol=1e-8)
    for a, b in zip(sf, ss, strict=True):
        assert np.max(np.abs(as_full(sites, pf, a, False) - as_full(sites, ppos, b, True))) <= 1e-8 * u0.max()


def test_rewriting_the_jacobians_diagonal_equals_copy_and_axpy(monkeypatch):
    """M is diagonal on the lattice, so the stepper rewrites only J's diagonal when the
    shift changes: the same steps, iterations and h (1e-12) as J = copy(K) + shift M
    each step (default tolerances, slab, so that J has off-diagonal blocks on 2 ranks)."""
    cfg = small("slab", domain={"radius": 4.0}, solver={"t_end": 1e3})
    rewritten = MasterProblem(cfg, COMM).solve()

    def copy_and_axpy(*args, **kwargs):
        return stepper.TimeStepper(*args, **{**kwargs, "diagonal_mass": False})

    monkeypatch.setattr(master, "TimeStepper", copy_and_axpy)
    p = MasterProblem(cfg, COMM).setup()
    assert p.stepper._diagonals is None
    copied = p.solve()
    for key in ("steps_accepted", "steps_rejected", "linear_iterations", "preconditioner_builds"):
        assert rewritten.stats[key] == copied.stats[key], key
    assert rewritten.stats["steps_accepted"] > 20
    np.testing.assert_allclose(rewritten.h, copied.h, rtol=0, atol=1e-12)


@pytest.mark.parallel
@pytest.mark.parametrize("geometry", ["disk", "slab"])
def test_same_result_on_one_and_two_ranks(geometry):
    """h(t) on COMM_WORLD (2 ranks) equals h(t) on COMM_SELF to 1e-6 (default tolerances)."""
    cfg = small(geometry, domain={"radius": 4.0}, solver={"t_end": 1e3})
    parallel = MasterProblem(cfg, COMM).solve()
    serial = MasterProblem(cfg, MPI.COMM_SELF).solve()
    assert parallel.stats["ranks"] == COMM.size and serial.stats["ranks"] == 1
    np.testing.assert_allclose(parallel.h, serial.h, rtol=1e-6, atol=0)


def _resident_mb() -> float:
    with open("/proc/self/status") as f:
        return float(f.read().split("VmRSS:")[1].split()[0]) / 1e3


@pytest.mark.parallel
def test_solves_in_a_row_do_not_keep_the_finished_problems(tmp_path_factory):
    """On 2 ranks petsc4py frees a matrix only in a collective clean-up (stepper.release_garbage),
    which every solve does for the problems before it, as a sweep or a figure solves one case
    after another: rank 0's resident memory does not grow from the 2nd to the 7th solve
    (within 10 MB; without the clean-up, disk R = 100 nm, each solve kept ~15 MB, 75 MB in all).
    Default tolerances, t_end = 100 s, the operator read from a cache after the first."""
    cache = COMM.bcast(str(tmp_path_factory.mktemp("operators")) if COMM.rank == 0 else None)
    cfg = build(
        model={"B0": 0.2}, domain={"radius": 100.0}, solver={"t_end": 100.0}, output={"progress": False},
        diffusion={"form": "master", "source": "lattice", "cache": cache},
    )  # fmt: skip
    resident = []
    for _ in range(7):
        MasterProblem(cfg, COMM).solve()
        resident.append(_resident_mb())
    grew = COMM.bcast(resident[-1] - resident[1])
    assert grew < 10.0, resident


def test_each_rank_owns_a_contiguous_block_and_they_cover_the_lattice():
    cfg = small("slab")
    p = MasterProblem(cfg, COMM).setup()
    blocks = COMM.allgather((p.lo, p.hi))
    assert blocks[0][0] == 0 and blocks[-1][1] == p.sites.size
    assert all(a[1] == b[0] for a, b in pairwise(blocks))
    lo, hi = p.K.getOwnershipRange()
    assert (lo, hi) == (p.lo, p.hi)
