"""Stack single-band files (e.g. Sentinel-2 per-band GeoTIFFs at 10/20/60 m) into one multi-band GeoTIFF.

``stack_band_files(files, out_path, reference=None, band_names=None, resampling="bilinear")``
resamples every file onto the reference grid (the given file, else the finest-resolution one)
through warped VRTs (:func:`backend.io.align.grid_view`) and writes the stack strip by strip
(bounded memory), atomically, with band descriptions (``band_names``, else the file stems, e.g.
``B02``) so ``map_bands`` finds them.

``mosaic_tiles(path, out_path, repeat=(2, 2))`` writes a ``repeat`` grid of copies of a raster
side by side (a bigger raster for streaming benchmarks), also strip by strip.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from backend.errors import UserError
from backend.io.align import grid_view
from backend.io.atomic import atomic_path
from backend.io.rasters import open_raster

STRIP_ROWS = 256


def _profile(reference: object, count: int, dtype: str, nodata: float | None) -> dict:
    width, height = reference.width, reference.height  # type: ignore[attr-defined]
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": dtype,
               "crs": reference.crs, "transform": reference.transform,  # type: ignore[attr-defined]
               "compress": "deflate", "interleave": "pixel", "nodata": nodata}
    if width >= 256 and height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def stack_band_files(files: Sequence[str | os.PathLike[str]], out_path: str | os.PathLike[str],
                     reference: str | os.PathLike[str] | None = None,
                     band_names: Sequence[str] | None = None, resampling: str = "bilinear") -> Path:
    """Write the single-band ``files`` as one multi-band GeoTIFF on the reference grid.

    Args:
        files: one single-band raster per output band, in output order.
        out_path: the GeoTIFF to write.
        reference: the raster whose grid the stack uses (default: the finest-resolution file).
        band_names: band descriptions (default: each file's stem).
        resampling: a ``rasterio.enums.Resampling`` name for the files not on the grid.

    Returns:
        ``out_path``.
    """
    paths = [Path(f) for f in files]
    names = list(band_names) if band_names else [p.stem for p in paths]
    if not paths or len(names) != len(paths):
        raise UserError("stack_band_files needs one band name per file")
    sources = [open_raster(p, "band") for p in paths]
    opened = list(sources)
    try:
        ref = open_raster(reference, "reference") if reference else min(sources, key=lambda s: s.res[0])
        opened.append(ref)
        dtype = np.result_type(*[s.dtypes[0] for s in sources]).name
        nodata = sources[0].nodata
        method = Resampling[resampling]
        views = [grid_view(s, ref.crs, ref.transform, ref.width, ref.height, method) for s in sources]
        opened.extend(v for v in views if v not in sources)
        with atomic_path(out_path) as tmp, rasterio.open(tmp, "w", **_profile(ref, len(views), dtype,
                                                                                 nodata)) as dst:
            for index, name in enumerate(names, start=1):
                dst.set_band_description(index, name)
            for row in range(0, ref.height, STRIP_ROWS):
                window = Window(0, row, ref.width, min(STRIP_ROWS, ref.height - row))
                for index, view in enumerate(views, start=1):
                    dst.write(view.read(1, window=window).astype(dtype, copy=False), index, window=window)
    finally:
        for dataset in reversed(opened):
            dataset.close()
    return Path(out_path)


def mosaic_tiles(path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                 repeat: tuple[int, int] = (2, 2)) -> Path:
    """Write ``repeat`` (rows, cols) copies of ``path`` side by side into ``out_path``, strip by strip."""
    with open_raster(path) as src:
        rows, cols = repeat
        profile = _profile(src, src.count, src.dtypes[0], src.nodata)
        profile.update(width=src.width * cols, height=src.height * rows)
        with atomic_path(out_path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            for index, text in enumerate(src.descriptions, start=1):
                if text:
                    dst.set_band_description(index, text)
            for row in range(0, src.height * rows, STRIP_ROWS):
                height = min(STRIP_ROWS, src.height * rows - row)
                parts = []
                for part_row in range(row, row + height):  # rows may wrap across copies
                    parts.append(part_row % src.height)
                runs = _runs(parts)
                strip = np.concatenate([src.read(window=Window(0, start, src.width, count))
                                        for start, count in runs], axis=1)
                dst.write(np.tile(strip, (1, 1, cols)), window=Window(0, row, src.width * cols, height))
    return Path(out_path)


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of row indexes as ``(start, count)``."""
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and runs[-1][0] + runs[-1][1] == r:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((r, 1))
    return runs
