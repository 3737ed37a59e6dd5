"""Dense evaluation: spatially cross-validated segmentation and kNN scores on one labelled scene.

Split (``make_split``): the area is cut into square blocks of ``block`` pixels (a multiple of 8,
so every block holds whole patches). Blocks holding labelled pixels are shuffled (seeded) and
dealt round-robin to the folds. In fold ``f`` the blocks of ``f`` are held out; the training
labels are every labelled pixel outside them *and* outside a ``buffer`` (pixels, a multiple of
8) around them, so that the training pixels right next to a held-out block (which look like it
and share its labels) do not inflate the score. Encoders see the whole scene without labels
(self-supervised features), which is no label leakage.

Per fold and per feature row (an embedding raster on the scene's patch grid):

1. Segmentation head (``backend.downstream.segmentation``: patch MLP upsampled x8 + a per-pixel
   linear term on the bands) trained on the training pixels, scored per pixel at full resolution.
2. Cosine kNN on the patch grid (``backend.downstream.knn.knn_votes``): references are training
   patches holding labelled pixels, with their majority label; every held-out patch is predicted.
   Scored per pixel (each labelled pixel gets its patch's class) and per patch (against the
   patch's majority label).

3. Patch classifiers (:mod:`backend.downstream.classifiers`) on the same training patches and
   held-out patches: cosine kNN and a random forest, each on the embeddings alone and with the
   per-patch band statistics appended (the band-statistics row has no "+ band stats" variant: it
   *is* band statistics, so its RF column is the random-forest-on-band-statistics baseline).

Scored pixels are the labelled, held-out pixels with a valid input pixel and a valid patch
embedding; they are the same for every row, so rows compare like with like. The raw-bands
baseline row uses per-patch mean and std of the normalised bands as its "embedding"
(:func:`backend.downstream.band_stats.write_band_statistics`), so it goes through exactly the same
head and classifiers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UserError
from backend.evaluation.metrics import Scores

PATCH = 8
#: At most this many training patches serve as kNN references (a seeded random subset).
MAX_REFERENCES = 50_000
#: Metrics of each row: (key in the report, column title).
DENSE_METRICS: tuple[tuple[str, str], ...] = (
    ("segmentation_accuracy", "seg head acc"), ("segmentation_miou", "seg head mIoU"),
    ("knn_accuracy", "kNN acc"), ("knn_miou", "kNN mIoU"), ("knn_patch_accuracy", "kNN patch acc"))
#: Patch classifiers scored on the same folds: (key, classifier, with band statistics, column title).
PATCH_CLASSIFIERS: tuple[tuple[str, str, bool, str], ...] = (
    ("knn", "knn", False, "kNN"), ("knn_bands", "knn", True, "kNN + band stats"),
    ("forest", "random-forest", False, "RF"), ("forest_bands", "random-forest", True, "RF + band stats"))


# -- labels on the patch grid ------------------------------------------------------------------

@dataclass
class PatchLabels:
    """Labels summarised on the patch grid.

    Attributes:
        classes: class names (class ``i + 1`` of the label source is ``classes[i]``).
        majority: ``[ph, pw]`` majority class 1..K among the labelled pixels of each patch (0 where
            the patch has none).
        labelled: ``[ph, pw]`` number of labelled pixels of each patch.
    """

    classes: list[str]
    majority: np.ndarray
    labelled: np.ndarray


def _patch_sums(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Count of True pixels in each 8x8 patch of ``mask`` (zero-padded to ``rows*8 x cols*8``)."""
    padded = np.zeros((rows * PATCH, cols * PATCH), np.int32)
    padded[:mask.shape[0], :mask.shape[1]] = mask
    return padded.reshape(rows, PATCH, cols, PATCH).sum(axis=(1, 3))


def summarise_labels(labels: Any, width: int, height: int, strip_patches: int = 64) -> PatchLabels:
    """Read ``labels`` (0 = unlabelled, 1..K) strip by strip into a :class:`PatchLabels`."""
    from rasterio.windows import Window

    classes = list(labels.classes)
    patch_rows, patch_cols = math.ceil(height / PATCH), math.ceil(width / PATCH)
    majority = np.zeros((patch_rows, patch_cols), np.int32)
    labelled = np.zeros((patch_rows, patch_cols), np.int32)
    for row in range(0, patch_rows, strip_patches):
        row1 = min(row + strip_patches, patch_rows)
        pixel_rows = min(row1 * PATCH, height) - row * PATCH
        values = labels.read(Window(0, row * PATCH, width, pixel_rows))
        counts = np.stack([_patch_sums(values == k, row1 - row, patch_cols)
                           for k in range(1, len(classes) + 1)])
        total = counts.sum(axis=0)
        labelled[row:row1] = total
        majority[row:row1] = np.where(total > 0, counts.argmax(axis=0) + 1, 0)
    if not labelled.any():
        raise UserError("the labels have no labelled pixel over the area")
    return PatchLabels(classes, majority, labelled)


