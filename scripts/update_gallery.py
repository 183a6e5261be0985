"""Copy the default run's figures into docs/gallery/ for the README (run after `make run`).

    scripts/fenicsx python3 scripts/update_gallery.py [results]

Animations become strips of four frames (PNG), so the README shows them without GIFs.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

root = Path(__file__).resolve().parents[1]
results = Path(sys.argv[1] if len(sys.argv) > 1 else root / "results")
gallery = root / "docs" / "gallery"
gallery.mkdir(parents=True, exist_ok=True)
summary = json.loads((results / "summary.json").read_text())
for fig in summary["figures"]:
    for img in fig["images"]:
        shutil.copyfile(results / img, gallery / Path(img).name)
    for media in fig.get("media", {}).values():
        if "animation" not in media:
            continue
        frames = iio.imread(results / media["animation"], index=None)
        pick = np.linspace(0, len(frames) - 1, 6).round().astype(int)[1:5]
        strip = np.concatenate([frames[i] for i in pick], axis=1)
        iio.imwrite(gallery / (Path(media["animation"]).stem + "_frames.png"), strip)
print(f"gallery: {sorted(p.name for p in gallery.iterdir())}")
