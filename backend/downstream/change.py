"""Change between two dates of embedding fields: magnitude, automatic threshold, change types.

The after field is read aligned onto the before field's grid (nearest cell, on the fly). For
every cell valid on both dates the change magnitude is the cosine distance ``1 - cos(a, b)`` (in
[0, 2]) or, with ``distance="euclidean"``, ``|b - a|`` of the vectors as read (after
``normalise``). An Otsu threshold on the magnitude histogram (or a given one) splits the cells into
"no change" and "change"; optionally the change vectors ``b - a`` of the changed cells are grouped
by k-means into "from-to" types. Everything is streamed in strips (bounded memory) and written
through :func:`backend.downstream.raster.result_rasters`: all outputs appear together, complete, or none.

Outputs: the magnitude (float32, NaN = nodata, pseudocolour ``.qml``), the mask (uint8: 0 nodata,
1 no change, 2 change, paletted ``.qml``) and, with ``clusters``, the types (uint8: 0 nodata or no
change, 1..K the change types, paletted ``.qml``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backend.errors import UserError

HISTOGRAM_BINS = 256
NOISE_FLOOR = {"cosine": 0.02, "euclidean": 0.2}
"""Smallest automatic threshold on unit-length vectors (euclidean 0.2 = cosine distance 0.02): below it
differences are float16 storage and tiling noise, and Otsu would split pure noise into "change"."""
ROBUST_SIGMAS = 5.0
"""``--threshold robust``: the median plus this many robust standard deviations (1.4826 x the median
absolute deviation) of the magnitude; chosen on the OSCD cities (docs/change_detection.md)."""
ROBUST_BINS = 4096
"""Bins of the streamed histograms the robust threshold is read from."""
CLUSTER_SAMPLE = 20000
"""At most this many change vectors are used to fit the change-type k-means."""
MASK_CLASSES = {1: "no change", 2: "change"}
MASK_COLORS = ("#d9d9d9", "#e31a1c")


@dataclass
class ChangeStats:
    """Figures of a change run; ``valid`` and ``changed`` count cells (``cell``: ``patch`` or ``pixel``),
    ``changed_fraction`` is the changed share of the valid area."""

    distance: str
    normalised: bool
    threshold: float
    threshold_how: str
    valid: int
    changed: int
    changed_fraction: float
    minimum: float
    maximum: float
    mean: float
    type_counts: dict[int, int] = field(default_factory=dict)
    cell: str = "patch"
    method: str = "embedding"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def cells(self) -> str:
        """The plural of ``cell``: ``patches`` or ``pixels``."""
        return {"patch": "patches", "pixel": "pixels"}[self.cell]

    def as_dict(self) -> dict[str, Any]:
        """The figures, with the counts named by their cells (``valid_patches``, ``changed_pixels``...)."""
        figures = asdict(self)
        figures[f"valid_{self.cells}"] = figures.pop("valid")
        figures[f"changed_{self.cells}"] = figures.pop("changed")
        figures.update(figures.pop("details"))
        return figures


def otsu_threshold(counts: np.ndarray, edges: np.ndarray) -> float:
    """The Otsu threshold of a histogram: the bin edge maximising the between-class variance."""
    counts = counts.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)
    total = w0[-1]
    w1 = total - w0
    m0 = np.cumsum(counts * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2
    between[~np.isfinite(between)] = -1
    return float(edges[int(np.argmax(between)) + 1])


def otsu3_threshold(counts: np.ndarray, edges: np.ndarray) -> float:
    """The upper threshold of a three-class Otsu (stable / ordinary change / strong change)."""
    counts = counts.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.concatenate([[0.0], np.cumsum(counts)])
    mass = np.concatenate([[0.0], np.cumsum(counts * centres)])
    n = len(counts)
    i, j = np.meshgrid(np.arange(1, n), np.arange(1, n), indexing="ij")
    upper = j > i
    w = [weight[i], weight[j] - weight[i], weight[n] - weight[j]]
    m = [mass[i], mass[j] - mass[i], mass[n] - mass[j]]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = sum(mk * mk / wk for mk, wk in zip(m, w))
    score[~(upper & (w[0] > 0) & (w[1] > 0) & (w[2] > 0)) | ~np.isfinite(score)] = -1
    if score.max() < 0:
        return otsu_threshold(counts, edges)
    _, best_j = np.unravel_index(int(np.argmax(score)), score.shape)
    return float(edges[int(j[0, best_j])])


def magnitude(before: np.ndarray, after: np.ndarray, distance: str) -> np.ndarray:
    """Per-row change magnitude of ``[n, dim]`` vectors: cosine distance or euclidean distance."""
    if distance == "euclidean":
        return np.linalg.norm(after - before, axis=1)
    from backend.inference.embedding_raster import l2_normalise

    cosine = np.einsum("ij,ij->i", l2_normalise(before), l2_normalise(after))
    return np.clip(1.0 - cosine, 0.0, 2.0)


def read_pair(before: Any, after: Any, window: Any,
              distance: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid mask of both dates and the (cosine: unit) before/after vectors ``[n, dim]`` of a window."""
    from backend.inference.embedding_raster import l2_normalise

    a, valid_a = before.read(window)
    b, valid_b = after.read(window)
    both = valid_a & valid_b
    va, vb = a[:, both].T, b[:, both].T
    if distance == "cosine":
        va, vb = l2_normalise(va), l2_normalise(vb)
    return both, va, vb