# -- the spatial split -------------------------------------------------------------------------

def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square (Chebyshev) dilation of a bool mask by ``radius`` cells."""
    out = mask.copy()
    if radius <= 0:
        return out
    for axis in (0, 1):
        source = out.copy()
        for shift in range(1, radius + 1):
            ahead = [slice(None)] * 2
            behind = [slice(None)] * 2
            ahead[axis], behind[axis] = slice(shift, None), slice(None, -shift)
            out[tuple(behind)] |= source[tuple(ahead)]
            out[tuple(ahead)] |= source[tuple(behind)]
    return out


@dataclass
class BlockSplit:
    """Blocks dealt to folds, as a fold index per patch (``-1`` = a block without labels).

    Attributes:
        block: block side in pixels.
        buffer: training labels dropped around held-out blocks, in pixels.
        folds: number of folds.
        patch_fold: ``[ph, pw]`` fold of each patch's block.
        blocks_per_fold: labelled blocks held out in each fold.
    """

    block: int
    buffer: int
    folds: int
    patch_fold: np.ndarray
    blocks_per_fold: list[int] = field(default_factory=list)

    def test_patches(self, fold: int) -> np.ndarray:
        return self.patch_fold == fold

    def train_patches(self, fold: int) -> np.ndarray:
        """Patches outside the held-out blocks and their buffer."""
        return ~_dilate(self.test_patches(fold), self.buffer // PATCH)


def make_split(labelled: np.ndarray, block: int, buffer: int, folds: int, seed: int) -> BlockSplit:
    """Deal the labelled blocks of the patch grid to ``folds`` folds (seeded, round-robin)."""
    if block < PATCH or block % PATCH:
        raise UserError(f"--block must be a positive multiple of {PATCH} pixels, got {block}")
    if buffer < 0 or buffer % PATCH or buffer >= block:
        raise UserError(f"--buffer must be a multiple of {PATCH} pixels from 0 to less than --block "
                        f"({block}), got {buffer}")
    if folds < 2:
        raise UserError("--folds must be at least 2")
    side = block // PATCH
    rows, cols = labelled.shape
    block_rows, block_cols = math.ceil(rows / side), math.ceil(cols / side)
    padded = np.zeros((block_rows * side, block_cols * side), np.int64)
    padded[:rows, :cols] = labelled
    per_block = padded.reshape(block_rows, side, block_cols, side).sum(axis=(1, 3))
    candidates = np.flatnonzero(per_block.ravel() > 0)
    if len(candidates) < folds:
        raise UserError(f"only {len(candidates)} block(s) of {block} px hold labels, fewer than --folds "
                        f"{folds}: use a smaller --block or fewer --folds")
    order = np.random.default_rng(seed).permutation(candidates)
    block_fold = np.full(block_rows * block_cols, -1, np.int32)
    block_fold[order] = np.arange(len(order)) % folds
    block_fold = block_fold.reshape(block_rows, block_cols)
    patch_fold = np.repeat(np.repeat(block_fold, side, axis=0), side, axis=1)[:rows, :cols]
    counts = np.bincount(block_fold[block_fold >= 0], minlength=folds).tolist()
    return BlockSplit(block, buffer, folds, np.ascontiguousarray(patch_fold), counts)


class FoldLabels:
    """A segmentation ``LabelSource`` that keeps only the training pixels of one fold."""

    def __init__(self, labels: Any, train_patches: np.ndarray) -> None:
        self.labels = labels
        self.train_patches = train_patches
        self.classes = list(labels.classes)

    def labelled_window(self) -> Any | None:
        return self.labels.labelled_window()

    def read(self, window: Any) -> np.ndarray:
        values = self.labels.read(window)
        rows = (int(window.row_off) + np.arange(values.shape[0])) // PATCH
        cols = (int(window.col_off) + np.arange(values.shape[1])) // PATCH
        keep = self.train_patches[np.ix_(rows, cols)]
        return np.where(keep, values, 0)


# -- metrics -----------------------------------------------------------------------------------

def confusion(truth: np.ndarray, predicted: np.ndarray, class_count: int) -> np.ndarray:
    """``[K, K]`` counts (rows: truth, columns: prediction) of 0-based class indexes."""
    flat = truth.astype(np.int64) * class_count + predicted.astype(np.int64)
    return np.bincount(flat, minlength=class_count * class_count).reshape(class_count, class_count)


def accuracy_and_miou(matrix: np.ndarray) -> tuple[float, float]:
    """Overall accuracy and the mean IoU over classes present in truth or prediction."""
    total = matrix.sum()
    hits = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - hits
    present = union > 0
    accuracy = float(hits.sum() / total) if total else math.nan
    miou = float((hits[present] / union[present]).mean()) if present.any() else math.nan
    return accuracy, miou


def _expand(patches: np.ndarray, height: int, width: int) -> np.ndarray:
    """Patch-grid values repeated over their 8x8 pixels, cut to ``height x width``."""
    return np.repeat(np.repeat(patches, PATCH, axis=0), PATCH, axis=1)[:height, :width]


# -- scoring one embedding raster ----------------------------------------------------------------

@dataclass
class DenseSetup:
    """What every row of a dense evaluation shares.

    Attributes:
        labels: the ``LabelSource`` on the area's pixel grid.
        patch_labels: the labels summarised on the patch grid.
        split: the block split.
        width: area width in pixels.
        height: area height in pixels.
        neighbors: k of the cosine kNN.
        steps: training steps of the segmentation head.
        seed: seeds the head, the crops and the reference subset.
        max_tiles: training tiles of the head per fold.
    """

    labels: Any
    patch_labels: PatchLabels
    split: BlockSplit
    width: int
    height: int
    neighbors: int = 20
    steps: int = 300
    seed: int = 0
    max_tiles: int = 32

    @property
    def class_count(self) -> int:
        return len(self.patch_labels.classes)


@dataclass
class FoldCounts:
    """Confusion matrices of one fold and its number of kNN reference patches."""

    segmentation: np.ndarray
    knn: np.ndarray
    knn_patches: np.ndarray
    references: int = 0
    classifiers: dict[str, np.ndarray] = field(default_factory=dict)

    def matrices(self) -> list[tuple[str, np.ndarray]]:
        """``(metric prefix, pixel confusion matrix)`` of every scored method."""
        return [("segmentation", self.segmentation), ("knn", self.knn), ("knn_patch", self.knn_patches),
                *((f"clf_{key}", matrix) for key, matrix in self.classifiers.items())]


@dataclass
class _Training:
    """Training patches of one fold: raw vectors, band statistics (or ``None``) and 0-based classes."""

    vectors: np.ndarray
    bands: np.ndarray | None
    classes: np.ndarray


def _training_patches(reader: Any, bands: Any, setup: DenseSetup, train: np.ndarray, fold: int) -> _Training:
    """Labelled training patches (a seeded subset of at most MAX_REFERENCES) with their majority class."""
    from rasterio.windows import Window

    majority = setup.patch_labels.majority
    wanted = train & (majority > 0)
    rate = min(1.0, MAX_REFERENCES / max(int(wanted.sum()), 1))
    rng = np.random.default_rng(setup.seed + 1000 + fold)
    vectors, statistics, classes = [], [], []
    for window in reader.windows():
        row0, row1 = int(window.row_off), int(window.row_off + window.height)
        strip = Window(0, row0, reader.grid.width, row1 - row0)
        data, valid = reader.read(strip)
        chosen = wanted[row0:row1] & valid
        if rate < 1.0:
            chosen &= rng.random(chosen.shape) < rate
        vectors.append(data[:, chosen].T)
        if bands is not None:
            statistics.append(bands.read(strip)[:, chosen].T)
        classes.append(majority[row0:row1][chosen] - 1)
    stacked = np.concatenate(vectors)
    if not len(stacked):
        raise UserError(f"fold {fold + 1} has no training patch: use a smaller --buffer or --block")
    return _Training(stacked, np.concatenate(statistics) if bands is not None else None,
                     np.concatenate(classes).astype(np.int64))


def _fit_classifiers(training: _Training, setup: DenseSetup, device: Any) -> dict[str, Any]:
    """``{key: (features, classifier)}`` of :data:`PATCH_CLASSIFIERS` (band variants only with statistics)."""
    from backend.downstream.classifiers import FeatureBuilder, PatchClassifier

    fitted: dict[str, Any] = {}
    for key, name, with_bands, _ in PATCH_CLASSIFIERS:
        if with_bands and training.bands is None:
            continue
        features = FeatureBuilder.fit(training.bands if with_bands else None)
        model = PatchClassifier(name, setup.class_count, setup.neighbors, setup.seed, device)
        fitted[key] = (features, model.fit(features(training.vectors, training.bands), training.classes))
    return fitted


def score_fold(reader: Any, pixels: Any, setup: DenseSetup, fold: int, device: Any,
               band_stats: str | Path | None = None) -> FoldCounts:
    """Train the head and the patch classifiers on fold ``fold``'s training part; score its held-out part.

    ``band_stats``: the scene's band-statistics raster, for the "+ band stats" classifiers.
    """
    from backend.downstream.segmentation import collect_tiles, train_head

    k = setup.class_count
    test, train = setup.split.test_patches(fold), setup.split.train_patches(fold)
    tiles = collect_tiles(reader, pixels, FoldLabels(setup.labels, train), setup.max_tiles,
                          np.random.default_rng(setup.seed + fold))
    head, _, _ = train_head(tiles, k, list(pixels.band_names), reader.dim, steps=setup.steps,
                            seed=setup.seed + fold, device=device)
    head.eval()
    bands = None
    if band_stats is not None:
        from backend.downstream.band_stats import BandStatistics

        bands = BandStatistics(band_stats, reader.grid)
    try:
        training = _training_patches(reader, bands, setup, train, fold)
        fitted = _fit_classifiers(training, setup, device)
        counts = FoldCounts(*(np.zeros((k, k), np.int64) for _ in range(3)), references=len(training.classes),
                            classifiers={key: np.zeros((k, k), np.int64) for key in fitted})
        _score_held_out(reader, bands, pixels, setup, test, head, fitted, counts, device)
    finally:
        if bands is not None:
            bands.close()
    return counts


def _score_held_out(reader: Any, bands: Any, pixels: Any, setup: DenseSetup, test: np.ndarray, head: Any,
                    fitted: dict[str, Any], counts: FoldCounts, device: Any) -> None:
    """Add the held-out blocks' confusion matrices of the head and every fitted patch classifier."""
    import torch
    from rasterio.windows import Window

    from backend.downstream.segmentation import _read_embedding_block, _read_pixel_block

    k = setup.class_count
    patch_rows, patch_cols = test.shape
    strip = setup.split.block // PATCH
    for row in range(0, patch_rows, strip):
        row1 = min(row + strip, patch_rows)
        held_out = test[row:row1]
        if not held_out.any():
            continue
        # Only the columns spanning held-out blocks, with one patch of context all round so that
        # the head's bilinear upsampling equals that of the whole raster.
        spanned = np.flatnonzero(held_out.any(axis=0))
        col, col1 = int(spanned[0]), int(spanned[-1]) + 1
        held_out = held_out[:, col:col1]
        top, bottom = max(row - 1, 0), min(row1 + 1, patch_rows)
        left, right = max(col - 1, 0), min(col1 + 1, patch_cols)
        embeddings = _read_embedding_block(reader, top, bottom, left, right)
        values, valid = _read_pixel_block(pixels, top * PATCH, bottom * PATCH, left * PATCH, right * PATCH)
        with torch.no_grad():
            logits = head(torch.from_numpy(embeddings)[None].to(device),
                          torch.from_numpy(values)[None].to(device))[0]
        first_row, first_col = (row - top) * PATCH, (col - left) * PATCH
        height = min(row1 * PATCH, setup.height) - row * PATCH
        width = min(col1 * PATCH, setup.width) - col * PATCH
        inner = (slice(first_row, first_row + height), slice(first_col, first_col + width))
        segmented = logits.argmax(dim=0).cpu().numpy()[inner]
        valid = valid[inner]
        strip_embeddings = embeddings[:, row - top:row1 - top, col - left:col1 - left]
        patch_ok = np.isfinite(strip_embeddings).all(axis=0)
        truth = setup.labels.read(Window(col * PATCH, row * PATCH, width, height)).astype(np.int64) - 1
        scored = (truth >= 0) & valid & _expand(held_out & patch_ok, height, width)
        counts.segmentation += confusion(truth[scored], segmented[scored], k)

        query = held_out & patch_ok
        vectors = np.ascontiguousarray(strip_embeddings[:, query].T)
        statistics = None
        if bands is not None:
            statistics = bands.read(Window(col, row, col1 - col, row1 - row))[:, query].T
        for key, (features, model) in fitted.items():
            predicted = np.zeros(held_out.shape, np.int64)
            if query.any():
                predicted[query] = model.predict_proba(features(vectors, statistics)).argmax(axis=1)
            matrix = confusion(truth[scored], _expand(predicted, height, width)[scored], k)
            counts.classifiers[key] += matrix
            if key == "knn":
                counts.knn += matrix
                majority = setup.patch_labels.majority[row:row1, col:col1]
                judged = query & (majority > 0)
                counts.knn_patches += confusion(majority[judged] - 1, predicted[judged], k)


