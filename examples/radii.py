"""The decay time against the size of the crystal around the dot: a loop over disk radii.

    python examples/radii.py            # R = 100 ... 400 nm, the default mesh
    mpirun -n 2 python examples/radii.py
    python examples/radii.py --quick    # a coarse mesh and few outputs (the test suite's size)

Each radius is one ``app.solve``; the decay times come back on every rank, and rank 0 prints.
"""

import sys

import app

quick = "--quick" in sys.argv
coarse = {"mesh": {"h_min": 6.0, "h_max": 40.0}, "solver": {"outputs_per_decade": 3, "error_estimate": False}}
if not quick:
    coarse = {"solver": {"error_estimate": False}}
radii = [100.0, 200.0] if quick else [100.0, 200.0, 300.0, 400.0]  # h_max <= R / 2: 40 nm fits R = 100

rows = []
for R in radii:
    cfg = app.build(domain={"radius": R}, model={"B0": 0.2}, diffusion={"source": "lattice"}, **coarse)
    result = app.solve(cfg)
    rows.append((R, result.t_half, result.t_1e))

from mpi4py import MPI  # noqa: E402  (already started by app.solve)

if MPI.COMM_WORLD.rank == 0:
    print("R (nm)   t_1/2 (s)   t_1/e (s)")
    for R, t_half, t_1e in rows:
        print(f"{R:6.0f}   {t_half:9.4g}   {t_1e:9.4g}")
