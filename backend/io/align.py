"""Align a second raster (radar) onto a reference pixel grid on the fly with a warped VRT.

``aligned_view(src, crs, transform, width, height, area_bounds, role)`` returns a
``rasterio.vrt.WarpedVRT`` that reads ``src`` resampled (bilinear) onto the reference grid as
float32 with NaN outside the source footprint and where the source is nodata. Nothing is
warped ahead of time: each windowed read warps only that window. When ``src`` is already on the
grid the VRT is an exact pass-through (same values). Inputs that do not overlap the area raise a
clear ``UserError``.
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


def same_grid(src: Any, crs: Any, transform: Affine, width: int, height: int) -> bool:
    """Whether ``src`` already lies on the given pixel grid."""
    return (src.crs == crs and src.width == width and src.height == height
            and src.transform.almost_equals(transform, precision=1e-9))


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
    src_nodata = src.nodata
    return WarpedVRT(src, crs=crs, transform=transform, width=width, height=height,
                     resampling=Resampling.bilinear, dtype="float32", nodata=float("nan"),
                     src_nodata=src_nodata, init_dest_nodata=True)
