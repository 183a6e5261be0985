"""The choice of discretisation, made once: the lattice master equation
(``diffusion.form = 'master'``) or the finite elements (every other form)."""

from __future__ import annotations

from mpi4py import MPI

from app.config import Config
from app.numerics.fem import DiffusionProblem
from app.numerics.master import MasterProblem
from app.numerics.problem import Problem


def make_problem(cfg: Config, comm: MPI.Comm | None = None) -> Problem:
    """The problem that solves ``cfg`` on ``comm`` (default MPI.COMM_WORLD), not yet set up."""
    comm = comm or MPI.COMM_WORLD
    if cfg.diffusion.form == "master":
        return MasterProblem(cfg, comm)
    return DiffusionProblem(cfg, comm)