def change_map(before_path: str | os.PathLike[str], after_path: str | os.PathLike[str],
               out: str | os.PathLike[str], mask_out: str | os.PathLike[str],
               types_out: str | os.PathLike[str] | None = None, distance: str = "cosine",
               normalise: str = "auto", threshold: float | str = "otsu", clusters: int = 0, seed: int = 0,
               reporter: Any = None, start: float = 0.0, end: float = 1.0) -> ChangeStats:
    """Write the change magnitude, the change mask and (``clusters`` > 0) the change types.

    Args:
        before_path, after_path: the two embedding fields (the after one is aligned onto the before grid).
        out, mask_out, types_out: the rasters to write (each with a ``.qml``); ``types_out`` is
            needed with ``clusters``.
        distance: ``"cosine"`` or ``"euclidean"``.
        normalise: ``--normalise`` of the before field (``auto``/``l2``/``none``); the after field
            is read the same way.
        threshold: the change threshold on the magnitude, or ``"otsu"`` (two classes: changed or
            not) or ``"otsu3"`` (the upper threshold of three classes: stable, ordinary, strong
            change; for dates whose seasons differ).
        clusters: number of change types (0: none).

    Raises:
        UserError: different dimensions, no overlap, an all-nodata date, no common valid cell.
    """
    from backend.downstream.raster import RasterOutput, result_rasters, tracker
    from backend.downstream.styles import class_colors
    from backend.inference.embedding_raster import EmbeddingRaster

    if distance not in ("cosine", "euclidean"):
        raise UserError(f"--distance must be cosine or euclidean; got {distance!r}")
    track = tracker(reporter)
    span = end - start
    with EmbeddingRaster(before_path, normalise=normalise) as before, \
            EmbeddingRaster(after_path, normalise="l2" if before.normalised else "none",
                            grid=before.grid) as after:
        if before.dim != after.dim:
            raise UserError(f"the two dates have different dimensions ({before.dim} and {after.dim}): "
                            "embed both with the same model, or give fields of the same kind")
        misregistration = grid_offset(before.grid, after_path)
        if misregistration and reporter is not None:
            reporter.warning(f"the two dates' embedding fields lie on different patch grids "
                             f"({misregistration}): the after field is read at the nearest patch, and "
                             "misregistration shows up as change. Embed both dates on one grid (or give "
                             "the rasters: they are aligned before embedding).")
        outputs = [RasterOutput(out, "float32", float("nan"), (f"change ({distance} distance)",)),
                   RasterOutput(mask_out, "uint8", 0, ("change mask",))]
        if clusters:
            outputs.append(RasterOutput(types_out, "uint8", 0, ("change type",)))
        with result_rasters(before.grid, *outputs) as rasters:
            magnitudes, masks = rasters[:2]
            mag_tmp = magnitudes.path
            with magnitudes.open() as dst:
                summary = write_patch_magnitude(before, after, dst, distance,
                                                track(before.windows(), "change magnitude", start,
                                                      start + 0.5 * span))
            _check_counts(summary.counts, before_path, after_path)
            low, high = summary.low, summary.high
            floor = NOISE_FLOOR[distance] if distance == "cosine" or before.normalised else 0.0
            threshold, how = choose_threshold(mag_tmp, summary, threshold, floor, f"{distance} distance",
                                              reporter)
            changed = write_mask(mag_tmp, masks, threshold)
            magnitudes.style_range(low, high)
            type_counts: dict[int, int] = {}
            if clusters:
                type_counts = _change_types(before, after, mag_tmp, threshold, rasters[2], clusters,
                                            changed, distance, seed, track,
                                            start + 0.6 * span, end)
                labels = {k: f"change type {k} ({n} patches)" for k, n in type_counts.items()}
                rasters[2].style_classes(labels, class_colors(clusters))
    valid = summary.counts["both"]
    return ChangeStats(distance=distance, normalised=bool(before.normalised), threshold=float(threshold),
                       threshold_how=how, valid=valid, changed=changed,
                       changed_fraction=changed / max(valid, 1), minimum=low, maximum=high,
                       mean=summary.mean, type_counts=type_counts)


