"""Open input rasters, map their bands onto a model's bands, and turn an area into a pixel window.

Public API:

* ``open_raster(path, role) -> rasterio.DatasetReader``: clear ``UserError`` for a missing file or
  a file GDAL cannot read as a raster.
* ``canonical_band_name(name) -> str``: re-exported from :mod:`backend.io.bands` (``"b2"``,
  ``"B2"``, ``"B02"`` -> ``"B02"``; ``"b8a"``, ``"B08A"`` -> ``"B8A"``; ``"vv"`` -> ``"VV"``).
* ``map_bands(src, expected, explicit, role, option) -> list[int]``: 1-based band indexes of
  ``src`` in the model's band order, from the band descriptions or an explicit list
  (``"1,2,3"`` indexes or ``"B02,B03"`` names, in model order).
* ``area_window(src, bounds=None, bounds_crs=None) -> Window``: the pixel window of the area
  (whole raster by default); ``UserError`` when the bounds miss the raster or the area is empty.
* ``valid_pixels(masked) -> ndarray[bool]``: pixels whose every band is valid (not nodata, finite).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from backend.errors import EnvironmentFault, UserError
from backend.io.bands import band_positions, canonical_band_name, find_bands


def open_raster(path: str | os.PathLike[str], role: str = "input") -> Any:
    """Open ``path`` with rasterio for reading, or raise a one-line ``UserError``."""
    file = Path(path)
    if not file.exists():
        raise UserError(f"{role} raster not found: {file}")
    if file.is_dir():
        raise UserError(f"{role} raster is a folder, not a raster file: {file}")
    from backend.io.outputs import check_input_complete, check_regular

    check_regular(file, f"{role} raster")  # a FIFO or device would block GDAL forever
    if not os.access(file, os.R_OK):
        raise EnvironmentFault(f"cannot read the {role} raster {file}: permission denied")
    try:
        src = rasterio.open(file)
    except rasterio.errors.RasterioIOError as exc:
        why = (str(exc).splitlines() or [""])[0].replace(f"{file}: ", "").replace(f"{file.name}: ", "")
        raise UserError(f"{role} file is not a raster GDAL can read: {file}"
                        + (f" ({why}; is it truncated or damaged?)" if "TIFF" in why else "")) from None
    try:
        check_input_complete(src, file, f"{role} raster")
    except EnvironmentFault:
        src.close()
        raise
    if src.count == 0 or src.width == 0 or src.height == 0:
        src.close()
        raise UserError(f"{role} raster has no pixels or no bands: {file}")
    if src.crs is None:
        src.close()
        raise UserError(f"{role} raster has no coordinate reference system: {file}")
    return src


def map_bands(src: Any, expected: Sequence[str], explicit: str | None = None, role: str = "optical",
              option: str = "--optical-bands") -> list[int]:
    """Find the 1-based band index of each ``expected`` band in ``src``.

    Args:
        src: an open rasterio dataset.
        expected: band names the model wants, in model order.
        explicit: the user's comma-separated list, one entry per model band in model order: a
            1-based band index of the file or a band name found in the file's descriptions.
        role: ``"optical"`` or ``"radar"`` (for messages).
        option: the command-line option name (for messages).

    Returns:
        Band indexes of ``src`` in model order.
    """
    wanted = [canonical_band_name(b) for b in expected]
    described = band_positions(src.descriptions)
    if explicit:
        entries = [e.strip() for e in explicit.split(",") if e.strip()]
        if len(entries) != len(wanted):
            raise UserError(f"{option} lists {len(entries)} bands but the model expects {len(wanted)} "
                            f"({','.join(wanted)})")
        indexes = []
        for entry in entries:
            if entry.isdigit():
                index = int(entry)
                if not 1 <= index <= src.count:
                    raise UserError(f"{option}: band {index} does not exist; the {role} raster has "
                                    f"{src.count} bands")
            else:
                name = canonical_band_name(entry)
                if name not in described:
                    raise UserError(f"{option}: no band named {entry!r} in the {role} raster "
                                    f"(its bands: {_describe(src)})")
                index = described[name]
            indexes.append(index)
        return indexes
    if described:
        indexes, missing = find_bands(src.descriptions, wanted)
        if missing:
            raise UserError(f"{role} raster lacks the band(s) {','.join(missing)} the model needs "
                            f"(its bands: {_describe(src)}); pass {option} to map them explicitly")
        return indexes
    if src.count == len(wanted):
        return list(range(1, len(wanted) + 1))
    raise UserError(f"{role} raster has {src.count} unnamed bands but the model expects {len(wanted)} "
                    f"({','.join(wanted)}); pass {option} with one band index per model band")


def _describe(src: Any) -> str:
    names = [d or f"#{i}" for i, d in enumerate(src.descriptions, start=1)]
    return ",".join(names) if any(src.descriptions) else f"{src.count} unnamed"


def area_window(src: Any, bounds: Sequence[float] | None = None, bounds_crs: str | None = None) -> Window:
    """The integer pixel window of ``src`` covered by ``bounds`` (whole raster when ``None``).

    The window is snapped outwards to whole pixels and clipped to the raster.
    """
    full = Window(0, 0, src.width, src.height)
    if bounds is None:
        return full
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if (minx == maxx and miny <= maxy) or (miny == maxy and minx <= maxx):
        raise UserError(f"the area given by --bounds is empty (zero width or height): "
                        f"{minx} {miny} {maxx} {maxy}")
    if not (minx < maxx and miny < maxy):
        raise UserError(f"--bounds must be MINX MINY MAXX MAXY with MINX < MAXX and MINY < MAXY, "
                        f"got {minx} {miny} {maxx} {maxy}")
    if bounds_crs:
        from rasterio.crs import CRS
        from rasterio.warp import transform_bounds

        try:
            crs = CRS.from_user_input(bounds_crs)
        except Exception:
            raise UserError(f"--bounds-crs {bounds_crs!r} is not a coordinate reference system") from None
        if crs != src.crs:
            minx, miny, maxx, maxy = transform_bounds(crs, src.crs, minx, miny, maxx, maxy, densify_pts=21)
    left, bottom, right, top = src.bounds
    if minx >= right or maxx <= left or miny >= top or maxy <= bottom:
        raise UserError(f"the area --bounds {minx:.6g} {miny:.6g} {maxx:.6g} {maxy:.6g} does not overlap "
                        f"the raster (bounds {left:.6g} {bottom:.6g} {right:.6g} {top:.6g} in {src.crs})")
    window = rasterio.windows.from_bounds(minx, miny, maxx, maxy, transform=src.transform)
    col0 = max(0, math.floor(window.col_off + 1e-6))
    row0 = max(0, math.floor(window.row_off + 1e-6))
    col1 = min(src.width, math.ceil(window.col_off + window.width - 1e-6))
    row1 = min(src.height, math.ceil(window.row_off + window.height - 1e-6))
    if col1 <= col0 or row1 <= row0:
        raise UserError("the area given by --bounds is empty (smaller than one pixel of the raster)")
    return Window(col0, row0, col1 - col0, row1 - row0)


def valid_pixels(masked: np.ma.MaskedArray) -> np.ndarray:
    """Boolean [h, w] mask of pixels valid in every band (not nodata, finite)."""
    data = np.ma.getdata(masked)
    mask = np.ma.getmaskarray(masked)
    invalid = mask.any(axis=0)
    if np.issubdtype(data.dtype, np.floating):
        invalid |= ~np.isfinite(data).all(axis=0)
    return ~invalid
