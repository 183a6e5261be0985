"""The discretisations and their solve: the Gmsh meshes (:mod:`~app.numerics.disk`,
:mod:`~app.numerics.cylinder`, cached by :mod:`~app.numerics.mesh`), the lattice D in DOLFINx
(:mod:`~app.numerics.field`), the finite elements (:mod:`~app.numerics.fem`) and the lattice
master equation (:mod:`~app.numerics.master`), both extending :class:`~app.numerics.problem.Problem`
and sharing the PETSc time stepper (:mod:`~app.numerics.stepper`); the pre-flight size checks
(:mod:`~app.numerics.budget`), the ranks a case is worth (:mod:`~app.numerics.fewer_ranks`), the
error estimate, and :func:`~app.numerics.solve.solve` with its :class:`~app.numerics.result.Result`."""
