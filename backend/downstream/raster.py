"""Block-wise reading of embedding GeoTIFFs and atomic writing of result rasters.

An embedding GeoTIFF (written by ``embed``) holds one band per embedding dimension on the patch
grid; a patch is nodata when any of its bands is NaN. Readers here never hold more than one
block of rows in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UserError

BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform and size in cells."""

    crs: Any
    transform: Any
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def scaled(self, factor: int) -> Grid:
        """The grid with cells ``factor`` times smaller (patch grid → pixel grid for factor 8)."""
        from rasterio.transform import Affine

        return Grid(self.crs, self.transform * Affine.scale(1 / factor), self.width * factor,
                    self.height * factor)


class EmbeddingReader:
    """Reads an embedding GeoTIFF in row blocks as ``[rows, cols, dim]`` float32 arrays.

    Args:
        path: the embedding GeoTIFF.
        block_bytes: the float32 size one block may take in memory.
    """

    def __init__(self, path: str | os.PathLike[str], block_bytes: int = BLOCK_BYTES) -> None:
        import rasterio

        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"embedding raster not found: {self.path}")
        try:
            self._dataset = rasterio.open(self.path)
        except Exception as exc:
            raise UserError(f"cannot open embeddings {self.path}: {exc}") from None
        ds = self._dataset
        if ds.crs is None:
            raise UserError(f"embedding raster {self.path.name} has no CRS")
        self.grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
        self.dim = ds.count
        self.descriptions = ds.descriptions
        row_bytes = max(1, ds.width * self.dim * 4)
        self.block_rows = max(1, min(ds.height, block_bytes // row_bytes))

    def close(self) -> None:
        self._dataset.close()

    def __enter__(self) -> EmbeddingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def windows(self) -> list[Any]:
        """Full-width row blocks covering the grid."""
        from rasterio.windows import Window

        return [Window(0, row, self.grid.width, min(self.block_rows, self.grid.height - row))
                for row in range(0, self.grid.height, self.block_rows)]

    def read(self, window: Any) -> np.ndarray:
        """``[rows, cols, dim]`` float32; NaN where the raster has nodata."""
        data = self._dataset.read(window=window, boundless=False, masked=False)
        data = np.moveaxis(data, 0, -1).astype(np.float32, copy=False)
        nodata = self._dataset.nodata
        if nodata is not None and not np.isnan(nodata):
            data[data == nodata] = np.nan
        return data

    def read_vectors(self, window: Any) -> tuple[np.ndarray, np.ndarray]:
        """Valid patch vectors ``[n, dim]`` of a window and its validity mask ``[rows, cols]``."""
        data = self.read(window)
        valid = np.isfinite(data).all(axis=-1)
        return data[valid], valid


def open_embeddings(path: str | os.PathLike[str]) -> EmbeddingReader:
    return EmbeddingReader(path)


def pick_device(device: str = "auto") -> Any:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a clear error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    return torch.device(device)


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
