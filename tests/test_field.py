"""The lattice field in DOLFINx: values at the dofs, rank-local evaluation, the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mpi4py import MPI

from app import config as app_config
from app.numerics import field as app_field
from app.numerics.fem import DiffusionProblem
from app.numerics.mesh import DiskSpec, disk_mesh
from app.physics import lattice

COMM = MPI.COMM_WORLD
SPEC = DiskSpec(radius=300.0, h_min=8.0, h_max=40.0, fine_radius=60.0, coarse_radius=200.0)


@pytest.fixture(scope="module")
def mesh(mesh_dir):
    return disk_mesh(SPEC, mesh_dir, COMM)[0]


def owned_points(f):
    V = f.function_space
    n = V.dofmap.index_map.size_local
    return V.tabulate_dof_coordinates()[:n, :2], n


@pytest.mark.parametrize("B0", [0.2, 2.0])
def test_interpolated_field_equals_diffusion_tensor_at_the_dofs(mesh, B0):
    model = app_config.Model(B0=B0)
    f = app_field.interpolate_lattice(mesh, model, degree=2)
    pts, n = owned_points(f.scalar)
    D = lattice.diffusion_tensor(pts, model)
    np.testing.assert_allclose(f.scalar.x.array[:n], lattice.isotropic(D), rtol=1e-12)
    np.testing.assert_allclose(f.tensor.x.array[: 4 * n].reshape(n, 2, 2), D, rtol=1e-12, atol=1e-14)
    # ghosts hold the owners' values
    all_pts = f.scalar.function_space.tabulate_dof_coordinates()[:, :2]
    np.testing.assert_allclose(f.scalar.x.array, lattice.isotropic(lattice.diffusion_tensor(all_pts, model)), rtol=1e-12)


def test_each_rank_evaluates_only_the_points_it_owns(mesh):
    f = app_field.interpolate_lattice(mesh, app_config.Model(), degree=2)
    assert f.evaluated == f.owned == f.scalar.function_space.dofmap.index_map.size_local
    assert COMM.allreduce(f.evaluated) == f.scalar.function_space.dofmap.index_map.size_global


def test_cache_hit_then_corrupt_and_stale_files_are_detected(mesh, shared_tmp):
    model = app_config.Model(B0=0.5)
    kw = dict(degree=1, mesh_name=SPEC.name, cache_dir=shared_tmp)
    first = app_field.interpolate_lattice(mesh, model, **kw)
    assert COMM.allgather(first.cache) == ["miss"] * COMM.size and first.evaluated == first.owned
    again = app_field.interpolate_lattice(mesh, model, **kw)
    assert again.cache == "hit" and again.evaluated == 0
    np.testing.assert_array_equal(again.scalar.x.array, first.scalar.x.array)
    np.testing.assert_array_equal(again.tensor.x.array, first.tensor.x.array)

    path = app_field.cache_path(shared_tmp, app_field.cache_key(model, SPEC.name, 1))
    # another model is another file
    other = app_config.Model(B0=0.6)
    assert app_field.cache_path(shared_tmp, app_field.cache_key(other, SPEC.name, 1)) != path

    # corrupt: flip bytes in the stored values
    if COMM.rank == 0:
        with np.load(path) as d:
            pts, vals, meta = d["points"], d["values"].copy(), d["meta"]
        vals[len(vals) // 2, 0] *= 1.5
        np.savez(path, points=pts, values=vals, meta=meta)
    COMM.barrier()
    bad = app_field.interpolate_lattice(mesh, model, **kw)
    assert bad.cache == "corrupt" and bad.evaluated == bad.owned
    np.testing.assert_array_equal(bad.scalar.x.array, first.scalar.x.array)
    assert app_field.interpolate_lattice(mesh, model, **kw).cache == "hit"  # rewritten

    # stale: a file whose recorded parameters are not the ones asked for
    if COMM.rank == 0:
        with np.load(path) as d:
            pts, vals, meta = d["points"], d["values"], json.loads(str(d["meta"]))
        meta["key"]["model"]["B0"] = 0.7
        np.savez(path, points=pts, values=vals, meta=np.array(json.dumps(meta)))
    COMM.barrier()
    assert app_field.interpolate_lattice(mesh, model, **kw).cache == "stale"

    # unreadable
    if COMM.rank == 0:
        path.write_bytes(b"not an npz")
    COMM.barrier()
    assert app_field.interpolate_lattice(mesh, model, **kw).cache == "corrupt"


@pytest.mark.parallel
@pytest.mark.parametrize("form", ["paper", "tensor"])
def test_lattice_run_is_the_same_on_one_and_two_ranks(mesh_dir, shared_tmp, form):
    cfg = app_config.build(
        model={"B0": 0.2},
        diffusion={"source": "lattice", "form": form, "cache": str(shared_tmp)},
        mesh={"h_min": 4.0, "h_max": 30.0, "directory": str(mesh_dir)},
        solver={"t_end": 1e3},
        output={"progress": False},
    )
    parallel = DiffusionProblem(cfg, COMM).solve()
    serial_cfg = cfg.model_copy(deep=True)
    serial_cfg.diffusion.cache = ""  # each rank computes the whole field itself here
    serial = DiffusionProblem(serial_cfg, MPI.COMM_SELF).solve()
    np.testing.assert_allclose(parallel.h, serial.h, rtol=1e-6, atol=0)
    assert parallel.h[-1] < 0.5
