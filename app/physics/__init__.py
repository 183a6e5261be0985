"""The physics, pure NumPy (no MPI, PETSc or DOLFINx), above :mod:`app.config`: the lattice's
flip-flop rates and diffusion tensor (:mod:`~app.physics.lattice`; real GaAs per isotope,
:mod:`~app.physics.crystal`), the pump phase's rate (:mod:`~app.physics.pump`), the lattice's sites and
their symmetry (:mod:`~app.physics.sites`), the geometry's label and initial state
(:mod:`~app.physics.geometry`), the observables derived from h(t)
(:mod:`~app.physics.observables`), the measured decay times (:mod:`~app.physics.experiments`) and the
pump phase's rate and closed form (:mod:`~app.physics.pump`)."""
