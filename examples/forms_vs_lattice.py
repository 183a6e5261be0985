"""The three continuum forms against the lattice master equation (the ground truth) at one field.

    python examples/forms_vs_lattice.py [B0 in T, default 0.2]      # R = 100 nm
    python examples/forms_vs_lattice.py --quick

The same disk (geometry ``disk``: the article's 2D model, its columns on the lattice), the same
output times, so the curves can be compared point by point: max |h - h_lattice| and t_1/2.
"""

import sys

import numpy as np

import app

quick = "--quick" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
B0 = float(args[0]) if args else 0.2
R = 60.0 if quick else 100.0
common = {
    "model": {"B0": B0},
    "domain": {"radius": R},
    "initial": {"r0": 20.0},
    "mesh": {"h_min": 4.0, "h_max": 15.0, "fine_radius": 30.0, "coarse_radius": 50.0} if quick else {"h_max": 20.0},
    "solver": {"t_end": 3000.0, "outputs_per_decade": 3 if quick else 10, "error_estimate": False},
}

lattice = app.solve(app.build(diffusion={"form": "master", "source": "lattice"}, **common))
lines = [f"lattice (master equation): t_1/2 = {lattice.t_half:.4g} s"]
for form in ("tensor", "conservative", "paper"):
    result = app.solve(app.build(diffusion={"form": form, "source": "lattice"}, **common))
    gap = float(np.max(np.abs(result.h - lattice.h)))
    lines.append(f"{form:>12}: t_1/2 = {result.t_half:.4g} s, max |h - h_lattice| = {gap:.3f}")

from mpi4py import MPI  # noqa: E402  (already started by app.solve)

if MPI.COMM_WORLD.rank == 0:
    print(f"B0 = {B0:g} T, disk R = {R:g} nm")
    print("\n".join(lines))
