"""The PETSc-TS diffusion solver against exact and manufactured solutions (nm, s)."""

from __future__ import annotations

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app import config as app_config
from app.numerics import error_estimate
from app.numerics.fem import DIRECT_MAX_DOFS, DiffusionProblem, direct_options
from app.physics.observables import exact_constant_d
from app.runtime import compat

COMM = MPI.COMM_WORLD


def quiet(mesh_dir, **sections):
    sections.setdefault("output", {})["progress"] = False
    sections.setdefault("mesh", {})["directory"] = str(mesh_dir)
    return app_config.build(**sections)


# --- exact solution for constant D ------------------------------------------------------


@pytest.mark.parametrize("r0", [30.0, 15.0], ids=["r0=l0", "r0=l0/2"])
def test_constant_d_matches_exact_decay_and_converges(mesh_dir, r0):
    """h(t)/h(0) = (l0^2 + r0^2) / (l0^2 + r0^2 + 4 D t) within 0.5% for t <= 300 s."""
    D, errors = 7.0, []
    for h_min in (4.0, 2.0):
        cfg = quiet(
            mesh_dir,
            initial={"r0": r0},
            diffusion={"constant": D},
            mesh={"h_min": h_min, "fine_radius": 150.0, "coarse_radius": 250.0},
            solver={"t_end": 300.0, "rtol": 1e-6, "atol": 1e-8},
        )
        res = DiffusionProblem(cfg, COMM).solve()
        exact = exact_constant_d(res.t, D, cfg.model.l0, r0)
        err = np.max(np.abs(res.h / exact - 1.0))
        assert err < 5e-3, f"h_min={h_min}: max relative error {err:.2e}"
        errors.append(err)
    # second-order P1 elements: halving h_min must cut the error clearly (measured ~4.5x)
    assert errors[1] < errors[0] / 2.5, errors


# --- manufactured solutions -------------------------------------------------------------

RADIUS = 1.0
LAMBDA = 1.0
T_END = 0.2


def manufactured(form: str, x):
    """u_e = exp(-t) phi(x, y), phi = 0 on r = 1; D smooth, positive and space-dependent."""
    r2 = x[0] ** 2 + x[1] ** 2
    phi = (1 - r2) * (1 + x[0] / 2 + x[1] ** 2 / 3)
    d = 1 + 0.5 * ufl.sin(2 * x[0]) * ufl.cos(x[1]) + 0.3 * x[1]
    if form == "tensor":
        D = ufl.as_matrix([[d, 0.3 * ufl.cos(x[0] + x[1])], [0.3 * ufl.cos(x[0] + x[1]), 2 - 0.5 * x[0] ** 2]])
        L = ufl.div(D * ufl.grad(phi))
    elif form == "conservative":
        D = d
        L = ufl.div(D * ufl.grad(phi))
    else:
        D = d
        L = D * ufl.div(ufl.grad(phi))
    g = -LAMBDA * phi - L  # u_t - L u = g(x) exp(-t)
    return phi, D, g


def mms_error(mesh_dir, form: str, h: float) -> float:
    cfg = quiet(
        mesh_dir,
        domain={"radius": RADIUS},
        initial={"r0": 0.5},
        diffusion={"form": form},
        mesh={"h_min": h, "h_max": h, "fine_radius": 0.1, "coarse_radius": 0.2},
        solver={"t_end": T_END, "t_first": T_END / 10, "dt0": 1e-4, "rtol": 1e-8, "atol": 1e-10},
    )

    def diffusion(problem):
        phi, D, g = manufactured(form, problem.x)
        shape = (2, 2) if form == "tensor" else ()
        V = fem.functionspace(problem.mesh, ("Lagrange", 3, shape))
        f = fem.Function(V)
        f.interpolate(fem.Expression(D, compat.interpolation_points(V.element)))
        problem._mms = (phi, g)
        return f

    class MMS(DiffusionProblem):
        def create_forms(self):
            phi, g = self._mms
            self._source = (g, lambda t: np.exp(-LAMBDA * t))
            self._initial = fem.Expression(phi, compat.interpolation_points(self.V.element))
            super().create_forms()

    p = MMS(cfg, COMM, diffusion=diffusion).setup()
    p.solve(times=[0.0, T_END])
    phi, _ = p._mms
    e = p.u - np.exp(-LAMBDA * T_END) * phi
    local = fem.assemble_scalar(fem.form(e * e * ufl.dx(metadata={"quadrature_degree": 8})))
    return float(np.sqrt(COMM.allreduce(local, op=MPI.SUM)))


@pytest.mark.parametrize("form", ["paper", "conservative", "tensor"])
def test_manufactured_solution_converges_at_second_order(mesh_dir, form):
    hs = [0.2, 0.1, 0.05]
    errors = [mms_error(mesh_dir, form, h) for h in hs]
    orders = [np.log(errors[i] / errors[i + 1]) / np.log(hs[i] / hs[i + 1]) for i in range(len(hs) - 1)]
    # P1 elements: L2 error O(h^2)
    assert orders[-1] > 1.8, f"{form}: errors {errors}, orders {orders}"
    assert errors[-1] < 1e-2


# --- conservation -----------------------------------------------------------------------


