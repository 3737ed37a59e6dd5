"""Embedding-field fixtures and CLI helpers shared by the tests of foreign embedding fields.

The fields are derived from a real raster (rstoolbox-sen2): the per-patch band mean/std of
:func:`tests.backend.downstream_data.patch_features`, projected through a fixed random matrix, so
they carry real spatial structure:

* AlphaEarth-like: 64 float32 bands named A00..A63, unit-length vectors, NaN nodata (a corner), on
  the scene's 8x8 patch grid in EPSG:4326.
* TESSERA-like: 128 float32 bands, not unit length, reprojected to UTM (EPSG:32721), NaN nodata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from tests.backend.downstream_data import patch_features

PATCH = 8
UTM = "EPSG:32721"


def projected_features(source: Path, dim: int, seed: int) -> tuple[np.ndarray, object, Affine]:
    """``[dim, rows, cols]`` real patch features through a fixed random matrix; CRS; patch transform."""
    with rasterio.open(source) as src:
        pixels = src.read().astype(np.float64)
        crs, transform = src.crs, src.transform @ Affine.scale(PATCH)
    features = patch_features(pixels)  # [rows, cols, 2C]
    matrix = np.random.default_rng(seed).normal(size=(features.shape[2], dim))
    return np.tensordot(features, matrix, axes=1).transpose(2, 0, 1), crs, transform


def write_field(path: Path, data: np.ndarray, crs: object, transform: Affine, names: list[str] | None,
                **extra: object) -> Path:
    """Write ``data`` ``[bands, rows, cols]`` as a deflated GeoTIFF (band names optional)."""
    profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1], "count": data.shape[0],
               "dtype": str(data.dtype), "crs": crs, "transform": transform, "compress": "deflate", **extra}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if names:
            dst.descriptions = tuple(names)
    return path


def make_fields(source: Path, folder: Path) -> dict[str, Path]:
    """The AlphaEarth-like (``"aef"``) and TESSERA-like (``"tessera"``) fields of ``source``."""
    data, crs, transform = projected_features(source, 64, seed=1)
    data /= np.linalg.norm(data, axis=0, keepdims=True)
    data[:, :3, :3] = np.nan
    aef = write_field(folder / "aef.tif", data.astype(np.float32), crs, transform,
                      [f"A{i:02d}" for i in range(64)], nodata=float("nan"))
    data, crs, transform = projected_features(source, 128, seed=2)
    tessera = reprojected_field(folder / "tessera.tif", data * 0.3, crs, transform, UTM)
    return {"aef": aef, "tessera": tessera}


def reprojected_field(path: Path, data: np.ndarray, crs: object, transform: Affine, dst_crs: str) -> Path:
    """Write ``data`` (on ``crs``/``transform``) reprojected to ``dst_crs`` (nearest, NaN nodata)."""
    height, width = data.shape[1:]
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    dst_transform, dst_width, dst_height = calculate_default_transform(crs, dst_crs, width, height,
                                                                       west, south, east, north)
    out = np.full((data.shape[0], dst_height, dst_width), np.nan, np.float32)
    reproject(data.astype(np.float32), out, src_transform=transform, src_crs=crs, dst_transform=dst_transform,
              dst_crs=dst_crs, resampling=Resampling.nearest, src_nodata=np.nan, dst_nodata=np.nan)
    return write_field(path, out, dst_crs, dst_transform, None, nodata=float("nan"))
