"""The reference grid of a pretraining source, as plain values that cross process boundaries.

:class:`PortableGrid` holds the CRS as WKT and the transform as 6 numbers, so a dataset with
many sources pickles cheaply into loader workers and the grid's values key the handle cache.
:class:`backend.inference.embedding_raster.Grid` is the same idea with live rasterio objects
(``CRS``, ``Affine``), for writing and reprojecting results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class PortableGrid:
    """A raster grid as plain values: CRS (WKT, ``""`` if none), affine transform (6 numbers) and size."""

    crs: str
    transform: tuple[float, ...]
    width: int
    height: int

    @classmethod
    def of(cls, dataset: Any) -> PortableGrid:
        """The grid of an open rasterio dataset."""
        return cls(dataset.crs.to_wkt() if dataset.crs else "", tuple(dataset.transform)[:6],
                   dataset.width, dataset.height)

    @property
    def pixel_area(self) -> float:
        a, b, _, d, e, _ = self.transform
        return abs(a * e - b * d)

    def bounds(self) -> tuple[float, float, float, float]:
        from rasterio.transform import Affine, array_bounds

        return array_bounds(self.height, self.width, Affine(*self.transform))


def overlap_window(ref: PortableGrid, other: PortableGrid) -> tuple[int, int, int, int] | None:
    """The part of ``ref`` covered by ``other`` as a pixel window, or None if they do not overlap."""
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    left, bottom, right, top = other.bounds()
    if ref.crs and other.crs and CRS.from_wkt(ref.crs) != CRS.from_wkt(other.crs):
        left, bottom, right, top = transform_bounds(CRS.from_wkt(other.crs), CRS.from_wkt(ref.crs),
                                                    left, bottom, right, top)
    window = from_bounds(left, bottom, right, top, Affine(*ref.transform))
    col0 = max(0, math.ceil(window.col_off - 1e-6))
    row0 = max(0, math.ceil(window.row_off - 1e-6))
    col1 = min(ref.width, math.floor(window.col_off + window.width + 1e-6))
    row1 = min(ref.height, math.floor(window.row_off + window.height + 1e-6))
    if col1 <= col0 or row1 <= row0:
        return None
    return col0, row0, col1 - col0, row1 - row0
