"""Overhauser-field decay by nuclear spin diffusion in a quantum dot (FEniCSx).

Units throughout: nm, s, T, rad/s, nm^2/s.
"""

import os

# PT-SCOTCH (DOLFINx's mesh partitioner) starts threads in every MPI rank; with one rank
# per core they only contend: partitioning a 9e4-cell disk on 2 ranks took 1.2 s with
# threads and 0.03 s without (docs/performance.md). Users may still override it.
os.environ.setdefault("SCOTCH_PTHREAD_NUMBER", "1")