@dataclass
class MagnitudeSummary:
    """Range, sum and valid counts of a streamed magnitude raster."""

    low: float = np.inf
    high: float = -np.inf
    total: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {"before": 0, "after": 0, "both": 0})

    def add(self, values: np.ndarray) -> None:
        """Account for a block's valid magnitudes."""
        if values.size:
            self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))
            self.total += float(values.sum(dtype=np.float64))

    @property
    def mean(self) -> float:
        return self.total / max(self.counts["both"], 1)


def write_patch_magnitude(before: Any, after: Any, dst: Any, distance: str,
                          windows: Any) -> MagnitudeSummary:
    """Stream the per-patch magnitude of two aligned fields into the open raster ``dst`` (NaN = nodata)."""
    summary = MagnitudeSummary()
    for window in windows:
        a, valid_a = before.read(window)
        b, valid_b = after.read(window)
        both = valid_a & valid_b
        summary.counts["before"] += int(valid_a.sum())
        summary.counts["after"] += int(valid_b.sum())
        summary.counts["both"] += int(both.sum())
        result = np.full(both.shape, np.nan, np.float32)
        if both.any():
            result[both] = magnitude(a[:, both].T, b[:, both].T, distance).astype(np.float32)
            summary.add(result[both])
        dst.write(result[np.newaxis], window=window)
    return summary


def choose_threshold(mag_path: Any, summary: MagnitudeSummary, threshold: float | str, floor: float,
                     what: str, reporter: Any) -> tuple[float, str]:
    """The threshold (given, or Otsu / three-class Otsu of the magnitude raster, never below ``floor``)
    and how it was chosen; a ``warning`` when the automatic one lay below the floor."""
    if not isinstance(threshold, str):
        return float(threshold), "given"
    if threshold == "robust":
        value = robust_threshold(mag_path, summary.low, summary.high)
    else:
        value = _otsu_of_raster(mag_path, summary.low, summary.high, threshold)
    how = threshold
    if value < floor:
        how += f", raised to the noise floor {floor:g}"
        if reporter is not None:
            reporter.warning(
                f"the automatic ({threshold}) threshold {value:.3g} lies below the noise floor of the "
                f"{what} ({floor:g}): the dates barely differ (largest change {summary.high:.3g}); "
                f"values above {floor:g} are marked as change. Pass --threshold to choose another value.")
        value = floor
    return value, how


def write_mask(mag_path: Any, masks: Any, threshold: float) -> int:
    """Write the change mask (0 nodata, 1 no change, 2 change) of a magnitude raster and style it;
    returns the number of changed cells."""
    import rasterio

    changed = 0
    with rasterio.open(mag_path) as mag, masks.open() as dst:
        for _, window in mag.block_windows(1):
            values = mag.read(1, window=window)
            mask = np.where(np.isfinite(values), np.where(values > threshold, 2, 1), 0)
            changed += int((mask == 2).sum())
            dst.write(mask.astype(np.uint8)[np.newaxis], window=window)
    masks.style_classes(MASK_CLASSES, MASK_COLORS)
    return changed


def grid_offset(grid: Any, other_path: str | os.PathLike[str], tolerance: float = 0.01) -> str:
    """How the field at ``other_path`` misses ``grid`` (another CRS, a fractional-cell offset, another
    cell size), in words; ``""`` when its cells coincide with ``grid``'s (within ``tolerance`` cells)."""
    import rasterio

    with rasterio.open(other_path) as src:
        crs, transform = src.crs, src.transform
    if crs != grid.crs:
        return f"{crs} and {grid.crs}"
    base = grid.transform
    if (abs(transform.a / base.a - 1) > tolerance or abs(transform.e / base.e - 1) > tolerance
            or transform.b or transform.d):
        return f"cells of {abs(base.a):g} x {abs(base.e):g} and {abs(transform.a):g} x {abs(transform.e):g}"
    col, row = ~base * (transform.c, transform.f)
    dx, dy = col - round(col), row - round(row)
    if abs(dx) > tolerance or abs(dy) > tolerance:
        return f"offset by {dx:+.2f} cell in x and {dy:+.2f} cell in y"
    return ""


