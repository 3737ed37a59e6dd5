"""Simulate other sensors' rasters from a Sentinel-2 raster (for tests and evaluation).

* ``write_landsat_from_s2(s2_path, out_path, sensor="landsat-oli", resolution_m=30,
  units="landsat-c2", *, bands=None, prefix=None, metadata=True) -> Path``: a Landsat-like GeoTIFF
  as USGS delivers Collection 2 Level-2 surface reflectance: bands ``SR_B1..SR_B7`` (OLI) or
  ``SR_B1..SR_B5, SR_B7`` (TM), uint16 digital numbers with reflectance = DN x 2.75e-5 - 0.2
  (0 = fill), tag ``SPACECRAFT_ID`` (``LANDSAT_8`` or ``LANDSAT_5``), ``resolution_m`` pixels in
  the source CRS (``None``: the Sentinel-2 grid). ``units="landsat-l1"`` writes Level-1 digital
  numbers instead (reflectance = DN x 2e-5 - 0.1, named ``B1..B7`` as USGS Level-1 files end);
  ``bands`` picks a subset (``("B2", "B3", "B4", "B5")``), ``prefix`` renames them (``"SR_B"``,
  ``"B"``, or ``""`` for no names) and ``metadata=False`` leaves out the ``SPACECRAFT_ID`` tag
  (a stack as a user builds it).
* ``write_rgbn_from_s2(s2_path, out_path, resolution_m=None) -> Path``: a NAIP-like 4-band uint8
  raster (red, green, blue, NIR; no band names, 0 = nodata) of relative brightness.

How: each simulated band is the Sentinel-2 band with the nearest centre wavelength (OLI B1<-B01,
B2<-B02, B3<-B03, B4<-B04, B5<-B8A, B6<-B11, B7<-B12; TM B4<-B08), not a spectral-response
weighted mix: the bands overlap closely and the remaining bandpass differences are a few percent
of reflectance. Ground sampling: each band is warped onto the coarser grid with GDAL's *average*
resampling (the mean of the 10/20/60 m pixels under each 30 m pixel, nodata excluded), strip by
strip (windowed reads, bounded memory).

``s2_path`` is a multi-band Sentinel-2 raster with band names (``B1``/``B01``...) or a folder of
single-band files named by band (``B02.tif``...; e.g. Major-TOM). Its values are reflectance x
10000 (``s2_scale=1e-4``, ``s2_offset=0``; pass ``s2_offset=-0.1`` for processing baseline >= 04.00).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from backend.contract.sensors import PRESETS, SENTINEL2
from backend.errors import UserError
from backend.io.align import warp_to_grid
from backend.io.atomic import atomic_path
from backend.io.rasters import open_raster
from backend.io.units import LANDSAT_C2_OFFSET, LANDSAT_C2_SCALE, LANDSAT_L1_OFFSET, LANDSAT_L1_SCALE

#: Reflectance that maps to 255 in the simulated 8-bit RGBN brightness.
RGBN_WHITE = 0.4
STRIP_ROWS = 256
_SPACECRAFT = {"landsat-oli": "LANDSAT_8", "landsat-tm": "LANDSAT_5"}
_RGBN_FROM_S2 = ("B04", "B03", "B02", "B08")


def nearest_s2_bands(sensor: str) -> list[tuple[str, str]]:
    """``(sensor band, Sentinel-2 band)`` pairs: each surface band of ``sensor`` and its nearest S2 band."""
    pairs = []
    for band in PRESETS[sensor].surface_bands:
        nearest = min(SENTINEL2.surface_bands, key=lambda s2: abs(s2.centre_nm - band.centre_nm))
        pairs.append((band.name, nearest.name))
    return pairs


@contextmanager
def _s2_sources(s2_path: str | os.PathLike[str]) -> Iterator[tuple[dict[str, tuple[Any, int]], Any]]:
    """``({S2 band: (dataset, band index)}, reference dataset)`` for a raster or a folder of band files."""
    path = Path(s2_path)
    with ExitStack() as stack:
        found: dict[str, tuple[Any, int]] = {}
        if path.is_dir():
            for file in sorted(path.glob("*.tif")):
                spec = SENTINEL2.band(file.stem)
                if spec is not None:
                    found[spec.name] = (stack.enter_context(open_raster(file, "Sentinel-2 band")), 1)
            if not found:
                raise UserError(f"no Sentinel-2 band files (B02.tif, ...) in the folder {path}")
        else:
            src = stack.enter_context(open_raster(path, "Sentinel-2"))
            for index, name in enumerate(src.descriptions, start=1):
                spec = SENTINEL2.band(name)
                if spec is not None and spec.name not in found:
                    found[spec.name] = (src, index)
            if not found and src.count in (12, 13):
                names = [b.name for b in SENTINEL2.bands if b.surface or src.count == 13]
                found = {name: (src, i) for i, name in enumerate(names, start=1)}
            if not found:
                raise UserError(f"the Sentinel-2 raster {path} has no band names (B02, ...) and not 12 or 13 "
                                f"bands")
        reference = min((ds for ds, _ in found.values()), key=lambda ds: abs(ds.res[0]))
        yield found, reference


def _metres_per_unit(src: Any) -> tuple[float, float]:
    """Metres per CRS unit along x and y at the raster's centre (1 for projected CRSs in metres)."""
    if not src.crs.is_geographic:
        factor = src.crs.linear_units_factor[1] if src.crs.linear_units_factor else 1.0
        return factor, factor
    lat = (src.bounds.top + src.bounds.bottom) / 2
    return 111_320.0 * math.cos(math.radians(lat)), 110_574.0


