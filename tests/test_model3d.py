"""The 3D continuum model (MODEL.md 10): exact checks, a manufactured solution, conservation,
ranks, and the lattice tensor D^ab(x, y, z) in DOLFINx.

Solver settings, stated per test: the exact checks use rtol 1e-5 / atol 1e-8 of the TS
(the default KSP tolerance, 1e-10, is kept); the manufactured solution rtol 1e-8.
"""

from __future__ import annotations

import numpy as np
import pytest
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app import config as app_config
from app.numerics import field as app_field
from app.numerics.cylinder import CylinderSpec, z_levels
from app.numerics.fem import DiffusionProblem
from app.numerics.mesh import cached_mesh
from app.physics import lattice
from app.physics.observables import exact_constant_d
from app.runtime import compat

COMM = MPI.COMM_WORLD


def quiet(mesh_dir, **sections):
    sections.setdefault("output", {})["progress"] = False
    sections.setdefault("mesh", {})["directory"] = str(mesh_dir)
    return app_config.build(**sections)


def bulk_tensor(model) -> np.ndarray:
    """D^ab with no electron: the same at every point (MODEL.md 8a: diag(6.93, 6.93, 19.94))."""
    singlet = model.model_copy(update={"electron_sz": 0.0})
    return lattice.diffusion_tensor_3d([[0.0, 0.0, 0.0]], singlet)[0]


# --- exact checks (MODEL.md 10, i and ii) ------------------------------------------------------

SINGLET = {"source": "lattice", "form": "tensor", "degree": 1, "cache": ""}  # no cache in the working directory
T_CHECK = 100.0


def test_singlet_layer_is_the_exact_2d_decay(mesh_dir):
    """Layer, uniform state, s = 0: u stays uniform in z; h/h0 = the 2D constant-D decay, 1%."""
    cfg = quiet(
        mesh_dir,
        model={"electron_sz": 0.0},
        domain={"geometry": "layer"},
        diffusion=SINGLET,
        mesh={"h_min": 4.0, "h_max": 20.0, "fine_radius": 150.0, "coarse_radius": 250.0,
              "dz_layer": 2.5, "dz_face": 2.5},
        solver={"t_end": T_CHECK, "rtol": 1e-5, "atol": 1e-8},
    )  # fmt: skip
    res = DiffusionProblem(cfg, COMM).solve()
    D = bulk_tensor(cfg.model)
    exact = exact_constant_d(res.t, D[0, 0], cfg.model.l0, cfg.initial.r0)
    err = np.max(np.abs(res.h / exact - 1.0))
    assert err < 1e-2, err
    assert res.h[-1] < 0.8  # it decayed: the comparison is not vacuous
    b = res.stats["budget"]
    assert np.max(np.abs(b["host"])) < 1e-12  # the layer alone: no host crystal


def z_decay(t, D_zz: float, edge: float, Z: float, z0: float, terms: int = 4000) -> np.ndarray:
    """The 1D factor of check (ii): u(z, 0) = 1 for |z| < edge, 0 beyond, zero flux at |z| = Z,
    weighted by cos^2(pi z / z0) over the layer: a cosine series (t > 0)."""
    z = np.linspace(0.0, z0 / 2, 4001)
    w = np.cos(np.pi * z / z0) ** 2
    n = np.arange(1, terms + 1)
    a = 2 * np.sin(n * np.pi * edge / Z) / (n * np.pi)  # a_0 = edge / Z
    k = n * np.pi / Z
    overlap = np.trapezoid(w * np.cos(np.outer(k, z)), z, axis=1) / np.trapezoid(w, z)
    t = np.asarray(t, dtype=float)[:, None]
    return edge / Z + np.sum(a * overlap * np.exp(-D_zz * k**2 * t), axis=1)


