"""GeoTIFF output profiles and a streaming row writer with bounded memory.

Public API:

* ``embedding_profile(crs, transform, width, height, dim, dtype="float16") -> dict``: tiled,
  deflate-compressed, pixel-interleaved, nodata NaN. ``float16`` is stored the GDAL way (Float32
  with ``NBITS=16``, i.e. IEEE half floats on disk; readers see float32).
* ``preview_profile(crs, transform, width, height) -> dict``: 3-band uint8, nodata 0.
* ``RowStreamWriter(dataset)``: ``write_rows(array)`` appends the next rows ``[bands, h, width]``;
  rows are buffered only up to whole block rows, then written, so a tiled compressed file is
  written once, block row by block row. ``close()`` flushes the rest.
* ``open_stream(path, profile, descriptions=None) -> RowStreamWriter`` (a context manager).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import rasterio

BLOCK = 32


def _block(size: int) -> int:
    return BLOCK if size >= BLOCK else 16


def _tiled(width: int, height: int) -> dict[str, Any]:
    if width < 16 or height < 16:
        return {"tiled": False}
    return {"tiled": True, "blockxsize": _block(width), "blockysize": _block(height)}


def embedding_profile(crs: Any, transform: Any, width: int, height: int, dim: int,
                      dtype: str = "float16") -> dict[str, Any]:
    """Profile of an embedding GeoTIFF: one band per dimension on the patch grid."""
    if dtype not in ("float16", "float32"):
        raise ValueError(f"embedding dtype must be float16 or float32, not {dtype}")
    profile = {"driver": "GTiff", "width": width, "height": height, "count": dim, "dtype": "float32",
               "crs": crs, "transform": transform, "nodata": float("nan"), "compress": "deflate",
               "interleave": "pixel", "bigtiff": "if_safer", **_tiled(width, height)}
    if dtype == "float16":
        profile["nbits"] = 16
    return profile


def preview_profile(crs: Any, transform: Any, width: int, height: int) -> dict[str, Any]:
    """Profile of the 3-band uint8 PCA colour preview (nodata 0)."""
    return {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8",
            "crs": crs, "transform": transform, "nodata": 0, "compress": "deflate",
            "interleave": "pixel", "photometric": "rgb", **_tiled(width, height)}


class RowStreamWriter:
    """Write a raster top to bottom in whole block rows.

    Args:
        dataset: a rasterio dataset opened for writing.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        block_height = dataset.block_shapes[0][0]
        self.block_height = block_height if dataset.profile.get("tiled") else max(1, block_height)
        self.dtype = np.dtype(dataset.dtypes[0])
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self.rows_written = 0

    def write_rows(self, rows: np.ndarray) -> None:
        """Append ``rows`` ([bands, h, width]) below what was written so far."""
        if rows.ndim != 3 or rows.shape[0] != self.dataset.count or rows.shape[2] != self.dataset.width:
            raise ValueError(f"rows of shape {rows.shape} do not fit a {self.dataset.count}-band "
                             f"{self.dataset.width}-wide raster")
        if self.rows_written + self._pending_rows + rows.shape[1] > self.dataset.height:
            raise ValueError("more rows than the raster holds")
        self._pending.append(rows.astype(self.dtype, copy=False))
        self._pending_rows += rows.shape[1]
        whole = (self._pending_rows // self.block_height) * self.block_height
        if whole:
            self._flush(whole)

    def _flush(self, n_rows: int) -> None:
        block = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
        window = rasterio.windows.Window(0, self.rows_written, self.dataset.width, n_rows)
        self.dataset.write(block[:, :n_rows], window=window)
        rest = block[:, n_rows:]
        self._pending = [rest] if rest.shape[1] else []
        self._pending_rows = rest.shape[1]
        self.rows_written += n_rows

    def close(self) -> None:
        """Write any buffered rows; the raster must then be complete."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        if self.rows_written != self.dataset.height:
            raise RuntimeError(f"raster incomplete: {self.rows_written} of {self.dataset.height} rows")


@contextlib.contextmanager
def open_stream(path: str | os.PathLike[str], profile: dict[str, Any],
                descriptions: Sequence[str] | None = None) -> Iterator[RowStreamWriter]:
    """Create ``path`` with ``profile`` and yield a :class:`RowStreamWriter` on it.

    Write to a temporary path from :func:`backend.io.atomic.atomic_paths`: the profile is recorded
    so the file is verified against it (and a full disk explained with a size estimate) before
    it is renamed into place.
    """
    from backend.io.write_checks import record_profile

    record_profile(path, profile)
    with rasterio.open(path, "w", **profile) as dataset:
        if descriptions:
            for index, text in enumerate(descriptions, start=1):
                dataset.set_band_description(index, text)
        writer = RowStreamWriter(dataset)
        yield writer
        writer.close()
