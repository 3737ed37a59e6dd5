"""Reading one chip window of a source and stretching it with fixed statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from backend.training.data.handles import HandleCache
from backend.training.data.sources import PairedSource


def read_window(source: PairedSource, modality: str, window: tuple[int, int, int, int],
                cache: HandleCache) -> tuple[np.ndarray, np.ndarray]:
    """Read one modality of ``source`` over ``window`` (reference-grid pixels) as float32.

    Returns:
        ``(values [C, h, w], valid [C, h, w] bool)``; invalid = NaN or the file's nodata.
    """
    from rasterio.windows import Window

    col, row, width, height = window
    refs = source.bands[modality]
    out = np.empty((len(refs), height, width), dtype=np.float32)
    valid = np.empty((len(refs), height, width), dtype=bool)
    by_path: dict[str, list[tuple[int, int]]] = {}
    for position, ref in enumerate(refs):
        by_path.setdefault(ref.path, []).append((position, ref.index))
    for path, members in by_path.items():
        _, view = cache.get(path, source.grid)
        indexes = [index for _, index in members]
        data = view.read(indexes, window=Window(col, row, width, height)).astype(np.float32, copy=False)
        nodata = view.nodata
        ok = np.isfinite(data)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            ok &= data != nodata
        for (position, _), band, mask in zip(members, data, ok):
            out[position] = band
            valid[position] = mask
    return out, valid


def normalize_chip(values: np.ndarray, valid: np.ndarray, mean: Sequence[float],
                   std: Sequence[float]) -> np.ndarray:
    """Fixed-statistics stretch to [0, 1]; invalid pixels become the band mean (0.5).

    The stretch is :func:`backend.models.preprocessing.normalize`, as at inference.
    """
    from backend.models.preprocessing import normalize

    return np.where(valid, normalize(values.astype(np.float32, copy=False), mean, std),
                    np.float32(0.5))