def test_singlet_slab_is_the_exact_separable_decay(mesh_dir):
    """Slab, uniform state, s = 0: h/h0 = 2D decay x the 1D cosine series with D^zz = 19.94, 1%.

    The one check of D^zz and of the faces: at 100 s about 2/3 of the layer's polarisation has
    gone into the host crystal.
    """
    cfg = quiet(
        mesh_dir,
        model={"electron_sz": 0.0},
        domain={"geometry": "slab", "barrier": 10.0},
        diffusion=SINGLET,
        mesh={"h_min": 4.0, "h_max": 40.0, "fine_radius": 100.0, "coarse_radius": 250.0,
              "dz_layer": 0.5, "dz_face": 0.5, "dz_host": 1.0},  # measured error 0.3%
        solver={"t_end": T_CHECK, "rtol": 1e-5, "atol": 1e-8},
    )  # fmt: skip
    res = DiffusionProblem(cfg, COMM).solve()
    D = bulk_tensor(cfg.model)
    assert abs(D[2, 2] - 19.94) < 0.01 and abs(D[0, 0] - 6.93) < 0.01
    m = cfg.model
    t = res.t[1:]
    exact = exact_constant_d(t, D[0, 0], m.l0, cfg.initial.r0) * z_decay(t, D[2, 2], m.z0 / 2, 15.0, m.z0)
    err = np.max(np.abs(res.h[1:] / exact - 1.0))
    assert err < 1e-2, err
    b = res.stats["budget"]
    assert b["host"][-1] > 0.5  # the faces let it out
    np.testing.assert_allclose(b["layer"] + b["host"] + b["lost_through_rim"], 1.0, atol=1e-12)


# --- a manufactured solution with an anisotropic, non-constant 3x3 tensor ---------------------

LAMBDA, T_END = 1.0, 0.1


def manufactured(x):
    """u_e = exp(-t) phi, phi = 0 on the boundary of the box [-1, 1]^2 x [0, 1]; D SPD, varying."""
    phi = (1 - x[0] ** 2) * (1 - x[1] ** 2) * x[2] * (1 - x[2]) * (1 + x[0] / 2 + x[2] / 3)
    a = 1 + 0.5 * ufl.sin(2 * x[0]) * ufl.cos(x[1]) + 0.3 * x[2]
    c = 0.3 * ufl.cos(x[0] + x[2])
    D = ufl.as_matrix([[a, c, 0.1 * x[1]], [c, 2 - 0.5 * x[0] ** 2, 0.2 * x[2]], [0.1 * x[1], 0.2 * x[2], 0.5 + x[2] ** 2]])
    g = -LAMBDA * phi - ufl.div(D * ufl.grad(phi))  # u_t - div(D grad u) = g exp(-t)
    return phi, D, g


def mms_error(n: int, degree: int) -> float:
    box = dmesh.create_box(COMM, [np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 1.0])], [2 * n, 2 * n, n])
    cfg = app_config.build(
        domain={"radius": 1.0},
        initial={"r0": 0.5},
        mesh={"degree": degree, "h_min": 0.5, "h_max": 0.5, "fine_radius": 0.1, "coarse_radius": 0.2},
        output={"progress": False},
        solver={"t_end": T_END, "t_first": T_END / 10, "dt0": 1e-4, "rtol": 1e-8, "atol": 1e-10},
    )
    x = ufl.SpatialCoordinate(box)
    phi, D, g = manufactured(x)

    def diffusion(problem):
        T = fem.functionspace(box, ("Lagrange", degree + 2, (3, 3)))
        f = fem.Function(T)
        f.interpolate(fem.Expression(D, compat.interpolation_points(T.element)))
        return f

    class MMS(DiffusionProblem):
        def create_forms(self):
            self._source = (g, lambda t: np.exp(-LAMBDA * t))
            self._initial = fem.Expression(phi, compat.interpolation_points(self.V.element))
            super().create_forms()

    p = MMS(cfg, COMM, diffusion=diffusion, mesh=(box, None, None)).setup()
    p.solve(times=[0.0, T_END])
    e = p.u - np.exp(-LAMBDA * T_END) * phi
    local = fem.assemble_scalar(fem.form(e * e * ufl.dx(metadata={"quadrature_degree": 8})))
    return float(np.sqrt(COMM.allreduce(local, op=MPI.SUM)))


@pytest.mark.parametrize("degree,ns,order", [(1, (4, 8, 16), 2), (2, (2, 4, 8), 3)], ids=["P1", "P2"])
def test_manufactured_3d_anisotropic_tensor_converges(degree, ns, order):
    errors = [mms_error(n, degree) for n in ns]
    orders = [np.log2(errors[i] / errors[i + 1]) for i in range(len(ns) - 1)]
    assert orders[-1] > order - 0.2, (errors, orders)


# --- conservation and ranks on a small cylinder with the lattice D at 0.2 T --------------------


def small_slab(mesh_dir, **over):
    sections = dict(
        domain={"geometry": "slab", "radius": 20.0, "barrier": 5.0},
        initial={"r0": 8.0},
        diffusion={"source": "lattice", "form": "tensor", "degree": 1, "cache": ""},
        mesh={"h_min": 2.0, "h_max": 4.0, "fine_radius": 8.0, "coarse_radius": 16.0, "dz_face": 0.25,
              "dz_host": 1.0},
        solver={"t_end": 1e3},
    )  # fmt: skip
    for k, v in over.items():
        sections[k] = {**sections.get(k, {}), **v}
    return quiet(mesh_dir, **sections)