def _check_counts(counts: dict[str, int], before_path: Any, after_path: Any) -> None:
    if not counts["before"]:
        raise UserError(f"the before date holds no valid patch (all nodata): {before_path}")
    if not counts["after"]:
        raise UserError(f"the after date holds no valid patch over the before date's grid (all nodata, or "
                        f"outside it): {after_path}")
    if not counts["both"]:
        raise UserError("the two dates share no valid patch: their valid areas do not overlap")


def raster_histogram(path: Any, low: float, high: float, bins: int,
                     around: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Histogram ``(counts, edges)`` of a raster's finite values over ``low`` … ``high`` (streamed);
    of their absolute deviations from ``around`` when given."""
    import rasterio

    edges = np.linspace(low, high, bins + 1)
    counts = np.zeros(bins, np.int64)
    with rasterio.open(path) as src:
        for _, window in src.block_windows(1):
            values = src.read(1, window=window)
            values = values[np.isfinite(values)]
            counts += np.histogram(values if around is None else np.abs(values - around), bins=edges)[0]
    return counts, edges


def histogram_median(counts: np.ndarray, edges: np.ndarray) -> float:
    """The median of a histogram (the centre of the bin holding it)."""
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))
    return float((edges[index] + edges[index + 1]) / 2)


def robust_threshold(path: Any, low: float, high: float, sigmas: float = ROBUST_SIGMAS) -> float:
    """``median + sigmas x 1.4826 x MAD`` of a raster's finite values (two streamed histograms)."""
    if not high > low:
        return float(high)
    median = histogram_median(*raster_histogram(path, low, high, ROBUST_BINS))
    spread = max(high - median, median - low)
    deviation = histogram_median(*raster_histogram(path, 0.0, spread, ROBUST_BINS, around=median))
    return median + sigmas * 1.4826 * deviation


def _otsu_of_raster(path: Any, low: float, high: float, method: str = "otsu") -> float:
    """Otsu threshold of a magnitude raster's valid values (histogram streamed block by block)."""
    if not high > low:
        return float(high)
    counts, edges = raster_histogram(path, low, high, HISTOGRAM_BINS)
    return otsu3_threshold(counts, edges) if method == "otsu3" else otsu_threshold(counts, edges)


def _change_types(before: Any, after: Any, mag_path: Any, threshold: float, types: Any, clusters: int,
                  changed: int, distance: str, seed: int, track: Any, start: float,
                  end: float) -> dict[int, int]:
    """Fit k-means on a sample of the change vectors ``b - a`` and write the type of every changed cell."""
    import rasterio
    from sklearn.cluster import KMeans

    if changed < clusters:
        raise UserError(f"--change-clusters {clusters} needs at least {clusters} changed patches; "
                        f"only {changed} changed (lower it, or the threshold)")
    rng = np.random.default_rng(seed)
    rate = min(1.0, CLUSTER_SAMPLE / changed)
    windows = before.windows()
    sample = []
    with rasterio.open(mag_path) as mag:
        for window in track(windows, "change types (fit)", start, (start + end) / 2):
            changed_here = mag.read(1, window=window) > threshold
            both, va, vb = read_pair(before, after, window, distance)
            keep = changed_here[both]
            deltas = (vb - va)[keep]
            sample.append(deltas[rng.random(len(deltas)) < rate])
        model = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit(np.concatenate(sample))
        counts = np.zeros(clusters + 1, np.int64)
        with types.open() as dst:
            for window in track(windows, "change types", (start + end) / 2, end):
                changed_here = mag.read(1, window=window) > threshold
                both, va, vb = read_pair(before, after, window, distance)
                result = np.zeros(both.shape, np.uint8)
                keep = changed_here[both]
                if keep.any():
                    labels = model.predict((vb - va)[keep].astype(np.float32)) + 1
                    rows, cols = np.nonzero(both)
                    result[rows[keep], cols[keep]] = labels
                counts += np.bincount(result.ravel(), minlength=clusters + 1)
                dst.write(result[np.newaxis], window=window)
    return {k: int(counts[k]) for k in range(1, clusters + 1)}
