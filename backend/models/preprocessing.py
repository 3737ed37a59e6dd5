"""Fixed-statistics input stretch of CROMA: per band ``clip((x - (mean - 2 std)) / (4 std), 0, 1)``.

The official README computes mean and std over whatever batch is passed in; Terraprobe always uses
fixed statistics (from the model file, or sampled once over the whole input raster) so that
neighbouring tiles are stretched identically. :func:`normalize` is the one implementation: the
inference inputs (``backend.inference.inputs``) and the pretraining chips
(``backend.training.data.chips``) call it. It imports torch only for tensors it is given.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from backend.io.bands import canonical_band_name, find_bands

if TYPE_CHECKING:
    import torch

ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")

#: Smallest stretch width (4 std) in raw units; guards bands with zero spread.
MIN_SCALE = 1e-6


def _is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch: no tensor exists before it is)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def normalize(x: ArrayT, mean: Sequence[float] | np.ndarray | torch.Tensor,
              std: Sequence[float] | np.ndarray | torch.Tensor, clip: bool = True) -> ArrayT:
    """Stretch raw band values to [0, 1] with fixed per-band statistics.

    Numpy input is stretched in float64 (exact for float32 and integer rasters) and rounded once
    to float32, so every caller given the same values and statistics gets the same bits.

    Args:
        x: raw values ``[..., C, H, W]`` (numpy array or torch tensor).
        mean: per-band means (length C), raw units.
        std: per-band standard deviations (length C), raw units. A zero std does not divide by
            zero: the stretch width is clamped to :data:`MIN_SCALE`, so the band becomes a step
            at its mean.
        clip: clip to [0, 1] (CROMA); ``False`` keeps the stretch linear, as Galileo's pretraining
            normalisation ``(x - (mean - 2 std)) / (4 std)`` is.

    Returns:
        Float values (in [0, 1] when clipped) of the same kind as ``x`` (float32 unless ``x`` is float64).
    """
    channels = x.shape[-3] if x.ndim >= 3 else None
    if channels is None or len(mean) != channels or len(std) != channels:
        raise ValueError(f"normalize: expected [..., C, H, W] with C = {len(mean)} statistics, "
                         f"got shape {tuple(x.shape)}")
    if _is_tensor(x):
        import torch

        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        m = torch.as_tensor(mean, dtype=dtype, device=x.device).view(-1, 1, 1)
        s = torch.as_tensor(std, dtype=dtype, device=x.device).view(-1, 1, 1)
        scale = (4 * s).clamp_min(MIN_SCALE)
        out = (x.to(dtype) - (m - 2 * s)) / scale
        return out.clamp_(0.0, 1.0) if clip else out
    array = np.asarray(x)
    m = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1)
    out = (array - (m - 2 * s)) / np.maximum(4 * s, MIN_SCALE)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out if array.dtype == np.float64 else out.astype(np.float32)


def match_bands(descriptions: Sequence[str | None], wanted: Sequence[str]) -> list[int]:
    """Raster band indexes (1-based) for the ``wanted`` band names.

    Matches by band description first (canonical names, see
    :func:`backend.io.bands.canonical_band_name`: ``B1`` = ``B01``, ``B08A`` = ``B8A``); when
    not every band is found but the raster has exactly ``len(wanted)`` bands, assumes they are
    already in model order.

    Raises:
        UserError: when the bands cannot be found.
    """
    from backend.errors import UserError

    indexes, missing = find_bands(descriptions, wanted)
    if not missing:
        return indexes
    if len(descriptions) == len(wanted):
        return list(range(1, len(wanted) + 1))
    keys = [canonical_band_name(d) if d else "" for d in descriptions]
    raise UserError(f"raster has {len(descriptions)} bands ({', '.join(k or '?' for k in keys)}) and "
                    f"not all of the model's bands {', '.join(wanted)} can be found by description")


def raster_band_stats(path: str, bands: Sequence[str],
                      max_side: int = 1024) -> tuple[list[float], list[float]]:
    """Per-band mean and std of a raster, sampled on a decimated read (bounded memory).

    Nodata and non-finite pixels are excluded. The std is unbiased, like the official README's
    ``torch.std``.

    Args:
        path: raster file readable by rasterio.
        bands: model band names to locate in the raster (see :func:`match_bands`).
        max_side: the raster is read at most ``max_side`` pixels on its longer side.

    Returns:
        ``(mean, std)`` lists in the order of ``bands``.
    """
    import rasterio

    from backend.errors import UserError

    try:
        dataset = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise UserError(f"cannot open raster {path}: {exc}") from None
    with dataset:
        indexes = match_bands(dataset.descriptions, bands)
        factor = max(1, -(-max(dataset.width, dataset.height) // max_side))
        shape = (len(indexes), max(1, dataset.height // factor), max(1, dataset.width // factor))
        data = dataset.read(indexes, out_shape=shape, masked=True).astype(np.float64)
    means, stds = [], []
    for band, name in zip(data, bands):
        values = band.compressed()
        values = values[np.isfinite(values)]
        if values.size < 2:
            raise UserError(f"raster {path}: band {name} has fewer than 2 valid pixels")
        means.append(float(values.mean()))
        stds.append(float(values.std(ddof=1)))
    return means, stds