def test_zero_flux_everywhere_conserves_the_integral(mesh_dir):
    cfg = small_slab(mesh_dir, domain={"boundary": "zero_flux"}, solver={"petsc_options": {"ksp_rtol": 1e-13}})
    p = DiffusionProblem(cfg, COMM).setup()
    before = p.integral()
    res = p.solve()
    assert abs(p.integral() / before - 1) < 1e-10
    b = res.stats["budget"]
    assert b["host"][-1] > 0.3 and abs(b["lost_through_rim"][-1]) < 1e-10  # it moved, and nothing left


@pytest.mark.parallel
def test_same_h_on_one_and_two_ranks(mesh_dir):
    cfg = small_slab(mesh_dir, solver={"petsc_options": {"ksp_rtol": 1e-13}})
    parallel = DiffusionProblem(cfg, COMM).solve()
    serial = DiffusionProblem(cfg, MPI.COMM_SELF).solve()
    assert parallel.stats["ranks"] == COMM.size == 2
    assert parallel.h[-1] < 0.5
    np.testing.assert_allclose(parallel.h, serial.h, rtol=0, atol=1e-8)


# --- the lattice tensor in DOLFINx -------------------------------------------------------------


@pytest.fixture(scope="module")
def cylinder(mesh_dir):
    cfg = small_slab(mesh_dir)
    spec = CylinderSpec.from_config(cfg)
    return cfg, cached_mesh(spec, mesh_dir, COMM)


def test_levels_include_the_face_the_edge_and_the_top(mesh_dir):
    cfg = small_slab(mesh_dir, domain={"lattice_matched": True})
    levels = z_levels(cfg)
    a0 = cfg.model.a0
    for z in (5.0, 8.5 * a0, 17.5 * a0):  # the face z0/2, the uniform edge, the top (floor(10 / a0) + 1/2) a0
        assert min(abs(np.array(levels) - z)) < 1e-12, z
    assert np.all(np.diff(levels) <= cfg.mesh.dz_host + 1e-12)
    band = np.array(levels)[np.abs(np.array(levels) - 5.0) <= cfg.model.r_c * a0]
    assert np.all(np.diff(band) <= cfg.mesh.dz_face + 1e-12)


def test_tensor_field_at_lattice_heights_is_the_rate_sum(mesh_dir):
    """On a cylinder whose levels are the lattice planes z = a0 m, D^ab at every dof equals
    1/2 sum_i W_ik Delta^a Delta^b with the rates the master equation uses (lattice.rates), to
    1e-12 of max |D|; at the mid-plane its xy block is the 2D D^ab and D^xz = D^yz = 0."""
    model = app_config.Model(B0=0.2)
    a0 = model.a0
    planes = tuple(a0 * m for m in range(13))
    spec = CylinderSpec(10.0, 2.0, 4.0, 4.0, 8.0, planes, (0.0, planes[-1]), model.z0 / 2)
    mesh = cached_mesh(spec, mesh_dir, COMM)[0]
    f = app_field.interpolate_lattice(mesh, model, degree=1)
    T = f.tensor.function_space
    n = T.dofmap.index_map.size_local
    pts = T.tabulate_dof_coordinates()[:n].copy()
    D = f.tensor.x.array[: 9 * n].reshape(n, 3, 3)
    m = np.round(pts[:, 2] / a0)
    assert np.allclose(pts[:, 2], a0 * m, atol=1e-9)
    pts[:, 2] = a0 * m  # the plane itself
    W = lattice.rates(pts, model)
    delta = a0 * lattice.stencil(model).offsets
    rate_sum = 0.5 * np.einsum("km,ma,mb->kab", W, delta, delta)
    scale = COMM.allreduce(float(np.max(np.abs(rate_sum), initial=0.0)), op=MPI.MAX)
    assert np.max(np.abs(D - rate_sum), initial=0.0) <= 1e-12 * scale
    mid = m == 0
    assert COMM.allreduce(int(np.sum(mid))) > 0
    D2 = lattice.diffusion_tensor(pts[mid, :2], model)
    assert np.max(np.abs(D[mid, :2, :2] - D2), initial=0.0) <= 1e-12 * scale
    assert np.max(np.abs(D[mid, :2, 2]), initial=0.0) <= 1e-12 * scale
    assert np.max(np.abs(D[mid, 2, :2]), initial=0.0) <= 1e-12 * scale


