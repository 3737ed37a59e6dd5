"""Pixel-level change of two rasters: the spectral change of the bands fused with the embedding change.

For every pixel valid on both dates the fused magnitude (``method="fused"``) is::

    m = cva * (e / median(e)) ** EMBEDDING_WEIGHT

* ``cva``: change vector analysis on the units-corrected bands (the raster's own mapped bands in
  the model's units, before any spectral fill; radar in dB): each band z-scored per date over the
  pixels valid on both dates, the Euclidean norm of the difference of the two dates, then its
  :data:`SMOOTHING` x :data:`SMOOTHING` mean over valid pixels (a registration error of a pixel, or
  sensor noise, is not change).
* ``e``: the embedding change of the pixel's patch (the cosine or euclidean distance of the two
  dates' patch vectors, :func:`backend.downstream.change.magnitude`), interpolated bilinearly between
  patch centres; ``median(e)`` over the valid patches makes the factor 1 where the encoder sees the
  scene's typical change.

So the map keeps the pixel resolution and the spectral contrast of the bands; the encoder raises it
where a patch changed in kind and lowers it where it did not (a weighted sum of the two log
magnitudes). ``method="spectral"`` is ``cva`` alone. The weight and the smoothing were chosen on
four OSCD cities (leave-one-city-out in ``docs/change_detection.md``, ``scripts/score_oscd.py``).

Everything streams in full-width strips of pixels (with a halo for the smoothing and the
interpolation); the per-patch embedding change goes through a temporary raster.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from backend.downstream.change import (
    CLUSTER_SAMPLE,
    ROBUST_BINS,
    ChangeStats,
    MagnitudeSummary,
    choose_threshold,
    histogram_median,
    raster_histogram,
    read_pair,
    write_mask,
    write_patch_magnitude,
)
from backend.errors import UserError

METHODS = ("fused", "spectral", "embedding")
SMOOTHING = 3
"""Side in pixels of the mean filter over the spectral change magnitude."""
EMBEDDING_WEIGHT = 0.25
"""Exponent of the relative embedding change in the fused magnitude (0: spectral only)."""
NOISE_FLOOR_PER_BAND = 0.75
"""Smallest automatic threshold of the fused and spectral magnitudes, as a root-mean-square change of
0.75 standard deviations per band (``0.75 * sqrt(bands)``: 2.37 for Galileo's 10 bands, 2.60 for
CROMA's 12): Otsu always splits a histogram, and a copy of one Sentinel-2 crop reprojected to UTM
(bilinear) reaches 2.14 (10 bands) and 1.77 (12 bands) from resampling alone (two copies of one
date: 0). The automatic thresholds on the OSCD cities are 3.5-5.7 (robust) and 2.9-7.4 (Otsu)."""
STRIP_PIXELS = 2**20
"""Pixels per streamed strip (about 100 MB of float32 for 12 bands on two dates)."""


@dataclass(frozen=True)
class BandMoments:
    """Per-band mean and standard deviation of each date over the pixels valid on both dates, and
    the per-band correlation of the two dates there."""

    mean: tuple[np.ndarray, np.ndarray]
    std: tuple[np.ndarray, np.ndarray]
    correlation: np.ndarray
    pixels: int


def read_bands(inputs: Any, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """The raster's mapped bands of a window (relative to the area) in model units, and their valid mask.

    The bands are the file's own (no spectral fill), optical then radar, as ``[C, h, w]`` float32.
    """
    from backend.io.rasters import valid_pixels

    absolute = Window(inputs.area.col_off + window.col_off, inputs.area.row_off + window.row_off,
                      window.width, window.height)
    values, valid = [], np.ones((int(window.height), int(window.width)), bool)
    for name in sorted(inputs.modalities, key=lambda n: n != "optical"):
        modality = inputs.modalities[name]
        raw = modality.view.read(modality.bands, window=absolute, masked=True)
        valid &= valid_pixels(raw)
        values.append(modality.units.to_model(np.ma.getdata(raw)))
    stacked = np.concatenate(values).astype(np.float32, copy=False)
    return stacked, valid & np.isfinite(stacked).all(axis=0)


def strips(height: int, width: int, multiple: int) -> list[tuple[int, int]]:
    """Row ranges ``(start, stop)`` of full-width strips of about :data:`STRIP_PIXELS` pixels
    (a multiple of ``multiple`` rows, the patch size)."""
    rows = max(multiple, (STRIP_PIXELS // max(width, 1)) // multiple * multiple)
    return [(start, min(start + rows, height)) for start in range(0, height, rows)]


def band_moments(before: Any, after: Any, track: Any, start: float, end: float) -> BandMoments:
    """Per-band moments of both dates over the pixels valid on both (streamed; see :class:`BandMoments`)."""
    shift: tuple[np.ndarray, np.ndarray] | None = None
    sums = np.zeros(0)
    pixels = 0
    for top, bottom in track(strips(before.height, before.width, 8), "band statistics", start, end):
        window = Window(0, top, before.width, bottom - top)
        (a, valid_a), (b, valid_b) = read_bands(before, window), read_bands(after, window)
        both = valid_a & valid_b
        if not both.any():
            continue
        pixels += int(both.sum())
        values = (a[:, both].astype(np.float64), b[:, both].astype(np.float64))
        if shift is None:  # sums around a first mean: no cancellation in the variance
            shift = (values[0].mean(axis=1), values[1].mean(axis=1))
            sums = np.zeros((5, len(values[0])))
        x, y = values[0] - shift[0][:, None], values[1] - shift[1][:, None]
        sums += np.stack([x.sum(axis=1), y.sum(axis=1), (x * x).sum(axis=1), (y * y).sum(axis=1),
                          (x * y).sum(axis=1)])
    if shift is None:
        raise UserError("the two dates share no valid pixel: their valid areas do not overlap")
    mean_x, mean_y, square_x, square_y, product = sums / pixels
    std_x = np.sqrt(np.maximum(square_x - mean_x ** 2, 0.0))
    std_y = np.sqrt(np.maximum(square_y - mean_y ** 2, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(std_x * std_y > 0, (product - mean_x * mean_y) / (std_x * std_y), 1.0)
    return BandMoments((shift[0] + mean_x, shift[1] + mean_y), (std_x, std_y), correlation, pixels)


def spectral_change(a: np.ndarray, b: np.ndarray, valid: np.ndarray, moments: BandMoments) -> np.ndarray:
    """The smoothed change vector magnitude of z-scored bands ``[C, h, w]`` (NaN where not ``valid``)."""
    from scipy.ndimage import uniform_filter

    def zscore(values: np.ndarray, date: int) -> np.ndarray:
        std = np.where(moments.std[date] > 0, moments.std[date], 1.0)
        return (values - moments.mean[date][:, None, None]) / std[:, None, None]

    difference = zscore(b.astype(np.float64), 1) - zscore(a.astype(np.float64), 0)
    raw = np.where(valid, np.sqrt(np.square(difference).sum(axis=0)), 0.0)
    weight = uniform_filter(valid.astype(np.float64), SMOOTHING, mode="nearest")
    total = uniform_filter(raw, SMOOTHING, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid & (weight > 0), total / weight, np.nan)


def upsample_patches(patches: np.ndarray, first_patch_row: int, rows: range, width: int,
                     size: int) -> np.ndarray:
    """Bilinear interpolation of a patch strip ``[h, w]`` (NaN = nodata) onto pixel ``rows`` between
    patch centres; pixels whose neighbouring patches are all nodata are NaN."""
    from scipy.ndimage import map_coordinates

    pixel_rows, pixel_cols = np.meshgrid((np.asarray(rows) + 0.5) / size - 0.5 - first_patch_row,
                                         (np.arange(width) + 0.5) / size - 0.5, indexing="ij")
    valid = np.isfinite(patches)
    coordinates = [pixel_rows, pixel_cols]
    values = map_coordinates(np.where(valid, patches, 0.0), coordinates, order=1, mode="nearest")
    weight = map_coordinates(valid.astype(np.float64), coordinates, order=1, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 1e-6, values / weight, np.nan)


@dataclass
class _Fields:
    """The two dates' embedding fields and the per-patch change between them."""

    before: Any
    after: Any
    patch_path: Path
    summary: MagnitudeSummary
    size: int
    median: float


def _patch_change(before_path: Any, after_path: Any, inputs: Any, folder: Path, distance: str,
                  normalise: str, track: Any, start: float, end: float) -> _Fields:
    """Open both fields, write the per-patch change into ``folder`` and measure its median."""
    import rasterio

    from backend.inference.embedding_raster import EmbeddingRaster

    before = EmbeddingRaster(before_path, normalise=normalise)
    after = EmbeddingRaster(after_path, normalise="l2" if before.normalised else "none", grid=before.grid)
    if before.dim != after.dim:
        raise UserError(f"the two dates have different dimensions ({before.dim} and {after.dim}): "
                        "embed both with the same model")
    size = round(abs(before.transform.a / inputs.transform.a))
    path = folder / "patch_change.tif"
    profile = {"driver": "GTiff", "width": before.width, "height": before.height, "count": 1,
               "dtype": "float32", "nodata": float("nan"), "crs": before.crs, "transform": before.transform}
    with rasterio.open(path, "w", **profile) as dst:
        summary = write_patch_magnitude(before, after, dst, distance,
                                        track(before.windows(), "embedding change", start, end))
    median = 0.0
    if summary.counts["both"] and summary.high > summary.low:
        median = histogram_median(*raster_histogram(path, summary.low, summary.high, ROBUST_BINS))
    return _Fields(before, after, path, summary, size, median)


def _embedding_factor(fields: _Fields, patches: Any, rows: range, width: int) -> np.ndarray:
    """``(e / median(e)) ** EMBEDDING_WEIGHT`` on pixel ``rows`` (NaN where no patch is valid)."""
    size = fields.size
    first = max(0, (rows.start - size) // size)
    last = min(patches.height, rows.stop // size + 2)
    strip = patches.read(1, window=Window(0, first, patches.width, last - first)).astype(np.float64)
    change = upsample_patches(strip, first, rows, width, size)
    median = fields.median if fields.median > 0 else 1.0
    with np.errstate(invalid="ignore"):
        return np.power(np.maximum(change, 0.0) / median, EMBEDDING_WEIGHT)


def fused_change_map(before_inputs: Any, after_inputs: Any, before_field: Any, after_field: Any,
                     out: Any, mask_out: Any, types_out: Any = None, method: str = "fused",
                     distance: str = "cosine", normalise: str = "auto", threshold: float | str = "otsu",
                     clusters: int = 0, seed: int = 0, reporter: Any = None, start: float = 0.0,
                     end: float = 1.0) -> ChangeStats:
    """Write the pixel-level change magnitude, mask and (``clusters``) types of two rasters.

    Args:
        before_inputs, after_inputs: the two dates' open ``InputSet``\\ s on one pixel grid (the
            after raster already warped onto the before raster's grid).
        before_field, after_field: their embedding fields (on the matching patch grids).
        out, mask_out, types_out: the rasters to write on the pixel grid (each with a ``.qml``).
        method: ``fused`` or ``spectral`` (see the module docstring).
        distance, normalise: how the patch vectors are compared (as in ``change_map``).
        threshold: a number, ``otsu`` or ``otsu3`` on the magnitude (an automatic one never below
            :data:`NOISE_FLOOR_PER_BAND`).
        clusters: number of change types: k-means of the patch change vectors ``after - before`` of
            the patches holding changed pixels; each changed pixel gets its patch's type.

    Raises:
        UserError: dates on different pixel grids, no common valid pixel, bad options.
    """
    import rasterio

    from backend.downstream.raster import RasterOutput, result_rasters, tracker
    from backend.downstream.styles import class_colors
    from backend.inference.embedding_raster import Grid

    if method not in ("fused", "spectral"):
        raise UserError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    if (before_inputs.width, before_inputs.height) != (after_inputs.width, after_inputs.height):
        raise UserError("the two dates' rasters do not cover the same pixels "
                        f"({before_inputs.width}x{before_inputs.height} and "
                        f"{after_inputs.width}x{after_inputs.height} px)")
    track = tracker(reporter)
    span = end - start
    grid = Grid(before_inputs.crs, before_inputs.transform, before_inputs.width, before_inputs.height)
    description = ("change (spectral x embedding)" if method == "fused" else "change (spectral)")
    outputs = [RasterOutput(out, "float32", float("nan"), (description,)),
               RasterOutput(mask_out, "uint8", 0, ("change mask",))]
    if clusters:
        outputs.append(RasterOutput(types_out, "uint8", 0, ("change type",)))
    with tempfile.TemporaryDirectory(prefix="terraprobe-change-") as folder:
        fields = _patch_change(before_field, after_field, before_inputs, Path(folder), distance, normalise,
                               track, start, start + 0.15 * span)
        try:
            moments = band_moments(before_inputs, after_inputs, track, start + 0.15 * span,
                                   start + 0.3 * span)
            with result_rasters(grid, *outputs) as rasters, rasterio.open(fields.patch_path) as patches:
                magnitudes, masks = rasters[:2]
                with magnitudes.open() as dst:
                    summary = _write_fused(before_inputs, after_inputs, moments, fields, patches, dst,
                                           method, track, start + 0.3 * span, start + 0.7 * span)
                floor = NOISE_FLOOR_PER_BAND * math.sqrt(len(moments.mean[0]))
                threshold, how = choose_threshold(magnitudes.path, summary, threshold, floor,
                                                  f"{method} change", reporter)
                changed = write_mask(magnitudes.path, masks, threshold)
                magnitudes.style_range(summary.low, summary.high)
                type_counts: dict[int, int] = {}
                if clusters:
                    type_counts = _pixel_types(fields, magnitudes.path, threshold, rasters[2], clusters,
                                               changed, distance, seed, track, start + 0.75 * span, end)
                    labels = {k: f"change type {k} ({n} px)" for k, n in type_counts.items()}
                    rasters[2].style_classes(labels, class_colors(clusters))
        finally:
            fields.before.close()
            fields.after.close()
    valid = summary.counts["both"]
    details = {"embedding_median": fields.median,
               "embedding_weight": EMBEDDING_WEIGHT if method == "fused" else 0.0,
               "smoothing_px": SMOOTHING, "spectral_bands": len(moments.mean[0]), "patch_size": fields.size,
               "band_correlation": float(np.median(moments.correlation))}
    return ChangeStats(distance=distance, normalised=bool(fields.before.normalised),
                       threshold=float(threshold), threshold_how=how, valid=valid, changed=changed,
                       changed_fraction=changed / max(valid, 1), minimum=summary.low, maximum=summary.high,
                       mean=summary.mean, type_counts=type_counts, cell="pixel", method=method,
                       details=details)


def _write_fused(before: Any, after: Any, moments: BandMoments, fields: _Fields, patches: Any, dst: Any,
                 method: str, track: Any, start: float, end: float) -> MagnitudeSummary:
    """Stream the pixel magnitude into ``dst`` strip by strip (a halo of rows for the smoothing)."""
    halo = SMOOTHING // 2
    summary = MagnitudeSummary()
    spans = strips(before.height, before.width, fields.size)
    for top, bottom in track(spans, "change magnitude", start, end):
        read_top, read_bottom = max(0, top - halo), min(before.height, bottom + halo)
        window = Window(0, read_top, before.width, read_bottom - read_top)
        (a, valid_a), (b, valid_b) = read_bands(before, window), read_bands(after, window)
        both = valid_a & valid_b
        change = spectral_change(a, b, both, moments)[top - read_top:bottom - read_top]
        if method == "fused":
            change = change * _embedding_factor(fields, patches, range(top, bottom), before.width)
        inner = both[top - read_top:bottom - read_top]
        summary.counts["before"] += int(valid_a[top - read_top:bottom - read_top].sum())
        summary.counts["after"] += int(valid_b[top - read_top:bottom - read_top].sum())
        finite = np.isfinite(change) & inner
        summary.counts["both"] += int(finite.sum())
        result = np.where(finite, change, np.nan).astype(np.float32)
        summary.add(result[finite])
        dst.write(result[np.newaxis], window=Window(0, top, before.width, bottom - top))
    if not summary.counts["both"]:
        raise UserError("the two dates share no valid pixel: their valid areas do not overlap")
    return summary


def _pixel_types(fields: _Fields, mag_path: Any, threshold: float, types: Any, clusters: int, changed: int,
                 distance: str, seed: int, track: Any, start: float, end: float) -> dict[int, int]:
    """Change types: k-means of the change vectors of patches holding changed pixels; each changed
    pixel takes its patch's type."""
    import rasterio
    from sklearn.cluster import KMeans

    if changed < clusters:
        raise UserError(f"--change-clusters {clusters} needs at least {clusters} changed pixels; "
                        f"only {changed} changed (lower it, or the threshold)")
    size = fields.size
    with rasterio.open(mag_path) as mag:
        height, width = mag.height, mag.width
        spans = strips(height, width, size)

        def changed_patches(top: int, bottom: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            window = Window(0, top // size, fields.before.width, math.ceil(bottom / size) - top // size)
            both, va, vb = read_pair(fields.before, fields.after, window, distance)
            pixels = mag.read(1, window=Window(0, top, width, bottom - top)) > threshold
            padded = np.zeros((int(window.height) * size, fields.before.width * size), bool)
            padded[:pixels.shape[0], :pixels.shape[1]] = pixels
            any_changed = padded.reshape(int(window.height), size, -1, size).any(axis=(1, 3))
            return both, vb - va, any_changed, pixels

        rng = np.random.default_rng(seed)
        sample = []
        for top, bottom in track(spans, "change types (fit)", start, (start + end) / 2):
            both, deltas, any_changed, _ = changed_patches(top, bottom)
            sample.append(deltas[any_changed[both]])
        vectors = np.concatenate(sample)
        vectors = vectors[rng.permutation(len(vectors))[:CLUSTER_SAMPLE]]
        if len(vectors) < clusters:
            raise UserError(f"--change-clusters {clusters} needs at least {clusters} changed patches; "
                            f"only {len(vectors)} hold changed pixels (lower it, or the threshold)")
        model = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit(vectors)
        counts = np.zeros(clusters + 1, np.int64)
        with types.open() as dst:
            for top, bottom in track(spans, "change types", (start + end) / 2, end):
                both, deltas, _, pixels = changed_patches(top, bottom)
                labels = np.zeros(both.shape, np.uint8)
                if both.any():
                    labels[both] = model.predict(deltas.astype(np.float32)) + 1
                per_pixel = np.repeat(np.repeat(labels, size, axis=0), size, axis=1)[:bottom - top, :width]
                result = np.where(pixels, per_pixel, 0).astype(np.uint8)
                counts += np.bincount(result.ravel(), minlength=clusters + 1)
                dst.write(result[np.newaxis], window=Window(0, top, width, bottom - top))
    return {k: int(counts[k]) for k in range(1, clusters + 1)}
