"""The lattice master equation (article eq 17, MODEL.md 8) as a distributed PETSc problem.

    d u_k / dt = sum_i W_ik (u_i - u_k)

on the columns of the disk (geometry ``disk``, MODEL.md 8b: the article's 2D reduction,
with symmetrised column rates) or on the z-resolved lattice (``layer``, ``slab``,
MODEL.md 8a: the rates of the infinite crystal, partners beyond the faces dropped).
A partner outside the disk is held at u = 0 (``dirichlet``: a jump out is lost) or
dropped (``zero_flux``). The real crystal (``model.crystal = 'GaAs'``, MODEL.md 11): one
problem per isotope on its own zincblende sublattice (:class:`app.physics.sites.SublatticeSites`,
not folded), the rates of :func:`app.physics.crystal.rates`, the Ga isotopes in the virtual
crystal (every cation site, rates p_alpha W_ik) or in an explicit random realisation
(``diffusion.realisation``, :func:`app.physics.crystal.holds`).

With L the rate operator and m the orbit sizes of the (folded) unknowns, m_k L_kj =
m_j L_jk, so the stepper gets the symmetric pair M = diag(m) and K = -diag(m) L
(positive semi-definite: CG with AMG), the same M u' + K u = 0 as the finite elements.
h = sum_k m_k A_k u_k.

Distributed like the finite-element problem: each rank owns a contiguous block of
(folded) sites (:mod:`app.physics.sites`), evaluates the rates of its own rows only, and
assembles its rows of an MPIAIJ matrix from CSR (exact preallocation). The column
symmetrisation needs the reverse rate w(k' -> k) of each pair: each rank evaluates the
column rates at the partners of its own rows, where they are needed. No rank holds the
whole lattice, and nothing is gathered. Units: nm, s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from petsc4py import PETSc

from app.config import Config, ConfigError
from app.numerics import operator_cache
from app.numerics.problem import Problem
from app.numerics.stepper import TimeStepper, release_garbage
from app.physics import crystal, lattice
from app.physics.pump import rate as pump_rate
from app.physics.sites import Sites, SublatticeSites
from app.runtime.progress import bar as progress_bar

#: BoomerAMG for the lattice, over the stepper's symmetric defaults (HMIS, ext+i, Chebyshev):
#: aggressive coarsening on the first level keeps the hierarchy small for operators whose
#: rows couple many partners of similar strength (the electron-mediated rates near the dot).
#: Measured, 2 ranks (docs/performance.md): HMIS, ext+i and this took the layer R = 30 nm at
#: 20 mT from 31.1 to 10.7 s; the Chebyshev smoother and four weights then the disk R = 300
#: nm at 0.2 T from 26.0 to 21.1 s (medians of 3, alternated).
AMG_OPTIONS = {"pc_hypre_boomeramg_agg_nl": 1}
#: rows evaluated at a time (bounds the rate arrays: batch x 256 doubles, a few MB)
BATCH = 4096
#: peak bytes per nonzero of K, all ranks together: K and J = K + shift M (12 B each) and the
#: transient COO/CSR arrays of the assembly; the AMG works on the far sparser K_pc. Measured:
#: slab R = 40 nm, 1.42e7 nonzeros, 1.36 GB peak resident (docs/performance.md)
BYTES_PER_NONZERO = 96
#: bytes per unknown: the state, weights, the TS's work vectors (BDF3), positions
BYTES_PER_UNKNOWN = 400


def operator_key(config: Config, isotope: str | None = None) -> dict:
    """Every parameter that changes K (the operator cache's key); the real crystal's names the
    isotope and the realisation (the article's key is unchanged)."""
    d = config.domain
    key = {
        "operator_version": operator_cache.OPERATOR_VERSION,
        "model": config.model.model_dump(mode="json"),
        "geometry": d.geometry,
        "radius": d.radius,
        "half_height": d.half_height(config.model.z0),
        "boundary": d.boundary,
        "fold": config.diffusion.fold,
    }
    if config.model.crystal != "article":
        key.update(isotope=isotope, realisation=config.diffusion.realisation)
    return key


def sites_of(config: Config, isotope: str | None = None) -> Sites | SublatticeSites:
    """The (folded) sites of the article's lattice, or those of ``isotope``'s sublattice of GaAs."""
    m = config.model
    Z = config.domain.half_height(m.z0)
    if m.crystal != "article":
        iso = crystal._isotope(m, isotope or "75As")
        return SublatticeSites.create(config.domain.radius, Z, m.a0, iso.sublattice)
    return Sites.create(config.domain.radius, Z, m.a0, config.diffusion.fold)


def crystal_partners(model) -> int:
    """The like partners of a GaAs site within r_c (the same for every isotope): (a/2) n, n1 + n2 + n3
    even, 0 < |n|^2 <= (2 r_c)^2; counted without building the rates' stencil."""
    return len(crystal.own_sites(crystal._bound(2 * model.r_c))) - 1


# --- column rates (MODEL.md 8b) -------------------------------------------------------------


@dataclass(frozen=True)
class ColumnStencil:
    """The column offsets c = (n_x, n_y) != 0 of the stencil, and how the rates fold onto them."""

    offsets: np.ndarray  # (C, 2) integer
    gather: np.ndarray  # (M, C) 0/1: W (b, M) @ gather = column rates (b, C)
    reverse: np.ndarray  # (C,) index of -c


def column_stencil(model) -> ColumnStencil:
    off = lattice.stencil(model).offsets
    xy = off[:, :2]
    moving = np.any(xy != 0, axis=1)  # partners in the same column carry no net flux
    cols, inv = np.unique(xy[moving], axis=0, return_inverse=True)
    gather = np.zeros((len(off), len(cols)))
    gather[np.nonzero(moving)[0], inv.ravel()] = 1.0
    key = {tuple(c): i for i, c in enumerate(cols)}
    reverse = np.array([key[(-c[0], -c[1])] for c in cols])
    return ColumnStencil(cols, gather, reverse)


def batches(n: int, bar=None):
    """Start indices of the batches of ``n`` rows, advancing a progress bar if given."""
    for s in range(0, n, BATCH):
        yield s
        if bar is not None:
            bar.update(min(BATCH, n - s))


def column_rates(xy: np.ndarray, model, cs: ColumnStencil | None = None, bar=None) -> np.ndarray:
    """w(k -> k + c) for columns at xy (N, 2) nm: the site at z = 0 to every site of column k + c."""
    cs = cs or column_stencil(model)
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    out = np.empty((len(xy), len(cs.offsets)))
    for s in batches(len(xy), bar):
        p = xy[s : s + BATCH]
        W = lattice.rates(np.column_stack([p, np.zeros(len(p))]), model)
        out[s : s + BATCH] = W @ cs.gather
    return out


# --- size and memory --------------------------------------------------------------------------


def estimate(config: Config) -> dict:
    """Unknowns, sites, nonzeros and memory (all ranks together) of a master-equation job.

    The real crystal: those of its largest isotope system (one per isotope, solved one after
    another, each released before the next), with ``per_isotope`` {name: (unknowns, nonzeros)}.
    Nonzeros are an upper bound: every partner within r_c, before the rim and faces cut them.
    """
    if config.model.crystal != "article":
        per_row = crystal_partners(config.model) + 1
        per = {}
        for iso in crystal.isotopes(config.model):
            n = sites_of(config, iso.name).size
            per[iso.name] = (n, n * per_row)
        n, nonzeros = max(per.values())
        gb = (nonzeros * BYTES_PER_NONZERO + n * BYTES_PER_UNKNOWN) / 1e9
        return {"unknowns": n, "sites": n, "nonzeros_max": nonzeros, "memory_gb": gb, "per_isotope": per}
    sites = sites_of(config)
    if config.geometry.dim == 2:  # the columns
        per_row = len(column_stencil(config.model).offsets) + 1
    else:
        per_row = len(lattice.stencil(config.model).offsets) + 1
    n = sites.size
    nonzeros = n * per_row
    gb = (nonzeros * BYTES_PER_NONZERO + n * BYTES_PER_UNKNOWN) / 1e9
    return {"unknowns": n, "sites": sites.full_size, "nonzeros_max": nonzeros, "memory_gb": gb}


def check_budget(config: Config) -> dict:
    """The estimate, or ConfigError (one line) above ``solver.max_memory_gb``."""
    est = estimate(config)
    limit = config.solver.max_memory_gb
    if est["memory_gb"] > limit:
        if "per_isotope" in est:
            raise ConfigError(
                f"solver.max_memory_gb: expected at least the {est['memory_gb']:.3g} GB this lattice needs per isotope "
                f"({est['unknowns']:.3g} sites, {est['nonzeros_max']:.3g} nonzeros; the isotopes are solved one "
                f"after another; reduce domain.radius or model.r_c, or raise the budget), got {limit:g}"
            )
        raise ConfigError(
            f"solver.max_memory_gb: expected at least the {est['memory_gb']:.3g} GB this lattice needs "
            f"({est['unknowns']:.3g} unknowns, {est['nonzeros_max']:.3g} nonzeros; "
            f"reduce domain.radius or raise the budget), got {limit:g}"
        )
    return est


# --- the problem ------------------------------------------------------------------------------


class MasterProblem(Problem):
    """Eq 17 on the lattice of ``config`` (``diffusion.form = 'master'``).

    Pipeline (``setup``): sites -> operator (rates of this rank's rows, MPIAIJ) ->
    initial state -> observables -> time stepper; then ``solve()`` as for the finite
    elements, with the same output times, progress, statistics and Result.
    """

    def stages(self):
        return (
            self.create_sites,
            self.create_operator,
            self.create_initial,
            self.create_observables,
            self.create_time_stepper,
        )

    def setup(self) -> MasterProblem:
        self.estimate = check_budget(self.config)
        return super().setup()

    @property
    def gaas(self) -> bool:
        """The real crystal (MODEL.md 11): one system per isotope, on its own sublattice."""
        return self.config.model.crystal != "article"

    def create_sites(self) -> None:
        cfg = self.config
        if self.gaas and self.isotope is None:
            raise ValueError(f"isotope: expected one of {[i.name for i in crystal.isotopes(cfg.model)]} with "
                             f"model.crystal = {cfg.model.crystal!r} (one system per isotope), got None")  # fmt: skip
        self.sites = sites_of(cfg, self.isotope)
        self.lo, self.hi = self.sites.block(self.comm.rank, self.comm.size)
        self.n = self.sites.positions(np.arange(self.lo, self.hi))  # (own, 3) integer: a0 n, or (a/4) m for GaAs
        self.m = self.sites.orbit_size(self.n)
        if self.gaas:
            self.xyz = self.sites.nm(self.n)
            # the sites that hold the isotope: all (the virtual crystal, 75As) or a realisation's
            self.holds = crystal.holds(self.n, cfg.model, self.isotope, cfg.diffusion.realisation)
        else:
            self.xyz = cfg.model.a0 * self.n.astype(float)
            self.holds = np.ones(len(self.n), dtype=bool)
        self.m_held = np.where(self.holds, self.m, 0.0)  # orbit sizes of the sites that hold the isotope

    # --- the operator ---------------------------------------------------------------------

    def create_operator(self) -> None:
        """K (from the cache, or from the rates of this rank's rows), M and the AMG's K_pc."""
        cfg = self.config
        own, N = self.hi - self.lo, self.sites.size
        sizes = ((own, N), (own, N))
        self.cache = "off"
        entry = None
        if cfg.diffusion.cache:
            key = operator_key(cfg, self.isotope)
            entry = operator_cache.entry_dir(cfg.diffusion.cache, key)
            self.cache = self.comm.bcast(operator_cache.status(entry, key) if self.comm.rank == 0 else None, root=0)
            if self.cache in ("stale", "corrupt") and self.comm.rank == 0:
                print(f"lattice operator cache {entry} is {self.cache}: rebuilt and rewritten", flush=True)
        self.rates_evaluated = 0
        if self.cache == "hit":
            K = operator_cache.load(entry, sizes, self.comm)
            ptr, idx, data = K.getValuesCSR()
        else:
            ptr, idx, data = self._assemble_rows()
            K = PETSc.Mat().createAIJ(sizes, csr=(ptr, idx, data), comm=self.comm)
            K.assemble()
            if entry is not None:
                operator_cache.save(entry, key, K, self.comm)
        ptr_m = np.arange(own + 1, dtype=PETSc.IntType)
        idx_m = np.arange(self.lo, self.hi, dtype=PETSc.IntType)
        M = PETSc.Mat().createAIJ(sizes, csr=(ptr_m, idx_m, self.m.copy()), comm=self.comm)
        M.assemble()
        self.K, self.M = K, M
        self.K_pc = self._sparsified(ptr, idx, data, cfg.solver.pc_drop)

    def _assemble_rows(self):
        """CSR (indptr, global columns, values) of this rank's rows of K = -diag(m) L."""
        if self.gaas:
            rows, cols, vals = self._crystal_entries()
        elif self.config.geometry.dim == 2:  # the columns
            rows, cols, vals = self._column_entries()
        else:
            rows, cols, vals = self._lattice_entries()
        import scipy.sparse as sp

        csr = sp.coo_matrix((vals, (rows, cols)), shape=(self.hi - self.lo, self.sites.size)).tocsr()
        csr.sum_duplicates()
        csr.sort_indices()
        return csr.indptr.astype(PETSc.IntType), csr.indices.astype(PETSc.IntType), csr.data

    def _sparsified(self, indptr, indices, data, drop: float):
        """A sparser K for the AMG: couplings below ``drop`` x the row's largest dropped,
        the pattern symmetrised, the diagonal set so that every row sum equals K's (the
        lattice's loss), so it stays a symmetric M-matrix with K's action on smooth states."""
        if drop <= 0:
            return None
        own, N = self.hi - self.lo, self.sites.size
        rows = np.repeat(np.arange(own), np.diff(indptr))
        off = indices != rows + self.lo
        magnitude = np.where(off, np.abs(data), 0.0)
        # every row holds its diagonal, so no row is empty and reduceat gives each row's largest
        big = np.maximum.reduceat(magnitude, indptr[:-1]) if own else np.zeros(0)
        keep = ~off | (magnitude >= drop * big[rows])  # the diagonal always
        ptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=own))]).astype(PETSc.IntType)
        Kd = PETSc.Mat().createAIJ(
            ((own, N), (own, N)), csr=(ptr, indices[keep].astype(PETSc.IntType), data[keep]), comm=self.comm
        )
        Kd.assemble()
        Kt = Kd.transpose(PETSc.Mat())  # a new matrix (without one, petsc4py transposes in place)
        Kd.axpy(1.0, Kt, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
        Kd.scale(0.5)
        Kt.destroy()
        ones = self.K.createVecRight()
        ones.set(1.0)
        target, have = self.K.createVecLeft(), self.K.createVecLeft()
        self.K.mult(ones, target)
        Kd.mult(ones, have)
        target.axpy(-1.0, have)  # the diagonal that gives K's row sums
        Kd.setDiagonal(target, addv=PETSc.InsertMode.ADD_VALUES)
        Kd.assemble()
        return Kd

    def _bar(self, n: int):
        """A progress bar for rank 0's rate evaluation, when it is long enough to watch."""
        if not (self.config.output.progress and self.comm.rank == 0 and n > 8 * BATCH):
            return None
        return progress_bar(n, "lattice rates (rank 0)", "site")

    def _coo(self, k_local, j, w, loss):
        """COO entries of K for rows k (local), partner indices j with rates w, and loss per row."""
        m = self.m
        out_rate = np.bincount(k_local, weights=w, minlength=len(m)) + loss
        diag = np.arange(len(m))
        rows = np.concatenate([k_local, diag])
        cols = np.concatenate([j, diag + self.lo])
        vals = np.concatenate([-m[k_local] * w, m * out_rate])
        return rows, cols, vals

    def _lattice_entries(self):
        """Rows of the z-resolved lattice (8a): W_ik of the infinite crystal, faces cut."""
        cfg = self.config
        sites, model = self.sites, cfg.model
        off = lattice.stencil(model).offsets
        dirichlet = cfg.domain.boundary == "dirichlet"
        ks, js, ws = [], [], []
        loss = np.zeros(len(self.n))
        self.rates_evaluated = len(self.n)
        bar = self._bar(len(self.n))
        for s in batches(len(self.n), bar):
            n = self.n[s : s + BATCH]
            W = lattice.rates(self.xyz[s : s + BATCH], model)  # (b, M)
            q = (n[:, None, :] + off[None, :, :]).reshape(-1, 3)
            w = W.ravel()
            k = np.repeat(np.arange(s, s + len(n)), len(off))
            faces = sites.within_faces(q)
            inside = sites.inside(q)
            coupled = faces & inside
            if dirichlet:
                lost = faces & ~inside
                loss[s : s + len(n)] += np.bincount(k[lost] - s, weights=w[lost], minlength=len(n))
            ks.append(k[coupled])
            js.append(sites.index(q[coupled]))
            ws.append(w[coupled])
        if bar is not None:
            bar.close()
        return self._coo(np.concatenate(ks), np.concatenate(js), np.concatenate(ws), loss)

    def _crystal_entries(self):
        """Rows of one isotope's sublattice of GaAs (MODEL.md 11): W_ik of the infinite crystal
        (:func:`app.physics.crystal.rates`), faces cut, rim Dirichlet or zero flux.

        The virtual crystal: every site of the sublattice, each pair at p_alpha W_ik (the
        partner holds alpha with probability p_alpha; M = 1, as the weight p_alpha of both
        sides would scale M and K alike). A realisation: W_ik for the pairs whose sites both
        hold alpha, none for the others (the sites of the other isotope stay in the system,
        uncoupled, with u = 0 and no weight in h); a partner outside the disk is lost only if
        it holds alpha. Rates are evaluated for the rows that hold alpha only.
        """
        cfg = self.config
        sites, model, seed = self.sites, cfg.model, cfg.diffusion.realisation
        iso = crystal._isotope(model, self.isotope)
        off = 2 * crystal.partner_offsets(model, iso)  # units of a/4
        scale = iso.abundance if seed is None else 1.0
        dirichlet = cfg.domain.boundary == "dirichlet"
        rows = np.nonzero(self.holds)[0]
        ks, js, ws = [], [], []
        loss = np.zeros(len(self.n))
        self.rates_evaluated = len(rows)
        bar = self._bar(len(rows))
        for s in batches(len(rows), bar):
            r = rows[s : s + BATCH]
            n = self.n[r]
            W = scale * crystal.rates(self.xyz[r], model, iso)  # (b, M)
            q = (n[:, None, :] + off[None, :, :]).reshape(-1, 3)
            w = W.ravel()
            k = np.repeat(r, len(off))
            keep = sites.within_faces(q)
            if seed is not None:
                keep &= crystal.holds(q, model, iso, seed)
            inside = sites.inside(q)
            coupled = keep & inside
            if dirichlet:
                lost = keep & ~inside
                loss += np.bincount(k[lost], weights=w[lost], minlength=len(self.n))
            ks.append(k[coupled])
            js.append(sites.index(q[coupled]))
            ws.append(w[coupled])
        if bar is not None:
            bar.close()
        if not ks:
            ks, js, ws = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        return self._coo(np.concatenate(ks), np.concatenate(js), np.concatenate(ws), loss)

    def _column_entries(self):
        """Rows of the column model (8b): symmetrised column rates (w(k->k') + w(k'->k)) / 2."""
        cfg = self.config
        sites, model, a0 = self.sites, cfg.model, cfg.model.a0
        cs = column_stencil(model)
        c = cs.offsets
        nxy = self.n[:, :2]
        # every partner column of this rank's rows, and the rows themselves, once: the
        # reverse rates are needed there
        q = (nxy[:, None, :] + c[None, :, :]).reshape(-1, 2)
        shift = sites.nmax + int(np.max(np.abs(c))) + 1  # every partner column fits the key
        span = 2 * shift + 1

        def key(p):
            return (p[:, 0] + shift) * span + (p[:, 1] + shift)

        ukeys = np.unique(np.concatenate([key(q), key(nxy)]))
        upos = np.stack([ukeys // span - shift, ukeys % span - shift], axis=1)
        bar = self._bar(len(upos))
        w_at = column_rates(a0 * upos.astype(float), model, cs, bar)  # (U, C)
        if bar is not None:
            bar.close()
        self.rates_evaluated = len(upos)
        own_w = w_at[np.searchsorted(ukeys, key(nxy))]
        where = np.searchsorted(ukeys, key(q))
        forward = own_w.ravel()  # (own * C,)
        reverse = w_at[where, np.tile(cs.reverse, len(nxy))]
        w = 0.5 * (forward + reverse)
        k = np.repeat(np.arange(len(nxy)), len(c))
        qq = np.column_stack([q, np.zeros(len(q), dtype=np.int64)])
        inside = sites.inside(qq)
        loss = np.zeros(len(nxy))
        if cfg.domain.boundary == "dirichlet":
            loss = np.bincount(k[~inside], weights=w[~inside], minlength=len(nxy))
        return self._coo(k[inside], sites.index(qq[inside]), w[inside], loss)

    # --- state and observables ------------------------------------------------------------

    def _vec(self, values: np.ndarray) -> PETSc.Vec:
        v = self.K.createVecRight()
        v.getArray()[:] = values
        return v

    def create_initial(self) -> None:
        cfg = self.config
        r2 = np.sum(self.xyz[:, :2] ** 2, axis=1)
        u0 = np.exp(-r2 / cfg.initial.r0**2)
        z, z0 = self.xyz[:, 2], cfg.model.z0
        self.in_layer = np.abs(z) <= z0 / 2 + 1e-12
        if cfg.geometry.dim == 3:
            u0 = np.where(self.in_layer, u0, 0.0)
            if cfg.z_profile == "pumped":
                u0 = u0 * np.cos(np.pi * z / z0) ** 2
        self.u = self._vec(np.where(self.holds, u0, 0.0))

    def create_observables(self) -> None:
        model = self.config.model
        # h weights each site by A(x, y, z) / A0 (the disk's sites sit at z = 0); GaAs: the
        # isotope's A_k over its coupling at the centre, on the sites that hold it
        if self.gaas:
            A = crystal.hyperfine(self.xyz, model, self.isotope) / crystal.centre_coupling(model, self.isotope)
        else:
            A = lattice.hyperfine(self.xyz, model) / model.A0
        m = self.m_held
        self.w = self._vec(m * A)
        self.total = self._vec(m)
        self.r2 = self._vec(m * np.sum(self.xyz[:, :2] ** 2, axis=1))  # the pumped profile's width
        self.w_layer = self._vec(np.where(self.in_layer, m, 0.0))

    def new_stepper(self, K=None, *, K_pc=None, source=None, scale: float | None = None, budget: bool = True,
                    solver=None):
        return TimeStepper(
            self.comm, self.M, self.K if K is None else K, self.u, self.w, solver or self.config.solver,
            symmetric=True, mass_pattern=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN, diagonal_mass=True,
            K_pc=self.K_pc if K is None else K_pc, source=source, scale=scale,
            defaults=AMG_OPTIONS, total=self.total, layer=self.w_layer if budget else None,
        )  # fmt: skip

    def pump_operator(self):
        """MODEL.md 12 on the lattice: the rate on each site's diagonal, K + diag(m Gamma) (and
        the AMG's K_pc likewise), and b = m Gamma P_inf; the disk's columns pump at z = 0."""
        m_gamma = self.m_held * pump_rate(self.xyz, self.config, self.isotope)  # only the sites that hold it pump
        out = []
        for K in (self.K, self.K_pc):
            if K is None:
                out.append(None)
                continue
            Kp = K.duplicate(copy=True)
            Kp.setDiagonal(self._vec(m_gamma), addv=PETSc.InsertMode.ADD_VALUES)
            Kp.assemble()
            out.append(Kp)
        return out[0], self._vec(m_gamma * self.config.pump.p_inf), out[1]

    def cuts(self) -> dict:
        comm, n, u = self.comm, self.n, self.u.getArray(readonly=True)
        a0 = self.config.model.a0
        centre = np.all(n == 0, axis=1)
        u_centre = comm.allreduce(float(u[centre].sum()))  # the one site at the origin
        mid = n[:, 2] == 0
        parts = comm.allgather((a0 * np.hypot(n[mid, 0], n[mid, 1]), u[mid].copy()))
        r, um = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
        order = np.argsort(r, kind="stable")
        out = {"u_centre": u_centre, "r_nm": r[order], "u_mid": um[order]}
        if self.config.geometry.dim == 3:
            axis = (n[:, 0] == 0) & (n[:, 1] == 0)
            parts = comm.allgather((a0 * n[axis, 2].astype(float), u[axis].copy()))
            z, ua = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
            order = np.argsort(z, kind="stable")
            out.update(z_nm=z[order], u_axis=ua[order])
        return out

    @property
    def state(self) -> PETSc.Vec:
        """u on this rank's (folded) sites, a PETSc Vec."""
        return self.u

    def statistics(self) -> dict:
        info = self.K.getInfo(PETSc.Mat.InfoType.GLOBAL_SUM)
        return {
            "unknowns": int(self.sites.size),
            "sites": int(self.sites.full_size),
            "folded": bool(self.sites.fold),
            "operator_cache": self.cache,
            "rates_evaluated": int(self.comm.allreduce(self.rates_evaluated)),
            "sites_holding": int(self.comm.allreduce(int(np.count_nonzero(self.holds)))),
            "nonzeros": int(info["nz_used"]),
            "estimate": self.estimate,
            **({"isotope": self.isotope, "realisation": self.config.diffusion.realisation} if self.gaas else {}),
        }

    def release(self) -> None:
        """Drop the operator, the preconditioner's matrix and the stepper (after the solve, before
        the next isotope's system is built) and free them now (collective): left to the next
        stepper's creation, they outlived the next isotope's assembly, and the peak was two
        operators (GaAs layer R = 20 nm, r_c = 2: 1.7 GB per rank for the first isotope, 2.6
        by the third)."""
        self.K = self.M = self.K_pc = self.stepper = self.ts = None
        release_garbage(self.comm)
