"""The public API (docs/api.md): ``app.build`` / ``app.load`` / ``app.solve`` / ``Result``,
the same answer as the CLI's ``--single``, on one rank and on two, and the examples."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import jobs
import numpy as np
import pytest
from mpi4py import MPI

import app
from app import run as app_run
from app.numerics.result import COLUMNS, Result

COMM = MPI.COMM_WORLD
ROOT = Path(__file__).resolve().parents[1]
#: a small case: coarse disk, few outputs (a second or two)
SMALL = ["mesh.h_min=6", "mesh.h_max=40", "solver.outputs_per_decade=4", "diffusion.source='lattice'", "model.B0=2"]


def small(tmp: Path, *extra: str) -> list[str]:
    return [*SMALL, f"mesh.directory='{tmp / 'meshes'}'", f"diffusion.cache='{tmp / 'fields'}'", *extra]


def test_the_flat_api_names_what_docs_promise():
    assert set(app.__all__) >= {"build", "load", "solve", "Result", "Config", "ConfigError", "__version__"}
    assert app.Result is Result
    assert isinstance(app.__version__, str) and app.__version__[0].isdigit()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        app.nope  # noqa: B018


def test_bad_input_raises_the_clis_one_line():
    with pytest.raises(app.ConfigError) as err:
        app.build(model={"B0": -1.0})
    assert str(err.value) == "model.B0: expected greater than or equal to 0, got -1.0"
    with pytest.raises(app.ConfigError, match=r"^--set: expected section.key=value, got 'B0'$"):
        app.load(overrides=["B0"])


def test_solve_gives_a_result_with_arrays_and_decay_times(shared_tmp):
    cfg = app.load(overrides=small(shared_tmp, "solver.error_estimate=false"))
    result = app.solve(cfg)
    assert isinstance(result, Result)
    assert isinstance(result.t, np.ndarray) and isinstance(result.h, np.ndarray)
    assert result.t.shape == result.h.shape and result.t[0] == 0.0 and result.h[0] == 1.0
    assert np.all(np.diff(result.h) <= 1e-12)  # a decay
    assert 0 < result.t_half < result.t_1e < cfg.solver.t_end
    assert result.decay == {"t_half_s": result.t_half, "t_1e_s": result.t_1e}
    assert list(result.columns()) == list(COLUMNS)
    summary = result.summary()
    assert summary["decay"]["t_half_s"] == result.t_half
    assert summary["config"] == cfg.model_dump(mode="json")
    assert summary["ranks"] == COMM.size and summary["error_estimate"] is None
    # complete on every rank, the same everywhere
    assert COMM.allgather(result.t_half) == [result.t_half] * COMM.size
    assert math.isnan(Result(cfg, np.array([0.0, 1.0]), np.array([1.0, 0.9])).t_half)


def test_solve_refuses_a_runaway_mesh_before_any_work():
    cfg = app.build(mesh={"h_min": 1e-4, "h_max": 1e-4})
    with pytest.raises(app.ConfigError, match=r"^mesh: expected at most 2e\+06 cells \(solver.max_memory_gb = 8\)"):
        app.solve(cfg)


@pytest.mark.parametrize("ranks", ["all", "one"])
def test_solve_equals_the_clis_single_run(shared_tmp, ranks):
    """app.solve and ``python -m app.run --single`` (in-process, same communicator) give the
    same t_1/2 to 1e-9, on every rank of the job (1 rank, or 2 under mpirun -n 2) and on one
    of them (a small problem on fewer ranks)."""
    per_rank = "solver.min_unknowns_per_rank=0" if ranks == "all" else "solver.min_unknowns_per_rank=1000000"
    overrides_busy = "solver.avoid_busy_cores=false"  # other work on the machine must not change the ranks
    overrides = small(shared_tmp, per_rank, overrides_busy, f"output.name='api_{ranks}'")
    result = app.solve(app.load(overrides=overrides))
    out = shared_tmp / "cli"
    argv = ["--single", "--out", str(out)] + [a for o in overrides for a in ("--set", o)]
    assert app_run.main(argv, COMM) == 0
    recorded = json.loads((out / f"api_{ranks}" / "run.json").read_text())
    assert recorded["decay"]["t_half_s"] == pytest.approx(result.t_half, rel=1e-9)
    assert recorded["ranks_solving"] == result.ranks_solving == (COMM.size if ranks == "all" else 1)
    assert result.error_estimate is not None and recorded["error_estimate"]["time"] == pytest.approx(result.error_estimate["time"])


@pytest.mark.serial
@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_run(script, tmp_path):
    """Each example runs at reduced size (``--quick``) and prints its answer."""
    args = [sys.executable, str(ROOT / "examples" / script), "--quick"]
    if script == "own_plot.py":
        args.append(str(tmp_path / "plot.png"))
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    out = jobs.run(args, timeout=600, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    if script == "own_plot.py":
        assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    elif script == "gaas_profile.py":
        rows = {line[:28].strip(): [float(v) for v in line[28:].split()] for line in out.stdout.splitlines()[1:5]}
        bulk = [rows[f"GaAs {n}"][-1] for n in ("75As", "69Ga", "71Ga")]
        assert bulk == sorted(bulk) and 9 < bulk[0] < 12  # MODEL.md 11: about 10, 16 and 22 nm^2/s
        for name in ("75As", "69Ga", "71Ga"):  # at r = 60 nm, far outside the dot, D^xx is the bulk's within 1%
            assert rows[f"GaAs {name}"][2] == pytest.approx(rows[f"GaAs {name}"][3], rel=0.01)
        assert (tmp_path / "gaas_profile.png").read_bytes()[:4] == b"\x89PNG"
    elif script == "radii.py":
        rows = [line.split() for line in out.stdout.splitlines()[1:]]
        t_half = [float(r[1]) for r in rows]
        assert len(rows) == 2 and t_half[0] < t_half[1]  # a smaller crystal loses its polarisation sooner
    else:
        assert "lattice (master equation): t_1/2 =" in out.stdout and out.stdout.count("max |h - h_lattice|") == 3