def test_zero_flux_conservative_form_conserves_total_polarisation(mesh_dir):
    """Under zero flux, div(D grad u) conserves the integral of u (here to 1e-8)."""
    cfg = quiet(
        mesh_dir,
        domain={"boundary": "zero_flux"},
        diffusion={"form": "conservative"},
        mesh={"h_min": 4.0},
        solver={"t_end": 1e4},
    )

    def varying(problem):  # D peaked at the centre, 7 nm^2/s far away
        V = fem.functionspace(problem.mesh, ("Lagrange", 2))
        f = fem.Function(V)
        f.interpolate(lambda x: 7.0 * (1 + 2.0 * np.exp(-(x[0] ** 2 + x[1] ** 2) / 20.0**2)))
        return f

    p = DiffusionProblem(cfg, COMM, diffusion=varying).setup()
    before = p.integral()
    res = p.solve()
    after = p.integral()
    assert abs(after / before - 1) < 1e-8, (before, after)
    assert res.h[-1] < 0.5  # it did spread: the test is not vacuous


# --- ranks ------------------------------------------------------------------------------


@pytest.mark.parallel
@pytest.mark.parametrize("form", ["paper", "tensor"])
def test_same_result_on_one_and_two_ranks(mesh_dir, form):
    """h(t) on COMM_WORLD (2 ranks) equals h(t) on COMM_SELF (1 rank) to 1e-6."""

    def field(problem):
        V = fem.functionspace(problem.mesh, ("Lagrange", 2))
        f = fem.Function(V)
        f.interpolate(lambda x: 7.0 * (1 - 0.8 * np.exp(-(x[0] ** 2 + x[1] ** 2) / 30.0**2)))
        return f

    cfg = quiet(mesh_dir, diffusion={"form": form}, mesh={"h_min": 4.0}, solver={"t_end": 1e4})
    parallel = DiffusionProblem(cfg, COMM, diffusion=field).solve()
    serial = DiffusionProblem(cfg, MPI.COMM_SELF, diffusion=field).solve()
    assert parallel.stats["ranks"] == COMM.size and serial.stats["ranks"] == 1
    np.testing.assert_allclose(parallel.h, serial.h, rtol=1e-6, atol=0)


# --- PETSc options ----------------------------------------------------------------------


def test_user_petsc_options_are_laid_over_the_defaults(mesh_dir):
    cfg = quiet(
        mesh_dir,
        mesh={"h_min": 10.0, "h_max": 30.0},
        solver={"t_end": 10.0, "petsc_options": {"pc_type": "jacobi", "ts_bdf_order": 3}},
    )
    p = DiffusionProblem(cfg, COMM).setup()
    ksp = p.ts.getSNES().getKSP()
    assert p.ts.getType() == "bdf" and ksp.getType() == "cg"  # defaults kept (tensor form: symmetric)
    assert ksp.getPC().getType() == "jacobi"  # user option wins
    assert p.petsc_options["ts_bdf_order"] == 3 and p.petsc_options["pc_type"] == "jacobi"
    assert p.petsc_options["ts_adapt_type"] == "basic"
    p.solve()


@pytest.mark.parametrize("form", ["tensor", "paper"])
def test_one_rank_factorises_a_small_problem_and_agrees_with_the_amg(mesh_dir, form):
    """On one rank a small problem's default preconditioner is a Cholesky (LU for the paper
    form) factorisation, reused across shifts; it gives the AMG's h(t) (both at ksp_rtol
    1e-10, TS rtol 1e-4). A ``pc_*`` option, or more ranks, keeps the AMG."""
    cfg = quiet(mesh_dir, diffusion={"form": form}, mesh={"h_min": 4.0}, solver={"t_end": 1e3})
    direct = DiffusionProblem(cfg, MPI.COMM_SELF).setup()
    assert direct.ts.getSNES().getKSP().getPC().getType() == ("cholesky" if form == "tensor" else "lu")
    res = direct.solve()
    assert res.stats["petsc_options"]["pc_type"] == direct.ts.getSNES().getKSP().getPC().getType()
    assert res.stats["preconditioner_builds"] < res.stats["steps_accepted"] / 3  # reused across shifts
    amg_cfg = cfg.model_copy(deep=True)
    amg_cfg.solver.petsc_options = {"pc_type": "hypre"}
    amg = DiffusionProblem(amg_cfg, MPI.COMM_SELF).setup()
    assert amg.ts.getSNES().getKSP().getPC().getType() == "hypre"
    amg_res = amg.solve()
    np.testing.assert_allclose(res.h, amg_res.h, rtol=1e-6, atol=1e-9)
    if COMM.size > 1:
        p = DiffusionProblem(cfg, COMM).setup()
        assert p.ts.getSNES().getKSP().getPC().getType() == "hypre"


def test_one_rank_keeps_the_amg_in_3d(tmp_path_factory):
    """3D on one rank takes the AMG, not the 2D shortcut of a factorisation (issue 28: the
    layer of 46 110 unknowns took 2.67 s a step with it); the error estimate's companions too."""
    solver = app_config.build().solver
    assert direct_options(solver, True, 1, 3000, dim=3) == {}
    assert direct_options(solver, True, 1, 3000, dim=2)["pc_type"] == "cholesky"
    assert DIRECT_MAX_DOFS[3] < DIRECT_MAX_DOFS[2]
    cfg = app_config.build(domain={"geometry": "layer", "radius": 15.0}, model={"l0": 5.0}, initial={"r0": 5.0},
                           mesh={"h_max": 6.0, "fine_radius": 5.0, "coarse_radius": 12.0,
                                 "directory": str(tmp_path_factory.mktemp("m"))})  # fmt: skip
    layer = DiffusionProblem(cfg, MPI.COMM_SELF).setup()
    assert layer.ts.getSNES().getKSP().getPC().getType() == "hypre"
    for companion in (error_estimate.time_companion(cfg), error_estimate.space_companion(cfg)):
        p = DiffusionProblem(companion, MPI.COMM_SELF).setup()
        assert p.ts.getSNES().getKSP().getPC().getType() == "hypre"
