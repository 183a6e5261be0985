"""GaAs rates benchmark (not a test): app.crystal's fast path against the article crystal's app.lattice.rates.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 scripts/fenicsx python3 benchmarks/crystal.py

Run single-threaded so "sites per second" is per core. Both crystals are timed in the same
run on the same points, alternated (GaAs, article, GaAs, ...), default cutoffs, 0.2 T,
s = +1/2; medians of --repeats runs. Two cases: every point at z = 0 (the 2D model), and
the points spread over a few heights with each height's terms built afresh (the caches of
both crystals cleared before each run), which is what a first evaluation of a 3D field
pays. The stencils (once per model geometry and isotope) are timed once, apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from app.config import Model
from app.physics import crystal, lattice

HEIGHTS = (0.0, 1.7, 3.4, 4.9, 6.5)  # nm: mid-plane, inside, near the face, outside the layer


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128, help="points per BLAS product of the GaAs fast path")
    args = ap.parse_args()
    gaas, article = Model(crystal="GaAs"), Model()
    rng = np.random.default_rng(1)
    xy = rng.uniform(-100, 100, (args.points, 2))
    flat = np.column_stack([xy, np.zeros(len(xy))])
    layered = np.column_stack([xy, np.array(HEIGHTS)[np.arange(len(xy)) % len(HEIGHTS)]])

    for iso in crystal.ISOTOPES:
        t = _time(lambda iso=iso: crystal.stencil(gaas, iso))
        st = crystal.stencil(gaas, iso)
        print(f"GaAs {iso.name} stencil: {t:.2f} s ({len(st.offsets)} partners, {len(st.cells)} cells, "
              f"{len(st.near_dB) / len(st.offsets):.0f} own near sites per pair)")  # fmt: skip
    t = _time(lambda: lattice.stencil(article))
    print(f"article stencil: {t:.2f} s ({len(lattice.stencil(article).offsets)} partners)")
    crystal.rates(flat[:10], gaas, "75As", batch=args.batch)  # warm (z = 0 terms cached)
    lattice.rates(flat[:10], article)

    def cold(fn):
        crystal._height_terms.cache_clear()
        lattice._height_terms.cache_clear()
        return fn()

    cases = {
        "z = 0": (flat, lambda f: f()),
        f"{len(HEIGHTS)} heights, terms rebuilt": (layered, cold),
    }
    for label, (pts, wrap) in cases.items():
        times = {"GaAs 75As": [], "article": []}
        for _ in range(args.repeats):
            times["GaAs 75As"].append(wrap(lambda pts=pts: _time(lambda: crystal.rates(pts, gaas, "75As", batch=args.batch))))
            times["article"].append(wrap(lambda pts=pts: _time(lambda: lattice.rates(pts, article))))
        med = {k: statistics.median(v) for k, v in times.items()}
        rate = {k: len(pts) / v for k, v in med.items()}
        print(
            f"{label}: GaAs {rate['GaAs 75As']:,.0f} sites/s, article {rate['article']:,.0f} sites/s "
            f"(medians of {args.repeats}, {len(pts)} points), article / GaAs = {med['GaAs 75As'] / med['article']:.1f}"
        )

    # where the GaAs time goes, one batch at z = 0
    st, ht = crystal.stencil(gaas, "75As"), crystal.height_terms(gaas, "75As", 0.0)
    b = flat[: args.batch, :2]
    h = (gaas.a0 / 2) * np.arange(-st.R, st.R + 1)
    X = np.exp(-((b[:, 0:1] + h) ** 2) / gaas.l0**2)
    Y = np.exp(-((b[:, 1:2] + h) ** 2) / gaas.l0**2)
    XY = X[:, st.cx] * Y[:, st.cy]
    reps = 20
    t_gemm = _time(lambda: [XY @ ht.G for _ in range(reps)]) / reps / len(b)
    t_all = _time(lambda: [crystal._batch_rates(b, gaas, crystal.ISOTOPES[0], st, ht) for _ in range(reps)]) / reps / len(b)
    t_ht = _time(lambda: crystal._height_terms.__wrapped__(gaas.a0, crystal.ISOTOPES[0], crystal._unlike(crystal.ISOTOPES[0]),
                                                            gaas.z0, gaas.r_c, gaas.r_g, 1.234))  # fmt: skip
    flops = 2 * len(st.cells) * len(st.offsets)
    print(
        f"GaAs per site: {t_all * 1e6:.1f} us, of which the near-set product {t_gemm * 1e6:.1f} us "
        f"({len(st.cells)} x {len(st.offsets)}, {flops / t_gemm / 1e9:.1f} GFLOP/s); one height's terms: {t_ht * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
