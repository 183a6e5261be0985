"""A plot of one's own: h(t)/h(0) at two fields (lattice D) beside a constant-D solution, with matplotlib.

    python examples/own_plot.py [out.png]          (default own_plot.png)
    python examples/own_plot.py --quick /tmp/x.png

``result.t`` and ``result.h`` are plain NumPy arrays; everything else is the user's choice.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import app  # noqa: E402

quick = "--quick" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "own_plot.png"
coarse = {"mesh": {"h_min": 6.0, "h_max": 40.0}, "solver": {"outputs_per_decade": 3, "error_estimate": False}}

fig, ax = plt.subplots(figsize=(6, 4))
for B0 in (0.02, 2.0):
    cfg = app.build(model={"B0": B0}, diffusion={"source": "lattice"}, **(coarse if quick else {"solver": {"error_estimate": False}}))
    result = app.solve(cfg)
    ax.semilogx(result.t[1:], result.h[1:], label=f"B0 = {B0:g} T: t_1/2 = {result.t_half:.3g} s")
l0, r0, D = cfg.model.l0, cfg.initial.r0, 6.93  # the bulk D of the article's crystal, nm^2/s
ax.semilogx(result.t[1:], (l0**2 + r0**2) / (l0**2 + r0**2 + 4 * D * result.t[1:]), "k--", lw=1, label="constant D = 6.93 nm$^2$/s")
ax.set(xlabel="t (s)", ylabel="h(t) / h(0)", title="disk, R = 300 nm, tensor form")
ax.legend()

from mpi4py import MPI  # noqa: E402  (already started by app.solve)

if MPI.COMM_WORLD.rank == 0:
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(f"wrote {out}")
