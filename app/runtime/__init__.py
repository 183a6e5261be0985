"""Process plumbing under MPI, independent of the physics: DOLFINx version differences
(:mod:`~app.runtime.compat`), one line and one exit for a failure on any rank
(:mod:`~app.runtime.failure`), atomic output files and the output lock
(:mod:`~app.runtime.output`), progress bars or lines (:mod:`~app.runtime.progress`), and
tasks on groups of ranks with a sleeping barrier (:mod:`~app.runtime.scheduler`)."""
