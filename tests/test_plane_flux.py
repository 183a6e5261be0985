"""D^zz as the lattice carries it across its planes (lattice.plane_flux_zz, field.planes_zz):
the pair sum of the plain per-pair oracle, the bulk D^zz where nothing depends on height,
and its harmonic mean over each finite element's heights."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from app import config as app_config
from app.numerics import field as app_field
from app.numerics.cylinder import CylinderSpec
from app.numerics.mesh import cached_mesh
from app.physics import lattice

COMM = MPI.COMM_WORLD


def test_plane_flux_is_the_pair_sum_of_the_per_pair_loop():
    """D_p = a0^2 / 2 sum over the sites of the column and their partners across p of W |n_z|,
    from lattice.site_rates_loop (the specification as a loop), to 1e-12 of the largest,
    inside the layer, across its face (z0 / 2 = 5 nm lies in interval 8) and outside it."""
    model = app_config.Model(B0=0.2, electron_sz=0.5)
    a0 = model.a0
    x, y = 4.0, -2.5
    intervals = np.array([2, 7, 8, 9, 12])
    fast = lattice.plane_flux_zz([[x, y]], intervals, model)[0]
    reach = int(model.r_c)
    loop = np.zeros(len(intervals))
    for m in range(intervals.min() - reach + 1, intervals.max() + reach + 1):
        site = lattice.site_rates_loop(x, y, model, z=a0 * m)
        for n, w in zip(site.offsets[:, 2], site.W_ik, strict=True):
            lo, hi = min(m, m + n), max(m, m + n)
            loop += 0.5 * a0**2 * abs(n) * w * ((intervals >= lo) & (intervals < hi))
    assert np.max(np.abs(fast - loop)) <= 1e-12 * np.max(loop)
    assert fast[2] < 0.05 * fast[4]  # the face resists: D^zz there a small part of the host's


def test_plane_flux_without_the_electron_is_the_bulk_dzz():
    """Nothing depends on height: every interval carries the site's own D^zz = 19.94 nm^2/s."""
    singlet = app_config.Model(B0=0.2, electron_sz=0.0)
    bulk = lattice.diffusion_tensor_3d([[0.0, 0.0, 0.0]], singlet)[0, 2, 2]
    D = lattice.plane_flux_zz([[0.0, 0.0], [7.0, 3.0]], np.arange(-3, 30), singlet)
    assert abs(bulk - 19.94) < 0.01
    assert np.max(np.abs(D - bulk)) <= 1e-12 * bulk


def test_planes_zz_is_the_harmonic_mean_over_each_cells_heights(mesh_dir):
    """On a cylinder whose levels cut the lattice's intervals at arbitrary heights, D^zz in
    every cell (at its vertices) is the series resistance of the intervals it spans, and does
    not vary along a vertical line within a cell."""
    model = app_config.Model(B0=0.2, electron_sz=0.5)
    a0 = model.a0
    levels = (0.0, 1.0, 2.5, 4.2, 4.6, 4.9, 5.0, 5.3, 6.1, 8.0)  # not lattice planes
    spec = CylinderSpec(10.0, 3.0, 5.0, 4.0, 8.0, levels, (0.0, levels[-1]), model.z0 / 2)
    mesh = cached_mesh(spec, mesh_dir, COMM)[0]
    zz, status = app_field.planes_zz(mesh, model)
    assert status == "off"
    Q = zz.function_space
    n_cells = mesh.topology.index_map(3).size_local
    assert COMM.allreduce(n_cells) > 0
    xyz = Q.tabulate_dof_coordinates()
    intervals = np.arange(0, int(np.ceil(levels[-1] / a0)) + 1)
    rng = np.random.default_rng(COMM.rank)
    for c in rng.choice(n_cells, size=min(n_cells, 40), replace=False):
        dofs = Q.dofmap.cell_dofs(c)
        z = xyz[dofs, 2]
        lo, hi = z.min(), z.max()
        overlap = np.clip(np.minimum(hi, a0 * (intervals + 1)) - np.maximum(lo, a0 * intervals), 0, None)
        D_p = lattice.plane_flux_zz(xyz[dofs, :2], intervals, model)
        expected = (hi - lo) / (overlap / D_p).sum(axis=1)
        np.testing.assert_allclose(zz.x.array[dofs], expected, rtol=1e-10)


def test_the_solve_uses_the_planes_dzz(mesh_dir):
    """On a small slab the D^zz of the planes is what the finite elements solve with: without
    the electron (D^zz the bulk value either way) 'planes' and 'point' give the same h(t),
    with it the planes' face resists more and h decays more slowly."""
    from app.numerics.fem import DiffusionProblem

    def h(zz: str, sz: float):
        cfg = app_config.build(
            model={"B0": 0.2, "electron_sz": sz},
            domain={"geometry": "slab", "radius": 20.0, "barrier": 5.0},
            initial={"r0": 8.0},
            diffusion={"source": "lattice", "form": "tensor", "cache": "", "zz": zz},
            mesh={"h_min": 4.0, "h_max": 6.0, "fine_radius": 8.0, "coarse_radius": 16.0, "dz_face": 0.25,
                  "dz_host": 1.0, "directory": str(mesh_dir)},
            solver={"t_end": 100.0, "petsc_options": {"ksp_rtol": 1e-12}}, output={"progress": False},
        )  # fmt: skip
        return DiffusionProblem(cfg, COMM).solve().h

    np.testing.assert_allclose(h("planes", 0.0), h("point", 0.0), rtol=0, atol=1e-9)
    planes, point = h("planes", 0.5), h("point", 0.5)
    assert np.all(planes[1:] >= point[1:] - 1e-9) and np.max(planes - point) > 0.01


