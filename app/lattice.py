"""The stable name of the lattice physics, :mod:`app.physics.lattice` (flip-flop rates and
D^ab at a point; pure NumPy, no MPI or DOLFINx): ``rates``, ``diffusion_tensor``,
``diffusion_tensor_3d`` and the rest, re-exported."""

from app.physics.lattice import *  # noqa: F403
from app.physics.lattice import __all__  # noqa: F401
