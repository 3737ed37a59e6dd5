"""Read an embedding GeoTIFF made by ``embed`` (one band per dimension on the patch grid).

``EmbeddingRaster(path)`` (also a context manager):

* ``crs``, ``transform`` (patch grid: the input's transform scaled by 8), ``width`` / ``height``
  (in patches), ``dim``, ``bounds``, ``profile``.
* ``read(window=None) -> (array, valid)``: ``array`` float32 ``[dim, h, w]``, ``valid`` bool
  ``[h, w]`` (True where the patch has an embedding; nodata patches are NaN in ``array``).
* ``iter_blocks(max_patches=65536) -> Iterator[(window, array, valid)]``: full-width strips of at
  most ``max_patches`` patches (at least one row), top to bottom, for streaming over big rasters.
* ``read_vectors(window=None) -> (vectors [n, dim], rows, cols)``: only the valid patches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from backend.errors import UserError
from backend.io.rasters import open_raster


class EmbeddingRaster:
    """Reader of an embedding GeoTIFF (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.dataset = open_raster(self.path, "embedding")
        descriptions = self.dataset.descriptions
        if not descriptions or not all(d and d.startswith("emb_") for d in descriptions):
            self.dataset.close()
            raise UserError(f"{self.path} is not an embedding raster made by `embed` "
                            f"(its bands are not named emb_000, emb_001, ...)")

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
    def dim(self) -> int:
        return int(self.dataset.count)

    @property
    def bounds(self) -> Any:
        return self.dataset.bounds

    @property
    def profile(self) -> dict[str, Any]:
        return dict(self.dataset.profile)

    def read(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``[dim, h, w]`` float32 and the valid mask ``[h, w]`` of a patch window."""
        array = self.dataset.read(window=window, out_dtype="float32")
        valid = np.isfinite(array).all(axis=0)
        return array, valid

    def read_vectors(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Valid patch vectors ``[n, dim]`` with their row and column indexes (window-relative)."""
        array, valid = self.read(window)
        rows, cols = np.nonzero(valid)
        return array[:, rows, cols].T.copy(), rows, cols

    def iter_blocks(self, max_patches: int = 65_536) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
        """Full-width strips ``(window, array, valid)`` of at most ``max_patches`` patches."""
        block_rows = self.dataset.block_shapes[0][0]
        rows = max(1, max_patches // max(self.width, 1))
        if rows > block_rows:
            rows -= rows % block_rows
        for row in range(0, self.height, rows):
            window = Window(0, row, self.width, min(rows, self.height - row))
            array, valid = self.read(window)
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
