"""Read an embedding GeoTIFF made by ``embed`` (one band per dimension on the patch grid).

The one reader of embedding rasters, for the inference engine (preview, ``--embeddings`` inputs)
and the downstream maps (cluster, classify, segment, similar). ``EmbeddingRaster(path)`` (also a
context manager):

* ``path``, ``crs``, ``transform`` (patch grid: the input's transform scaled by 8), ``width`` /
  ``height`` (in patches), ``grid`` (all four as a :class:`Grid`), ``dim``, ``descriptions``,
  ``bounds``, ``profile``.
* ``read(window=None) -> (array, valid)``: ``array`` float32 ``[dim, h, w]``, ``valid`` bool
  ``[h, w]`` (True where the patch has an embedding; nodata patches are NaN in ``array``).
* ``read_vectors(window=None) -> (vectors [n, dim], rows, cols)``: only the valid patches, with
  their window-relative row and column indexes.
* ``windows(max_patches=None) -> list[Window]``: full-width strips covering the raster, top to
  bottom, of at most ``max_patches`` patches (at least one row; by default as many as fit in
  :data:`BLOCK_BYTES` of float32), for streaming over big rasters with bounded memory.
* ``iter_blocks(max_patches=None) -> Iterator[(window, array, valid)]``: ``read`` over ``windows``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from backend.errors import UserError
from backend.io.rasters import open_raster

BLOCK_BYTES = 64 * 2**20
"""Default float32 size of one streamed block."""


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


class EmbeddingRaster:
    """Reader of an embedding GeoTIFF (see the module docstring).

    Raises:
        UserError: the file is missing, not a raster, has no CRS, or its bands are not ``emb_...``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.dataset = open_raster(self.path, "embedding")
        descriptions = self.dataset.descriptions
        if not descriptions or not all(d and d.startswith("emb_") for d in descriptions):
            self.dataset.close()
            raise UserError(f"{self.path} is not an embedding raster made by `embed` "
                            f"(its bands are not named emb_000, emb_001, ...)")
        nodata = self.dataset.nodata
        self._nodata = None if nodata is None or np.isnan(nodata) else float(nodata)

    @property
    def crs(self) -> Any:
        return self.dataset.crs

    @property
    def transform(self) -> Any:
        return self.dataset.transform

    @property
    def width(self) -> int:
        return int(self.dataset.width)

    @property
    def height(self) -> int:
        return int(self.dataset.height)

    @property
    def grid(self) -> Grid:
        return Grid(self.crs, self.transform, self.width, self.height)

    @property
    def dim(self) -> int:
        return int(self.dataset.count)

    @property
    def descriptions(self) -> tuple[str, ...]:
        return tuple(self.dataset.descriptions)

    @property
    def bounds(self) -> Any:
        return self.dataset.bounds

    @property
    def profile(self) -> dict[str, Any]:
        return dict(self.dataset.profile)

    def read(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``[dim, h, w]`` float32 and the valid mask ``[h, w]`` of a patch window."""
        array = self.dataset.read(window=window, out_dtype="float32")
        if self._nodata is not None:
            array[array == self._nodata] = np.nan
        valid = np.isfinite(array).all(axis=0)
        return array, valid

    def read_vectors(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Valid patch vectors ``[n, dim]`` with their row and column indexes (window-relative)."""
        array, valid = EmbeddingRaster.read(self, window)
        rows, cols = np.nonzero(valid)
        return np.ascontiguousarray(array[:, rows, cols].T), rows, cols

    def windows(self, max_patches: int | None = None) -> list[Window]:
        """Full-width strips of at most ``max_patches`` patches (default: :data:`BLOCK_BYTES`)."""
        if max_patches is None:
            max_patches = BLOCK_BYTES // (4 * max(self.dim, 1))
        block_rows = self.dataset.block_shapes[0][0]
        rows = max(1, max_patches // max(self.width, 1))
        if rows > block_rows:
            rows -= rows % block_rows
        return [Window(0, row, self.width, min(rows, self.height - row))
                for row in range(0, self.height, rows)]

    def iter_blocks(self, max_patches: int | None = None) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
        """Full-width strips ``(window, array, valid)`` of at most ``max_patches`` patches."""
        for window in self.windows(max_patches):
            array, valid = EmbeddingRaster.read(self, window)
            yield window, array, valid

    def close(self) -> None:
        self.dataset.close()

    def __enter__(self) -> EmbeddingRaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_embedding_raster(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` opens as an embedding raster (bands named ``emb_...``)."""
    try:
        with rasterio.open(path) as src:
            return all(d and d.startswith("emb_") for d in src.descriptions)
    except rasterio.errors.RasterioIOError:
        return False
