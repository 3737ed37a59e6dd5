"""Embedding GeoTIFFs derived from real rasters, for the downstream (cluster/classify/...) tests.

Each patch of 8x8 pixels gets a vector made from its real band values: the per-band mean and
standard deviation over the patch, standardised over the scene. The raster has the layout that
``embed`` writes (half floats stored as GDAL Float32 with NBITS=16, one band per dimension,
patch-grid transform = pixel transform scaled by 8, nodata NaN), so the downstream code is
exercised on real spatial structure without needing the encoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

PATCH = 8


def patch_features(pixels: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` pixels → ``[rows, cols, 2C]`` per-patch mean and std (edge patches partial)."""
    bands, height, width = pixels.shape
    rows, cols = -(-height // PATCH), -(-width // PATCH)
    padded = np.full((bands, rows * PATCH, cols * PATCH), np.nan, np.float64)
    padded[:, :height, :width] = pixels
    blocks = padded.reshape(bands, rows, PATCH, cols, PATCH)
    mean = np.nanmean(blocks, axis=(2, 4))
    std = np.nanstd(blocks, axis=(2, 4))
    features = np.concatenate([mean, std]).transpose(1, 2, 0)
    centre = np.nanmean(features, axis=(0, 1))
    scale = np.nanstd(features, axis=(0, 1)) + 1e-9
    return ((features - centre) / scale).astype(np.float32)


def write_embedding_raster(source: Path, out: Path, nodata_corner: int = 0) -> Path:
    """Write the patch-feature embedding GeoTIFF of ``source`` to ``out``.

    Args:
        source: a real multi-band raster.
        out: the embedding GeoTIFF to write.
        nodata_corner: mark the top-left ``n x n`` patches nodata (NaN) to test nodata handling.
    """
    with rasterio.open(source) as src:
        pixels = src.read().astype(np.float64)
        if src.nodata is not None:
            pixels[pixels == src.nodata] = np.nan
        crs, transform = src.crs, src.transform
    features = patch_features(pixels)
    if nodata_corner:
        features[:nodata_corner, :nodata_corner] = np.nan
    rows, cols, dim = features.shape
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": dim, "dtype": "float32",
               "nbits": 16, "nodata": float("nan"), "crs": crs, "transform": transform * Affine.scale(PATCH),
               "compress": "deflate"}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(features.transpose(2, 0, 1).astype(np.float16).astype(np.float32))
        for band in range(dim):
            dst.set_band_description(band + 1, f"emb_{band:03d}")
    return out


SEN2 = "rstoolbox-sen2/sen2.tif"
SEN2_POLYGONS = "rstoolbox-sen2/trainingPolygons_sen2.geojson"
FLOODS_S2 = "sen1floods11/Spain_7370579_S2Hand.tif"
FLOODS_LABEL = "sen1floods11/Spain_7370579_LabelHand.tif"
