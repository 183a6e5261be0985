"""Studies built from solves: the presets by name (:mod:`~app.studies.catalogue`; data files
in ``presets/``), the article's figures (:mod:`~app.studies.figures`, from
:mod:`~app.studies.preset`), parameter sweeps (:mod:`~app.studies.sweep`), fits to a measured decay
(:mod:`~app.studies.fit`), validation against
the lattice (:mod:`~app.studies.validation`) and the results' summary
(:mod:`~app.studies.report`, :mod:`~app.studies.headline`)."""
