"""Sample polygons on a raster grid: the window they cover and their rasterised footprint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.downstream.raster import Grid
from backend.io.vectors import SamplePolygon


def polygons_window(polygons: Sequence[SamplePolygon], grid: Grid) -> Any | None:
    """The grid window (whole cells, clipped to the grid) covering every polygon; None if outside."""
    from rasterio.features import bounds as geometry_bounds
    from rasterio.windows import Window, from_bounds

    boxes = np.array([geometry_bounds(p.geometry) for p in polygons])
    left, bottom = boxes[:, 0].min(), boxes[:, 1].min()
    right, top = boxes[:, 2].max(), boxes[:, 3].max()
    window = from_bounds(left, bottom, right, top, transform=grid.transform)
    col0, row0 = int(np.floor(window.col_off)), int(np.floor(window.row_off))
    col1 = int(np.ceil(window.col_off + window.width))
    row1 = int(np.ceil(window.row_off + window.height))
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, grid.width), min(row1, grid.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def rasterize_polygons(polygons: Sequence[SamplePolygon], grid: Grid, window: Any) -> np.ndarray:
    """Position + 1 (in ``polygons``) of the polygon over each cell of ``window`` (0 = no polygon).

    Cells are taken by centre (``all_touched=False``). A polygon that covers no cell centre
    (smaller than a cell) is burnt again with ``all_touched=True`` into the still-free cells it
    touches, so that no polygon is lost. Where polygons overlap, the later one wins.
    """
    from rasterio.features import rasterize
    from rasterio.windows import transform as window_transform

    transform = window_transform(window, grid.transform)
    shape = (int(window.height), int(window.width))
    shapes = [(p.geometry, number) for number, p in enumerate(polygons, start=1)]
    burnt = rasterize(shapes, out_shape=shape, transform=transform, fill=0, all_touched=False,
                      dtype="int32")
    missing = set(range(1, len(polygons) + 1)) - set(np.unique(burnt).tolist())
    for number in sorted(missing):
        touched = rasterize([(polygons[number - 1].geometry, 1)], out_shape=shape, transform=transform,
                            fill=0, all_touched=True, dtype="uint8").astype(bool)
        free = touched & (burnt == 0)
        burnt[free if free.any() else touched] = number
    return burnt
