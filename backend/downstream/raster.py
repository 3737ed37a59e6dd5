"""Helpers of the downstream maps: device choice, class dtypes, result rasters, progress.

Embedding GeoTIFFs are read with :class:`backend.inference.embedding_raster.EmbeddingRaster` (the
one reader for the whole backend); :class:`Grid` is re-exported here for the downstream modules.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from backend.inference.embedding_raster import Grid


def pick_device(device: str = "auto") -> Any:
    """:func:`backend.inference.model.resolve_device` as a ``torch.device`` (auto/cpu/cuda)."""
    import torch

    from backend.inference.model import resolve_device

    return torch.device(resolve_device(device))


def class_dtype(count: int) -> str:
    """uint8 for up to 254 classes (0 is nodata), else uint16."""
    return "uint8" if count <= 254 else "uint16"


def create_raster(path: str | os.PathLike[str], grid: Grid, dtype: str, nodata: float | int,
                  count: int = 1, description: str | None = None) -> Any:
    """Open a tiled, compressed GeoTIFF on ``grid`` for writing (use it on a temporary path).

    Callers write results inside :func:`backend.io.atomic.atomic_paths` so the raster and its
    style appear together, and only when complete.
    """
    import rasterio

    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": count,
               "dtype": dtype, "nodata": nodata, "crs": grid.crs, "transform": grid.transform,
               "compress": "deflate", "predictor": 3 if dtype.startswith("float") else 2}
    if grid.width >= 16 and grid.height >= 16:
        side = min(256, 16 * (min(grid.width, grid.height) // 16))
        profile.update(tiled=True, blockxsize=side, blockysize=side)
    from backend.io.outputs import record_profile

    record_profile(path, profile)
    dataset = rasterio.open(path, "w", **profile)
    if description:
        for band in range(1, count + 1):
            dataset.set_band_description(band, description)
    return dataset


def tracker(reporter: Any) -> Callable[..., Iterable[Any]]:
    """``reporter.track`` over a list when a reporter is given, else the plain list."""
    def track(items: list[Any], description: str, start: float, end: float) -> Iterable[Any]:
        if reporter is None:
            return items
        return reporter.track(items, total=len(items), description=description, start=start, end=end)
    return track