def test_tensor_field_equals_the_lattice_at_every_dof(cylinder):
    cfg, (mesh, _, _) = cylinder
    f = app_field.interpolate_lattice(mesh, cfg.model, degree=1)
    T = f.tensor.function_space
    n = T.dofmap.index_map.size_local
    pts = T.tabulate_dof_coordinates()[:n].copy()
    pts[:, 2] = app_field.snap_heights(pts[:, 2], COMM)
    D = lattice.diffusion_tensor_3d(pts, cfg.model)
    np.testing.assert_allclose(f.tensor.x.array[: 9 * n].reshape(n, 3, 3), D, rtol=1e-12, atol=1e-12)
    assert f.scalar is None and f.evaluated == n


def test_3d_defaults_from_the_mesh_study_unless_given():
    slab = app_config.build(domain={"geometry": "slab"})
    assert (slab.mesh.h_min, slab.diffusion.degree) == (app_config.H_MIN_3D, app_config.DEGREE_3D) == (3.0, 1)
    assert (slab.mesh.mass, slab.diffusion.zz) == (app_config.MASS_3D, "planes") == ("lumped", "planes")
    given = app_config.build(domain={"geometry": "layer"}, mesh={"h_min": 2.0, "mass": "consistent"}, diffusion={"degree": 2})
    assert (given.mesh.h_min, given.diffusion.degree, given.mesh.mass) == (2.0, 2, "consistent")
    p2 = app_config.build(domain={"geometry": "slab"}, mesh={"degree": 2})
    assert p2.mesh.mass == "consistent"  # lumping is for P1: not defaulted onto P2
    disk = app_config.build()
    assert (disk.mesh.h_min, disk.diffusion.degree, disk.mesh.mass) == (2.0, 2, "consistent")


def test_the_3d_presets_resolve_and_compare_like_with_like():
    from app.studies import catalogue as app_preset

    beyond = app_preset.resolve(app_preset.load_preset("beyond_2d"))
    groups: dict[str, list] = {}
    for cfg, extra in zip(beyond.configs, beyond.extras, strict=True):
        groups.setdefault(extra["group"], []).append((cfg, extra["reference"]))
    assert len(groups) == 12  # 4 fields x 3 geometries
    for members in groups.values():
        (ref,) = [c for c, is_ref in members if is_ref]
        (fe,) = [c for c, is_ref in members if not is_ref]
        assert ref.diffusion.form == "master" and fe.diffusion.form == "tensor"
        assert (ref.domain.geometry, ref.model, ref.domain.radius) == (fe.domain.geometry, fe.model, fe.domain.radius)
        assert fe.domain.lattice_matched == (fe.domain.geometry != "disk")
    prediction = app_preset.resolve(app_preset.load_preset("prediction_3d"))
    geometries = {(c.domain.geometry, c.domain.radius, c.domain.half_height(c.model.z0)) for c in prediction.configs}
    assert ("disk", 300.0, 0.0) in geometries and ("slab", 300.0, 45.0) in geometries and ("slab", 60.0, 15.0) in geometries


def test_quick_mode_keeps_small_disks_valid():
    from app.studies import catalogue as app_preset

    for name in ("beyond_2d", "spreading_3d"):
        for cfg in app_preset.resolve(app_preset.load_preset(name), quick=True).configs:
            assert cfg.mesh.h_max <= cfg.domain.radius / 2


def test_prediction_plots_decay_times_against_the_field_by_geometry():
    """prediction_3d's lifetimes plot: each geometry's series at R = 300 nm has 20 mT, 0.2 T
    and 2 T, and a key that is no positive number is one clear line."""
    from app.studies import catalogue as app_preset
    from app.studies import preset as figure_preset

    pred = app_preset.resolve(app_preset.load_preset("prediction_3d"))
    assert pred.spec.lifetimes == "model.B0"
    series: dict[str, list] = {}
    for cfg, extra in zip(pred.configs, pred.extras, strict=True):
        if extra["group"]:
            assert cfg.domain.radius == 300.0
            series.setdefault(extra["group"], []).append((cfg.domain.geometry, cfg.model.B0))
    assert {g: sorted(b for _, b in m) for g, m in series.items()} == {
        g: [0.02, 0.2, 2.0] for g in ("disk (2D, the article's)", "layer (3D)", "slab b = 10 nm (3D)")
    }
    assert all(len({geo for geo, _ in m}) == 1 for m in series.values())
    expected = r"figure.lifetimes: expected a key with a positive number, got 'model.nope'"
    with pytest.raises(app_config.ConfigError, match=expected):
        figure_preset.lifetime_x(pred.configs[0], "model.nope", "here")
