"""The lattice operator cache: hits, stale and corrupt entries, any number of ranks, races."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jobs
import numpy as np
import pytest
from conftest import COMM

from app.config import build
from app.numerics import operator_cache
from app.numerics.master import MasterProblem, operator_key
from app.runtime.output import read_csv

ROOT = Path(__file__).resolve().parents[1]


def config(cache: Path, **model):
    return build(
        model={"z0": 2.0, "l0": 1.5, **model},
        initial={"r0": 1.5},
        domain={"radius": 3.0, "geometry": "slab", "barrier": 1.0},
        diffusion={"form": "master", "source": "lattice", "cache": str(cache)},
        solver={"t_end": 10.0, "t_first": 0.1, "outputs_per_decade": 2},
        output={"progress": False},
    )


def solve(cfg):
    res = MasterProblem(cfg, COMM).solve()
    return res.h, res.stats


def entry_of(cfg) -> Path:
    return operator_cache.entry_dir(cfg.diffusion.cache, operator_key(cfg))


def test_second_run_hits_and_gives_the_same_answer(shared_tmp):
    cfg = config(shared_tmp / "c")
    h1, s1 = solve(cfg)
    h2, s2 = solve(cfg)
    assert (s1["operator_cache"], s2["operator_cache"]) == ("miss", "hit")
    assert s1["rates_evaluated"] > 0 and s2["rates_evaluated"] == 0
    np.testing.assert_allclose(h2, h1, rtol=1e-12)
    assert sorted(p.name for p in entry_of(cfg).iterdir()) == ["K.bin", "K.bin.info", "meta.json"]
    assert len(list((shared_tmp / "c").iterdir())) == 1  # no temporary directory left


def test_another_field_is_another_entry(shared_tmp):
    a, b = config(shared_tmp / "c"), config(shared_tmp / "c", B0=2.0)
    assert entry_of(a) != entry_of(b)
    _, sa = solve(a)
    _, sb = solve(b)
    assert sa["operator_cache"] == sb["operator_cache"] == "miss"


@pytest.mark.parametrize("damage", ["corrupt", "stale", "unreadable"])
def test_damaged_entries_are_detected_and_rebuilt(shared_tmp, damage):
    cfg = config(shared_tmp / "c")
    h1, _ = solve(cfg)
    entry = entry_of(cfg)
    if COMM.rank == 0:
        if damage == "corrupt":
            with (entry / "K.bin").open("r+b") as f:
                f.seek(200)
                f.write(b"\x7f" * 16)
        elif damage == "stale":
            meta = json.loads((entry / "meta.json").read_text())
            meta["key"]["model"]["B0"] = 9.0
            (entry / "meta.json").write_text(json.dumps(meta))
        else:
            (entry / "meta.json").write_text("{not json")
    COMM.barrier()
    h2, s2 = solve(cfg)
    assert s2["operator_cache"] == ("stale" if damage == "stale" else "corrupt")
    assert s2["rates_evaluated"] > 0
    np.testing.assert_allclose(h2, h1, rtol=1e-12)
    _, s3 = solve(cfg)
    assert s3["operator_cache"] == "hit"  # rewritten whole


@pytest.mark.serial
def test_two_runs_writing_the_same_entry_at_once_both_succeed(tmp_path):
    cache = tmp_path / "c"
    args = [
        "--single", "--set", "diffusion.form=master", "--set", "diffusion.source=lattice",
        "--set", "domain.radius=12", "--set", "initial.r0=5", "--set", "model.l0=5",
        "--set", f"diffusion.cache='{cache}'", "--set", "solver.t_end=10", "--set", "output.progress=false",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        jobs.start([sys.executable, "-m", "app.run", *args, "--out", str(tmp_path / f"o{i}")], env=env, cwd=tmp_path)
        for i in range(2)
    ]
    results = [jobs.finish(p, timeout=300) for p in procs]
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    entries = list(cache.iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("master-")
    h = [read_csv(tmp_path / f"o{i}" / "run" / "overhauser.csv")["h_over_h0"] for i in range(2)]
    np.testing.assert_allclose(h[0], h[1], rtol=1e-12)
    assert h[0][-1] < 0.99


@pytest.mark.parallel
def test_written_on_one_rank_read_on_two(shared_tmp):
    from mpi4py import MPI

    cfg = config(shared_tmp / "c")
    if COMM.rank == 0:
        res = MasterProblem(cfg, MPI.COMM_SELF).solve()
        h1 = res.h
        assert res.stats["operator_cache"] == "miss"
    else:
        h1 = None
    h1 = COMM.bcast(h1, root=0)
    h2, s2 = solve(cfg)
    assert s2["operator_cache"] == "hit" and s2["ranks"] == 2
    np.testing.assert_allclose(h2, h1, rtol=1e-6)