def _target_grid(src: Any, resolution_m: float | None) -> tuple[Affine, int, int]:
    """The transform and size of a grid of ``resolution_m`` pixels over ``src`` (same CRS and origin)."""
    if resolution_m is None:
        return src.transform, src.width, src.height
    if resolution_m <= 0:
        raise UserError(f"the simulated resolution must be positive, got {resolution_m}")
    _, per_y = _metres_per_unit(src)
    factor = resolution_m / (abs(src.transform.e) * per_y)
    width, height = max(1, int(src.width / factor)), max(1, int(src.height / factor))
    return src.transform @ Affine.scale(src.width / width, src.height / height), width, height


def _write(s2_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
           pairs: Sequence[tuple[str, str]], resolution_m: float | None, convert: Any, dtype: str,
           nodata: float, names: Sequence[str] | None,
           tags: dict[str, str], s2_scale: float, s2_offset: float) -> Path:
    with _s2_sources(s2_path) as (found, reference):
        missing = [s2 for _, s2 in pairs if s2 not in found]
        if missing:
            raise UserError(f"the Sentinel-2 input lacks the band(s) {', '.join(missing)} needed for the "
                            f"simulation")
        transform, width, height = _target_grid(reference, resolution_m)
        profile = {"driver": "GTiff", "width": width, "height": height, "count": len(pairs), "dtype": dtype,
                   "crs": reference.crs, "transform": transform, "nodata": nodata, "compress": "deflate",
                   "interleave": "pixel", "photometric": "MINISBLACK"}
        if width >= 256 and height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        with ExitStack() as stack:
            views = []
            for _, s2 in pairs:
                dataset, index = found[s2]
                src_nodata = dataset.nodata if dataset.nodata is not None else 0
                view = stack.enter_context(warp_to_grid(dataset, reference.crs, transform, width, height,
                                                        Resampling.average, src_nodata=src_nodata,
                                                        nodata=src_nodata, dtype="float32"))
                views.append((view, index, src_nodata))
            _check_s2_scale(views, s2_scale)
            with atomic_path(out_path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
                for position, name in enumerate(names or (), start=1):
                    dst.set_band_description(position, name)
                dst.update_tags(**tags)
                for row in range(0, height, STRIP_ROWS):
                    window = Window(0, row, width, min(STRIP_ROWS, height - row))
                    for position, (view, index, src_nodata) in enumerate(views, start=1):
                        values = view.read(index, window=window)
                        valid = np.isfinite(values) & (values != src_nodata)
                        reflectance = values.astype(np.float64) * s2_scale + s2_offset
                        out = np.where(valid, convert(reflectance), nodata).astype(dtype)
                        dst.write(out, position, window=window)
    return Path(out_path)


def _check_s2_scale(views: Sequence[tuple[Any, int, float]], s2_scale: float) -> None:
    """Refuse a raster whose values, times ``s2_scale``, are implausibly dark in every band.

    Reflectance 0-1 (RStoolbox, GEE ``divide(10000)``) read as DN x 10000 would give a flat
    simulation of reflectance ~0 everywhere (Landsat DN ~7273, RGBN brightness 1), written silently.
    """
    highest = 0.0
    for view, index, src_nodata in views:
        sample = view.read(index, out_shape=(min(view.height, 256), min(view.width, 256)))
        sample = sample[np.isfinite(sample) & (sample != src_nodata)]
        if sample.size:
            highest = max(highest, float(np.percentile(sample, 99)))
    if 0 < abs(highest * s2_scale) < 0.02:
        raise UserError(f"the Sentinel-2 values reach only {highest:.4g} (p99 of the brightest band), "
                        f"reflectance {highest * s2_scale:.2g} with s2_scale={s2_scale:g}: they look like "
                        f"reflectance 0-1, not digital numbers (reflectance x 10000); pass s2_scale=1.0")


_LANDSAT_DN = {"landsat-c2": (LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET, "SR_B"),
               "landsat-l1": (LANDSAT_L1_SCALE, LANDSAT_L1_OFFSET, "B")}


def write_landsat_from_s2(s2_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                          sensor: str = "landsat-oli", resolution_m: float | None = 30,
                          units: str = "landsat-c2", *, s2_scale: float = 1e-4, s2_offset: float = 0.0,
                          bands: Sequence[str] | None = None, prefix: str | None = None,
                          metadata: bool = True) -> Path:
    """Write a Landsat-like raster simulated from a Sentinel-2 raster (see the module docstring).

    Args:
        s2_path: Sentinel-2 raster with band names, or a folder of band files.
        out_path: the GeoTIFF to write (atomically).
        sensor: ``landsat-oli`` (SR_B1..SR_B7) or ``landsat-tm`` (SR_B1..SR_B5, SR_B7).
        resolution_m: pixel size in metres (``None``: the Sentinel-2 grid).
        units: ``landsat-c2`` (uint16 Collection 2 L2 DN, 0 = fill), ``landsat-l1`` (uint16 Level-1
            DN, 0 = fill) or ``reflectance`` (float32, NaN = nodata).
        s2_scale: Sentinel-2 DN to reflectance factor.
        s2_offset: added after scaling (-0.1 for processing baseline >= 04.00).
        bands: the preset bands to write (default: every surface band).
        prefix: band name prefix (default ``SR_B``, ``B`` for ``landsat-l1``; ``""``: unnamed bands).
        metadata: write the ``SPACECRAFT_ID`` tag.

    Returns:
        ``out_path``.
    """
    if sensor not in _SPACECRAFT:
        raise UserError(f"can simulate landsat-oli or landsat-tm, not {sensor!r}")
    pairs = [pair for pair in nearest_s2_bands(sensor) if bands is None or pair[0] in bands]
    if not pairs:
        raise UserError(f"none of the bands {', '.join(bands or ())} is a {sensor} surface band")
    if prefix is None:
        prefix = _LANDSAT_DN[units][2] if units in _LANDSAT_DN else "SR_B"
    names = [f"{prefix}{band[1:]}" for band, _ in pairs] if prefix else None
    tags = {"SIMULATED_FROM": Path(s2_path).name,
            "SIMULATION": "nearest Sentinel-2 band per Landsat band, average-resampled; "
                          + ", ".join(f"{b}<-{s2}" for b, s2 in pairs)}
    if metadata:
        tags["SPACECRAFT_ID"] = _SPACECRAFT[sensor]
    if units in _LANDSAT_DN:
        scale, offset, _ = _LANDSAT_DN[units]

        def convert(reflectance: np.ndarray) -> np.ndarray:
            return np.clip(np.rint((reflectance - offset) / scale), 1, 65535)

        return _write(s2_path, out_path, pairs, resolution_m, convert, "uint16", 0, names, tags, s2_scale,
                      s2_offset)
    if units == "reflectance":
        return _write(s2_path, out_path, pairs, resolution_m, lambda r: r, "float32", float("nan"), names,
                      tags, s2_scale, s2_offset)
    raise UserError(f"simulated Landsat units must be landsat-c2, landsat-l1 or reflectance, not {units!r}")


def write_rgbn_from_s2(s2_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                       resolution_m: float | None = None, *, s2_scale: float = 1e-4,
                       s2_offset: float = 0.0) -> Path:
    """Write a NAIP-like 4-band uint8 raster (red, green, blue, NIR; unnamed; 0 = nodata).

    Brightness = reflectance x 255 / ``RGBN_WHITE`` (0.4), clipped to 1..255: uncalibrated, as
    aerial RGBN imagery is. ``resolution_m=None`` keeps the Sentinel-2 grid.
    """
    pairs = list(zip(("red", "green", "blue", "nir"), _RGBN_FROM_S2))

    def convert(reflectance: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(reflectance * 255 / RGBN_WHITE), 1, 255)

    tags = {"SIMULATED_FROM": Path(s2_path).name, "SIMULATION": "red<-B04, green<-B03, blue<-B02, nir<-B08"}
    return _write(s2_path, out_path, pairs, resolution_m, convert, "uint8", 0, None, tags, s2_scale,
                  s2_offset)