def score_embeddings(embeddings: str | Path, pixels: Any, setup: DenseSetup, device: Any,
                     on_fold: Callable[[int], None] | None = None,
                     band_stats: str | Path | None = None) -> tuple[Scores, list[FoldCounts]]:
    """Scores of one embedding raster over all folds, and each fold's confusion matrices.

    ``band_stats``: the scene's band-statistics raster; adds the "+ band stats" patch classifiers.
    """
    from backend.downstream.segmentation import check_grids
    from backend.inference.embedding_raster import EmbeddingRaster

    scores = Scores()
    folds: list[FoldCounts] = []
    with EmbeddingRaster(embeddings) as reader:
        check_grids(reader, pixels)
        for fold in range(setup.split.folds):
            counts = score_fold(reader, pixels, setup, fold, device, band_stats)
            folds.append(counts)
            for name, matrix in counts.matrices():
                accuracy, miou = accuracy_and_miou(matrix)
                scores.add(f"{name}_accuracy", accuracy)
                scores.add(f"{name}_miou", miou)
            if on_fold is not None:
                on_fold(fold)
    return scores, folds


def majority_scores(folds: list[FoldCounts], train_majority: list[int]) -> Scores:
    """Scores of predicting each fold's training majority class everywhere (the trivial baseline)."""
    scores = Scores()
    for counts, winner in zip(folds, train_majority):
        # Every patch classifier is scored on the kNN's pixels: the same truth, so the same baseline.
        for name, matrix in (("segmentation", counts.segmentation), ("knn", counts.knn),
                             ("knn_patch", counts.knn_patches),
                             *((f"clf_{key}", counts.knn) for key, *_ in PATCH_CLASSIFIERS)):
            constant = np.zeros_like(matrix)
            constant[:, winner] = matrix.sum(axis=1)
            accuracy, miou = accuracy_and_miou(constant)
            scores.add(f"{name}_accuracy", accuracy)
            scores.add(f"{name}_miou", miou)
    return scores