# --- the real crystal: each isotope's own planes (MODEL.md 11) -------------------------------

GAAS_SMALL = dict(crystal="GaAs", B0=0.2, electron_sz=0.5, r_c=2.0, r_g=2.0)


def test_each_sublattice_has_its_own_planes():
    """As at (a/2) m, Ga at a/4 + (a/2) m; the article's crystal a0 m."""
    from app.physics import crystal

    gaas = app_config.Model(crystal="GaAs")
    a = gaas.a0
    assert crystal.planes(gaas, "75As") == (a / 2, 0.0)
    assert crystal.planes(gaas, "69Ga") == crystal.planes(gaas, "71Ga") == (a / 2, a / 4)
    article = app_config.Model()
    assert crystal.planes(article) == (article.a0, 0.0)


def test_gaas_plane_flux_is_the_pair_sum_of_the_per_pair_loop():
    """For each isotope, D_p = h^2 / 2 sum over the sites on the sublattice's planes (a site of
    alpha put at (x, y, z_m), the crystal translated with it) and their partners across p of
    p_alpha W |n_z|, from crystal.site_rates_loop, to 1e-10 of the largest: inside the layer,
    across its face (z0 / 2 = 5 nm) and outside it."""
    from app.physics import crystal

    model = app_config.Model(**GAAS_SMALL)
    x, y = 4.0, -2.5
    for name in ("75As", "69Ga", "71Ga"):
        h, offset = crystal.planes(model, name)
        face = int(np.floor((model.z0 / 2 - offset) / h))  # the interval that holds the face
        intervals = np.array([1, face - 1, face, face + 1, face + 4])
        fast = crystal.plane_flux_zz([[x, y]], intervals, model, name)[0]
        iso = next(i for i in crystal.ISOTOPES if i.name == name)
        reach = 2 * int(model.r_c)
        loop = np.zeros(len(intervals))
        for m in range(intervals.min() - reach + 1, intervals.max() + reach + 1):
            site = crystal.site_rates_loop((x, y, offset + h * m), model, name)
            for n, w in zip(site.offsets[:, 2], site.W_ik, strict=True):
                lo, hi = min(m, m + n), max(m, m + n)
                loop += 0.5 * h**2 * iso.abundance * abs(n) * w * ((intervals >= lo) & (intervals < hi))
        assert np.max(np.abs(fast - loop)) <= 1e-10 * np.max(loop), name


def test_gaas_plane_flux_without_the_electron_is_each_isotopes_bulk_dzz():
    """Nothing depends on height: every interval of every sublattice carries the isotope's own
    bulk D^zz (11.84, 18.39, 24.99 nm^2/s at the default cutoffs; here r_c = 2)."""
    from app.physics import crystal

    singlet = app_config.Model(**{**GAAS_SMALL, "electron_sz": 0.0})
    for name in ("75As", "69Ga", "71Ga"):
        bulk = crystal.bulk_diffusion(singlet, name)[2, 2]
        D = crystal.plane_flux_zz([[0.0, 0.0], [7.0, 3.0]], np.arange(-3, 30), singlet, name)
        assert np.max(np.abs(D - bulk)) <= 1e-12 * bulk, name


def test_gaas_planes_zz_is_the_harmonic_mean_over_the_ga_planes(mesh_dir):
    """The Ga sublattice's intervals start at a/4: on a cylinder whose levels are not planes,
    D^zz in each cell is the series resistance of the Ga intervals it spans."""
    from app.physics import crystal

    model = app_config.Model(**GAAS_SMALL)
    h, offset = crystal.planes(model, "69Ga")
    levels = (0.0, 1.0, 2.5, 4.2, 4.6, 4.9, 5.0, 5.3, 6.1, 8.0)
    spec = CylinderSpec(10.0, 3.0, 5.0, 4.0, 8.0, levels, (0.0, levels[-1]), model.z0 / 2)
    mesh = cached_mesh(spec, mesh_dir, COMM)[0]
    zz, _ = app_field.planes_zz(mesh, model, isotope="69Ga")
    Q = zz.function_space
    n_cells = mesh.topology.index_map(3).size_local
    xyz = Q.tabulate_dof_coordinates()
    intervals = np.arange(-1, int(np.ceil(levels[-1] / h)) + 1)
    rng = np.random.default_rng(COMM.rank)
    for c in rng.choice(n_cells, size=min(n_cells, 12), replace=False):
        dofs = Q.dofmap.cell_dofs(c)
        z = xyz[dofs, 2]
        lo, hi = z.min(), z.max()
        bottom = offset + h * intervals
        overlap = np.clip(np.minimum(hi, bottom + h) - np.maximum(lo, bottom), 0, None)
        D_p = crystal.plane_flux_zz(xyz[dofs, :2], intervals, model, "69Ga")
        np.testing.assert_allclose(zz.x.array[dofs], (hi - lo) / (overlap / D_p).sum(axis=1), rtol=1e-10)
