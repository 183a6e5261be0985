"""D^xx and D^zz along a radius of the dot, per isotope of GaAs, beside the article's crystal:
the lattice's diffusion tensor at points, with ``app.lattice`` (no mesh, no MPI).

    python examples/gaas_profile.py [out.png]          (default gaas_profile.png)
    python examples/gaas_profile.py --quick /tmp/x.png

(1,1), 0.2 T, l0 = 30 nm, in the middle of the dot layer (z = 0). Prints D at a few radii and
each isotope's bulk D; draws D^xx (solid) and D^zz (dashed) against r.
"""

import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import app  # noqa: E402
from app import lattice  # noqa: E402

quick = "--quick" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "gaas_profile.png"
r = np.linspace(0.0, 60.0, 13 if quick else 121)  # nm
points = np.column_stack([r, np.zeros_like(r), np.zeros_like(r)])

curves = {"article (75As, simple cubic)": (app.build(model={"B0": 0.2}).model, None)}
gaas = app.build(model={"crystal": "GaAs", "B0": 0.2}).model
curves.update({f"GaAs {iso.name}": (gaas, iso.name) for iso in lattice.isotopes(gaas)})

fig, ax = plt.subplots(figsize=(6.5, 4))
print(f"{'':28s}" + "".join(f"  D^xx r={x:g}" for x in (0, 20, 60)) + "   bulk D^xx (nm^2/s)")
for (label, (model, isotope)), color in zip(curves.items(), ["k", "C0", "C1", "C2"]):
    D = lattice.diffusion_tensor_3d(points, model, isotope=isotope)  # (N, 3, 3), nm^2/s
    bulk = lattice.bulk_diffusion(model, isotope=isotope)
    ax.plot(r, D[:, 0, 0], "-", color=color, label=f"{label}: bulk {bulk:.3g}")
    ax.plot(r, D[:, 2, 2], "--", color=color, lw=1)
    at = [D[np.argmin(abs(r - x)), 0, 0] for x in (0, 20, 60)]
    print(f"{label:28s}" + "".join(f"  {v:11.4g}" for v in at) + f"   {bulk:.4g}")
ax.set(xlabel="r (nm), z = 0", ylabel="D (nm$^2$/s)", yscale="log",
       title="D$^{xx}$ (solid) and D$^{zz}$ (dashed) at 0.2 T, (1,1)")  # fmt: skip
ax.legend(fontsize=8)
fig.savefig(out, dpi=120, bbox_inches="tight")
print(f"wrote {out}")
