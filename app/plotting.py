"""Matplotlib figures (rank 0 only; Agg backend, no screen needed). Units in every label."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from app.output import atomic_write  # noqa: E402

BULK_STYLE = dict(color="0.5", ls=":", lw=1.2)


def save(fig, path: str | Path) -> None:
    """Write a figure atomically as PNG and close it."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=130, bbox_inches="tight"), binary=True)
    plt.close(fig)


def field_cuts(cuts: dict, path: str | Path, title: str, bulk: float | None = None) -> None:
    """D, D^rr and D^tt against r along the x axis and along the diagonal (log scale)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (key, label) in zip(axes, (("axis", "along the x axis (y = 0)"), ("diag", "along the diagonal (x = y)"))):
        r = cuts["r_nm"]
        ax.plot(r, cuts[f"D_{key}"], color="k", lw=2, label="D = (D$^{xx}$ + D$^{yy}$)/2")
        ax.plot(r, cuts[f"Drr_{key}"], color="tab:blue", label="D$^{rr}$ (radial)")
        ax.plot(r, cuts[f"Dtt_{key}"], color="tab:orange", label="D$^{tt}$ (tangential)")
        if bulk is not None:
            ax.axhline(bulk, **BULK_STYLE, label=f"bulk {bulk:.2f} nm$^2$/s")
        ax.set_yscale("log")
        ax.set_xlabel("r (nm)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("diffusion coefficient (nm$^2$/s)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)
