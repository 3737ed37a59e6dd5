"""Align a raster onto a reference pixel grid on the fly with a warped VRT.

* ``same_grid(src, crs, transform, width, height)``: whether ``src`` already lies on the grid.
* ``warp_to_grid(src, crs, transform, width, height, resampling, **options)``: a
  ``rasterio.vrt.WarpedVRT`` of ``src`` on the grid (``options`` go to ``WarpedVRT``: ``dtype``,
  ``nodata``, ``src_nodata``...).
* ``grid_view(src, crs, transform, width, height, resampling, **options)``: ``src`` itself when it
  already lies on the grid, else :func:`warp_to_grid` (the caller closes a view that is not ``src``).
* ``aligned_view(src, crs, transform, width, height, area_bounds, role)``: the radar-onto-optical
  view of the inference commands: bilinear, float32, NaN outside the source footprint and where
  the source is nodata. When ``src`` is already on the grid the VRT is an exact pass-through
  (same values). Inputs that do not overlap the area raise a clear ``UserError``.

Nothing is warped ahead of time: each windowed read warps only that window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from backend.errors import UserError


def same_grid(src: Any, crs: Any, transform: Affine, width: int, height: int,
              precision: float = 1e-9) -> bool:
    """Whether ``src`` already lies on the given pixel grid (transforms equal within ``precision``)."""
    return (src.crs == crs and src.width == width and src.height == height
            and src.transform.almost_equals(transform, precision=precision))


def warp_to_grid(src: Any, crs: Any, transform: Affine, width: int, height: int,
                 resampling: Resampling | int = Resampling.bilinear, **options: Any) -> WarpedVRT:
    """A ``WarpedVRT`` of ``src`` on the grid ``(crs, transform, width, height)``.

    Args:
        src: an open rasterio dataset.
        crs, transform, width, height: the target grid.
        resampling: the warp resampling method.
        **options: further ``WarpedVRT`` arguments (``dtype``, ``nodata``, ``src_nodata``...).
    """
    return WarpedVRT(src, crs=crs, transform=transform, width=width, height=height, resampling=resampling,
                     **options)


def grid_view(src: Any, crs: Any, transform: Affine, width: int, height: int,
              resampling: Resampling | int = Resampling.bilinear, precision: float = 1e-9,
              **options: Any) -> Any:
    """``src`` when it already lies on the grid (see :func:`same_grid`), else :func:`warp_to_grid`."""
    if same_grid(src, crs, transform, width, height, precision):
        return src
    return warp_to_grid(src, crs, transform, width, height, resampling, **options)


def aligned_view(src: Any, crs: Any, transform: Affine, width: int, height: int,
                 area_bounds: Sequence[float], role: str = "radar") -> WarpedVRT:
    """A float32 warped VRT of ``src`` on the grid ``(crs, transform, width, height)``.

    Raises:
        UserError: ``src`` does not overlap ``area_bounds`` (given in ``crs``).
    """
    left, bottom, right, top = transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)
    a_left, a_bottom, a_right, a_top = area_bounds
    overlap_x = min(right, a_right) - max(left, a_left)
    overlap_y = min(top, a_top) - max(bottom, a_bottom)
    if not (overlap_x > 0 and overlap_y > 0) or any(math.isnan(v) for v in (left, bottom, right, top)):
        raise UserError(f"the {role} raster does not overlap the optical raster's area "
                        f"({role} bounds in {crs}: {left:.6g} {bottom:.6g} {right:.6g} {top:.6g}; area: "
                        f"{a_left:.6g} {a_bottom:.6g} {a_right:.6g} {a_top:.6g})")
    return warp_to_grid(src, crs, transform, width, height, Resampling.bilinear, dtype="float32",
                        nodata=float("nan"), src_nodata=src.nodata, init_dest_nodata=True)
