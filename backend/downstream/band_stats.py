"""Per-patch band statistics: the raw-pixel features that classifiers may add to the embeddings.

``write_band_statistics`` writes the per-patch mean and standard deviation of the normalised input
bands (every modality of an ``InputSet``) as a float32 raster on the inputs' patch grid, streamed in
strips. :class:`BandStatistics` reads such a raster on an embedding raster's grid: directly when the
grids are equal, else through a warped view (average resampling), so embeddings made on another
grid (or by another tool) can still be paired with the pixels' statistics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UserError

PATCH = 8


def write_band_statistics(inputs: Any, path: str | os.PathLike[str], strip_patches: int = 32) -> int:
    """Write per-patch mean and std of the normalised bands as an embedding GeoTIFF; returns dim.

    Patches with more than half of their pixels invalid are NaN, as in ``embed``.
    """
    from rasterio.windows import Window

    from backend.inference.embed import band_descriptions
    from backend.io.geotiff import embedding_profile, open_stream

    rows, cols = inputs.patch_height, inputs.patch_width
    # the model's bands, not the file's: a spectral fill reads fewer file bands than it gives
    dim = 2 * sum(len(inputs.modalities[name].band_names) for name in inputs.names)
    profile = embedding_profile(inputs.crs, inputs.patch_transform, cols, rows, dim, "float32")
    with open_stream(path, profile, band_descriptions(dim)) as writer:
        for row in range(0, rows, strip_patches):
            row1 = min(row + strip_patches, rows)
            arrays, valid, inside = inputs.read_padded(Window(0, row * PATCH, cols * PATCH,
                                                              (row1 - row) * PATCH))
            values = np.concatenate([arrays[name] for name in inputs.names])
            shape = (values.shape[0], row1 - row, PATCH, cols, PATCH)
            weight = valid.reshape(shape[1:]).astype(np.float32)
            count = np.maximum(weight.sum(axis=(1, 3)), 1.0)
            blocks = values.reshape(shape)
            mean = (blocks * weight).sum(axis=(2, 4)) / count
            spread = ((blocks - mean[:, :, None, :, None]) ** 2 * weight).sum(axis=(2, 4)) / count
            features = np.concatenate([mean, np.sqrt(spread)]).astype(np.float32)
            real = inside.reshape(shape[1:]).sum(axis=(1, 3))
            bad = (inside & ~valid).reshape(shape[1:]).sum(axis=(1, 3))
            features[:, 2 * bad > real] = np.nan
            writer.write_rows(features)
    return dim


class BandStatistics:
    """A band-statistics raster read on an embedding raster's patch grid (``read(window)``)."""

    def __init__(self, path: str | os.PathLike[str], grid: Any) -> None:
        import rasterio
        from rasterio.enums import Resampling

        from backend.io.align import grid_view

        self.path = Path(path)
        self.dataset = rasterio.open(self.path)
        self.view = grid_view(self.dataset, grid.crs, grid.transform, grid.width, grid.height,
                              Resampling.average, dtype="float32", nodata=float("nan"),
                              src_nodata=float("nan"))
        self.dim = int(self.dataset.count)
        self.warped = self.view is not self.dataset
        if self.warped:
            probe = self.view.read(1, out_dtype="float32")
            if not np.isfinite(probe).any():
                self.close()
                raise UserError("the input raster does not overlap the embeddings: --band-stats has no "
                                "pixels to summarise")

    def read(self, window: Any) -> np.ndarray:
        """``[dim, h, w]`` float32 statistics of a patch window (NaN where unknown)."""
        return self.view.read(window=window, out_dtype="float32")

    def close(self) -> None:
        if self.view is not self.dataset:
            self.view.close()
        self.dataset.close()

    def __enter__(self) -> BandStatistics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
