"""The diffusion problem on the disk (2D) or the cylinder (3D), solved with a PETSc TS (nm, s).

One object, one explicit pipeline (``setup``):

    mesh -> spaces -> diffusion field -> forms -> observables -> time stepper

then ``solve()`` integrates from 0 to ``solver.t_end`` and records h(t)/h(0) at
log-spaced output times. The continuum forms are those of MODEL.md section 5:

- ``paper``:        (du/dt, v) + (D grad u, grad v) + (v grad D, grad u) = 0
- ``conservative``: (du/dt, v) + (D grad u, grad v) = 0
- ``tensor``:       (du/dt, v) + (D^ab grad u, grad v) = 0

``domain.geometry = "layer" | "slab"`` solves the tensor form in 3D (MODEL.md 10) on the
cylinder of :mod:`app.numerics.cylinder`, with D^ab 3x3; ``paper`` and ``conservative`` are 2D only.

Mass M and stiffness K are assembled once and handed, with the state and the weight of
the observable, to the shared time stepper (:mod:`app.numerics.stepper`), which integrates
M u' + K u = s(t) b (a source only for manufactured solutions).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.config import Config
from app.numerics import mesh as app_mesh
from app.numerics.cylinder import LAYER_TAG
from app.numerics.disk import RIM_TAG
from app.numerics.field import lattice_diffusion
from app.numerics.problem import Problem
from app.numerics.stepper import TimeStepper
from app.physics import crystal
from app.physics.geometry import continuum_initial_state, continuum_top
from app.physics.pump import rate_scale
from app.runtime import compat

__all__ = ["DiffusionProblem", "assemble_vector"]


def hyperfine_profile(x, l0: float, z0: float | None = None):
    """A / A0 for UFL spatial coordinates x (nm): exp(-(x^2 + y^2) / l0^2) on the disk; in 3D
    (``z0`` given) times cos^2(pi z / z0) for |z| <= z0 / 2 and 0 beyond (MODEL.md 8a, 10)."""
    gauss = ufl.exp(-(x[0] ** 2 + x[1] ** 2) / l0**2)
    if z0 is None:
        return gauss
    return ufl.conditional(ufl.le(abs(x[2]), z0 / 2), ufl.cos(ufl.pi * x[2] / z0) ** 2, 0.0) * gauss


def assemble_vector(form) -> PETSc.Vec:
    """Assemble a linear form and add the ghost contributions to their owners."""
    vec = fem_petsc.assemble_vector(fem.form(form))
    vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    return vec


def scalar_of(D):
    """Isotropic part of a 2D diffusion coefficient: D itself, or the half-trace of a tensor."""
    return ufl.tr(D) / 2 if ufl.shape(D) == (2, 2) else D


def tensor_of(D, dim: int = 2):
    """Tensor form of a diffusion coefficient: D itself, or D * identity (dim x dim) for a scalar."""
    return D if ufl.shape(D) != () else D * ufl.Identity(dim)


#: a sparse direct factorisation instead of the AMG, on one rank, up to this many unknowns, per
#: dimension (benchmarks/direct_crossover.py, docs/performance.md). 2D: on the default mesh it
#: halves the time loop; at 1.8e5 unknowns the AMG wins. 3D: the fill is far larger, and the
#: factorisation lost already at the smallest layer measured (2976 unknowns 1.2x, 7456 3.7x
#: slower than the AMG; the layer R = 60 nm, 46 110 unknowns, took 2.67 s a step): never.
DIRECT_MAX_DOFS = {2: 60_000, 3: 0}


def direct_options(solver, symmetric: bool, ranks: int, dofs: int, dim: int = 2) -> dict:
    """The preconditioner of a small problem on one rank: a Cholesky (LU for the paper form)
    factorisation, which the stepper reuses across shifts like the AMG hierarchy; ``{}``
    (the AMG) on more ranks, above :data:`DIRECT_MAX_DOFS` of the mesh's dimension, or when
    ``solver.petsc_options`` sets anything of the preconditioner (a ``pc_*`` key)."""
    if ranks > 1 or dofs > DIRECT_MAX_DOFS[dim] or any(k.startswith("pc_") for k in solver.petsc_options):
        return {}
    return {"pc_type": "cholesky" if symmetric else "lu", "pc_factor_mat_ordering_type": "nd"}


class DiffusionProblem(Problem):
    """Polarisation diffusion on the disk or the cylinder.

    Parameters
    ----------
    config:
        The validated configuration.
    comm:
        Communicator the mesh is distributed over.
    diffusion:
        D in nm^2/s: a number, a constant 2x2 array, a DOLFINx Function (scalar or 2x2
        tensor valued) on this problem's mesh, or a callable ``f(problem) -> Function``
        called once the mesh exists. ``None`` takes ``[diffusion]`` from the configuration.
    initial:
        Callable ``x -> u0`` for interpolation (x of shape (3, N)); default the Gaussian
        exp(-(x^2 + y^2) / r0^2), in 3D times the z-profile (:mod:`app.physics.geometry`).
    source:
        Optional manufactured source ``(g, s)``: a UFL expression g(x) and a function s(t),
        adding s(t) g to the right-hand side. For verification.
    isotope:
        The real crystal's isotope whose polarisation this problem carries (``model.crystal =
        'GaAs'``: one problem per isotope, :func:`app.numerics.discretisation.solve_once`); None
        for the article's crystal.
    mesh:
        Optional prebuilt ``(mesh, cell_tags, facet_tags)``; default the Gmsh disk, or the
        cylinder for layer and slab. The Dirichlet facets are those tagged
        :data:`app.numerics.disk.RIM_TAG`, or every exterior facet of a mesh without that tag.
    like:
        Another DiffusionProblem whose mesh (the configuration's own, from the cache) this one
        shares, its lattice field still cached: the pump phase's problem when the electron's
        state during the pump differs from the decay's, so that the states are on one mesh.
    """

    def __init__(
        self,
        config: Config,
        comm: MPI.Comm = MPI.COMM_WORLD,
        *,
        diffusion=None,
        initial: Callable | None = None,
        source: tuple | None = None,
        mesh=None,
        isotope: str | None = None,
        like: DiffusionProblem | None = None,
    ):
        super().__init__(config, comm, isotope)
        self._diffusion_input = diffusion
        self._initial = initial
        self._source = source
        self._mesh_input = mesh
        self._like = like

    # --- pipeline -----------------------------------------------------------------------

    def stages(self):
        return (
            self.create_mesh,
            self.create_spaces,
            self.create_diffusion,
            self.create_forms,
            self.create_observables,
            self.create_time_stepper,
        )

    def create_mesh(self) -> None:
        if self._like is not None:
            self.mesh, self.cell_tags, self.facet_tags = self._like.mesh, self._like.cell_tags, self._like.facet_tags
        elif self._mesh_input is not None:
            self.mesh, self.cell_tags, self.facet_tags = self._mesh_input
        else:
            self.mesh, self.cell_tags, self.facet_tags = app_mesh.cached_mesh(
                self.mesh_spec(), self.config.mesh.directory, self.comm
            )
        self.dim = self.mesh.geometry.dim

    def mesh_spec(self):
        return app_mesh.spec_of(self.config, self.sublattice)

    @property
    def sublattice(self) -> str | None:
        """The real crystal's isotope's sublattice (its own planes, MODEL.md 11); None otherwise."""
        if self.isotope is None or self.config.model.crystal == "article":
            return None
        return next(iso.sublattice for iso in crystal.isotopes(self.config.model) if iso.name == self.isotope)

    def create_spaces(self) -> None:
        self.V = fem.functionspace(self.mesh, ("Lagrange", self.config.mesh.degree))
        self.x = ufl.SpatialCoordinate(self.mesh)
        tdim = self.mesh.topology.dim
        self.mesh.topology.create_connectivity(tdim - 1, tdim)
        rim = self.facet_tags.find(RIM_TAG) if self.facet_tags is not None else np.zeros(0, np.int32)
        if self.comm.allreduce(len(rim)) == 0:  # a mesh of one's own: its whole boundary
            rim = dmesh.exterior_facet_indices(self.mesh.topology)
        self.bcs = []
        if self.config.domain.boundary == "dirichlet":
            dofs = fem.locate_dofs_topological(self.V, tdim - 1, rim)
            self.bcs = [fem.dirichletbc(PETSc.ScalarType(0), dofs, self.V)]
        self.u = fem.Function(self.V, name="u")

    def create_diffusion(self) -> None:
        """The diffusion field D (nm^2/s) as a UFL object: Constant or Function."""
        D = self._diffusion_input
        if D is None:
            d = self.config.diffusion
            if d.source == "constant":
                D = d.constant
            else:
                D = lattice_diffusion(self)
        if callable(D) and not isinstance(D, ufl.core.expr.Expr):  # a UFL expression is callable too
            D = D(self)
        if isinstance(D, (fem.Function, ufl.core.expr.Expr)):
            self.D = D
        else:
            self.D = fem.Constant(self.mesh, np.asarray(D, dtype=PETSc.ScalarType))
        if ufl.shape(self.D) not in ((), (self.dim, self.dim)):
            raise ValueError(
                f"diffusion: expected a scalar or a {self.dim}x{self.dim} tensor, got shape {ufl.shape(self.D)}"
            )

    def create_forms(self) -> None:
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        form = self.config.diffusion.form
        if form == "paper":
            D = scalar_of(self.D)
            k = D * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
            if isinstance(self.D, fem.Function):
                k += v * ufl.inner(ufl.grad(D), ufl.grad(u)) * ufl.dx
        elif form == "conservative":
            k = scalar_of(self.D) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
        else:  # tensor
            k = ufl.inner(tensor_of(self.D, self.dim) * ufl.grad(u), ufl.grad(v)) * ufl.dx
        self.symmetric = form != "paper"
        # lumped: the vertex rule makes M diagonal (stored in K's pattern, so the stepper's
        # AXPY stays SAME_NONZERO_PATTERN) and positive, which with the M-matrix part of K
        # keeps u from the undershoots a consistent mass gives a discontinuous initial state
        dx_mass = ufl.dx
        if self.config.mesh.mass == "lumped":
            dx_mass = ufl.dx(metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
        self.dx_mass = dx_mass
        self.a_mass = fem.form(u * v * dx_mass)
        self.a_stiff = fem.form(k)

        self.M = compat.assemble_matrix(self.a_mass, self.bcs, diagonal=1.0)
        self.M.assemble()
        self.K = compat.assemble_matrix(self.a_stiff, self.bcs, diagonal=0.0)
        self.K.assemble()

        self.b = None
        if self._source is not None:
            g, self._source_time = self._source
            self.b = assemble_vector(g * v * ufl.dx)
            fem_petsc.set_bc(self.b, self.bcs)

        # initial state
        self.u.interpolate(self._initial or continuum_initial_state(self.config, self.sublattice))
        if self.bcs:
            self.bcs[0].set(self.u.x.array)  # u = 0 on the rim, also at t = 0
        self.u.x.scatter_forward()

    def new_stepper(self, K=None, *, K_pc=None, source=None, scale: float | None = None, budget: bool = True,
                    solver=None):
        if source is None and self.b is not None:
            source = (self.b, self._source_time)
        return TimeStepper(
            self.comm, self.M, self.K if K is None else K, self.u.x.petsc_vec, self.w, solver or self.config.solver,
            symmetric=self.symmetric, source=source, total=self.total, layer=self.layer if budget else None,
            diagonal_mass=self.config.mesh.mass == "lumped", scale=scale,
            defaults=direct_options(self.config.solver, self.symmetric, self.comm.size, self.u.x.petsc_vec.getSize(),
                                   self.dim),
        )  # fmt: skip

    def pump_rate(self):
        """Gamma(x) of the pump phase as a UFL expression, 1/s: gamma0 (A_alpha(x) / A_ref)^2."""
        m = self.config.model
        profile = hyperfine_profile(self.x, m.l0, m.z0 if self.dim == 3 else None)
        return self.config.pump.gamma0 * rate_scale(m, self.isotope) * profile**2

    def pump_operator(self):
        """K + R and b with R = (Gamma u, v) and b = P_inf (Gamma, v), integrated as M is (the
        vertex rule with a lumped mass: R diagonal, and with D = 0 each node pumps exactly as
        P_inf (1 - exp(-Gamma t)); else a degree-6 rule, the same for R and b, so R 1 = b / P_inf)."""
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        gamma = self.pump_rate()
        dx = self.dx_mass if self.config.mesh.mass == "lumped" else ufl.dx(metadata={"quadrature_degree": 6})
        R = compat.assemble_matrix(fem.form(gamma * u * v * dx), self.bcs, diagonal=0.0)
        R.assemble()
        K = self.K.duplicate(copy=True)
        K.axpy(1.0, R, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
        R.destroy()
        b = assemble_vector(self.config.pump.p_inf * gamma * v * dx)
        fem_petsc.set_bc(b, self.bcs)
        return K, b, None

    def cuts(self) -> dict:
        V, comm = self.V, self.comm
        owned = V.dofmap.index_map.size_local * V.dofmap.index_map_bs
        x = V.tabulate_dof_coordinates()[:owned]
        u = self.u.x.array[:owned]
        r = np.hypot(x[:, 0], x[:, 1])
        tol = 1e-9
        centre = np.abs(x).max(axis=1) <= tol
        found = comm.allreduce(int(centre.sum()))
        u_centre = comm.allreduce(float(u[centre].sum())) / found if found else float("nan")
        mid = np.abs(x[:, 2]) <= tol if self.dim == 3 else np.ones(len(x), bool)

        def gathered(*arrays):
            parts = comm.allgather([a.copy() for a in arrays])
            return [np.concatenate([p[i] for p in parts]) for i in range(len(arrays))]

        r_mid, u_mid = gathered(r[mid], u[mid])
        order = np.argsort(r_mid, kind="stable")
        out = {"u_centre": u_centre, "r_nm": r_mid[order], "u_mid": u_mid[order]}
        if self.dim == 3:
            z_ax, u_ax = gathered(x[r <= tol, 2], u[r <= tol])
            order = np.argsort(z_ax, kind="stable")
            out.update(z_nm=z_ax[order], u_axis=u_ax[order])
        return out

    def create_observables(self) -> None:
        v = ufl.TestFunction(self.V)
        m = self.config.model
        profile = hyperfine_profile(self.x, m.l0, m.z0 if self.dim == 3 else None)
        self.w = assemble_vector(profile * v * ufl.dx(metadata={"quadrature_degree": 6}))
        self.total = assemble_vector(v * ufl.dx)
        self.r2 = assemble_vector((self.x[0] ** 2 + self.x[1] ** 2) * v * ufl.dx)  # the pumped profile's width
        self.layer = None  # 3D: the weight of the dot layer's cells, for the budget
        if self.dim == 3 and self.cell_tags is not None:
            dx_layer = ufl.Measure("dx", domain=self.mesh, subdomain_data=self.cell_tags, subdomain_id=LAYER_TAG)
            self.layer = assemble_vector(v * dx_layer)

    # --- observables and the time loop ---------------------------------------------------

    @property
    def state(self) -> PETSc.Vec:
        """u as a PETSc Vec (the stepper advances it in place)."""
        return self.u.x.petsc_vec

    def output_callback(self, on_output: Callable | None) -> Callable | None:
        """``on_output(t, u)`` receives the state as a DOLFINx Function."""
        if on_output is None:
            return None
        out = fem.Function(self.V, name="u")

        def callback(t, vec):
            vec.copy(out.x.petsc_vec)
            out.x.scatter_forward()
            on_output(t, out)

        return callback

    def finish(self) -> None:
        self.u.x.scatter_forward()

    def statistics(self) -> dict:
        stats = {
            "dofs": int(self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs),
            "cells": int(self.mesh.topology.index_map(self.dim).size_global),
        }
        if self.dim == 3:
            stats["z_top_nm"] = continuum_top(self.config, self.sublattice)
        return stats