def training_majority(setup: DenseSetup) -> list[int]:
    """The most frequent class (0-based) among each fold's training patches."""
    winners = []
    for fold in range(setup.split.folds):
        train = setup.split.train_patches(fold) & (setup.patch_labels.majority > 0)
        counts = np.bincount(setup.patch_labels.majority[train] - 1, minlength=setup.class_count)
        winners.append(int(counts.argmax()))
    return winners


# -- the report --------------------------------------------------------------------------------

def dense_markdown_table(report: dict[str, Any]) -> str:
    """The dense evaluation as a Markdown table of mean ± std over the spatial folds."""
    from backend.evaluation.metrics import markdown_scores

    caption = (f"{report['scene_name']}: {report['width']}x{report['height']} px, classes "
               f"{', '.join(report['classes'])}; {report['folds']}-fold spatial CV on {report['block']} px "
               f"blocks (buffer {report['buffer']} px), seed {report['seed']}; {report['scored_pixels']} "
               f"held-out pixels scored; head {report['steps']} steps, kNN k={report['neighbors']}")
    classifiers = markdown_scores(
        "Patch classifiers on the same folds (pixel accuracy; each held-out pixel gets its patch's class; "
        "band stats = per-patch mean/std of the input bands):", report["rows"],
        [(f"clf_{key}_{metric}", f"{title} {label}")
         for metric, label in (("accuracy", "acc"), ("miou", "mIoU"))
         for key, _, _, title in PATCH_CLASSIFIERS])
    return markdown_scores(caption, report["rows"], list(DENSE_METRICS)) + "\n" + classifiers
