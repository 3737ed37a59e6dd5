"""Make the demo's sample polygons for the sen1floods11 chip (run once; output is shipped).

Water and land squares are taken where the chip's hand label is (almost) entirely one class; the urban
rectangles were drawn by eye around the two towns visible in the RGB. Usage:
    .venv/bin/python scripts/make_demo_samples.py ../shared/data/sen1floods11 resources/samples
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import xy

BLOCK = 16
PURITY = 0.98
PER_CLASS = 6
URBAN_PIXEL_BOXES = [(140, 195, 180, 250), (460, 375, 495, 435)]  # row0,col0,row1,col1


def square(transform, row0: int, col0: int, row1: int, col1: int) -> dict:
    (x0, y0), (x1, y1) = (xy(transform, r, c, offset="ul") for r, c in ((row0, col0), (row1, col1)))
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def main(data: Path, out: Path) -> None:
    with rasterio.open(data / "Spain_7370579_LabelHand.tif") as src:
        label, transform = src.read(1), src.transform
    rng = np.random.default_rng(7)
    features = []
    for name, value in (("water", 1), ("land", 0)):
        blocks = [(r, c) for r in range(0, label.shape[0] - BLOCK, BLOCK)
                  for c in range(0, label.shape[1] - BLOCK, BLOCK)
                  if (label[r:r + BLOCK, c:c + BLOCK] == value).mean() >= PURITY]
        for index in rng.choice(len(blocks), size=min(PER_CLASS, len(blocks)), replace=False):
            r, c = blocks[index]
            features.append({"type": "Feature", "properties": {"class": name},
                             "geometry": square(transform, r, c, r + BLOCK, c + BLOCK)})
    for box in URBAN_PIXEL_BOXES:
        features.append({"type": "Feature", "properties": {"class": "urban"},
                         "geometry": square(transform, *box)})
    out.mkdir(parents=True, exist_ok=True)
    target = out / "sen1floods11_samples.geojson"
    target.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n")
    print(f"{len(features)} polygons -> {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
