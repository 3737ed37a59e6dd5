"""Accuracy of a patch classifier on its own sample polygons: leave-one-polygon-out and spatially blocked CV.

Leave-one-polygon-out (LOPO) predicts each polygon's patches from the other polygons. It is
optimistic: two polygons drawn side by side see the same surroundings through the encoder's
receptive field (a patch embedding mixes a whole tile of up to ``--window`` pixels), so a polygon's
neighbour vouches for it. Spatially blocked cross-validation cuts the patch grid into square
blocks *larger* than that receptive field (default ``window / 8 + 1`` patches: 16 patches = 128 px
for the 120 px window), gives each polygon the block holding most of its patches, and holds out
whole blocks (scikit-learn ``GroupKFold`` over block ids, at most 5 folds): polygons of one block
never train each other. It estimates the accuracy away from the drawn samples; trust it over LOPO.

Both pool the held-out patch predictions of all folds into one accuracy and one per class. Above
:data:`MAX_LOPO_FOLDS` polygons, LOPO holds out groups of polygons (``GroupKFold``) instead of
single ones, except for the kNN whose exact LOPO is one pass (a query skips its own polygon).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.contract.commands import DEFAULT_WINDOW

#: At most this many refits for leave-one-polygon-out (more polygons: grouped folds).
MAX_LOPO_FOLDS = 50
#: At most this many spatially blocked folds.
MAX_BLOCK_FOLDS = 5
TRUST_NOTE = ("the spatially blocked accuracy: neighbouring polygons share context in the "
              "embeddings, so leave-one-polygon-out overstates accuracy away from the samples")


@dataclass
class CvAccuracy:
    """Pooled held-out accuracy of one validation scheme.

    Attributes:
        scheme: ``leave-one-polygon-out`` or ``spatially blocked``.
        accuracy: patch accuracy over all held-out patches (``None`` when the scheme cannot run).
        class_accuracy: the same per class name (the class's recall).
        folds: number of refits.
        why: why the scheme could not run (empty when it ran).
        macro_f1: mean F1 over the classes among the held-out patches.
        class_f1: F1 per class name (``None`` for a class with no held-out patch).
    """

    scheme: str
    accuracy: float | None
    class_accuracy: dict[str, float | None] = field(default_factory=dict)
    folds: int = 0
    why: str = ""
    macro_f1: float | None = None
    class_f1: dict[str, float | None] = field(default_factory=dict)


def polygon_blocks(polygons: np.ndarray, rows: np.ndarray, cols: np.ndarray, block: int) -> np.ndarray:
    """Block id of each sample patch: the block (``block`` patches square) holding most of its polygon.

    Args:
        polygons: polygon id of each sample patch.
        rows: patch row of each sample patch on the raster's patch grid.
        cols: patch column of each sample patch.
        block: block side in patches.
    """
    cells = (rows // block).astype(np.int64) * 1_000_003 + (cols // block).astype(np.int64)
    out = np.empty(len(polygons), np.int64)
    for polygon in np.unique(polygons):
        members = polygons == polygon
        values, counts = np.unique(cells[members], return_counts=True)
        out[members] = values[np.argmax(counts)]
    return out


def class_f1(truth: np.ndarray, predicted: np.ndarray, class_count: int) -> list[float | None]:
    """F1 of each class index (``None`` for a class absent from ``truth``)."""
    scores: list[float | None] = []
    for index in range(class_count):
        actual, called = truth == index, predicted == index
        hits = int((actual & called).sum())
        total = int(actual.sum()) + int(called.sum())
        scores.append(None if not actual.any() else 2 * hits / total)
    return scores


def _pooled(scheme: str, truth: np.ndarray, predicted: np.ndarray, names: Sequence[str],
            folds: int) -> CvAccuracy:
    correct = truth == predicted
    per_class = {name: (float(correct[truth == index].mean()) if (truth == index).any() else None)
                 for index, name in enumerate(names)}
    f1 = dict(zip(names, class_f1(truth, predicted, len(names))))
    present = [value for value in f1.values() if value is not None]
    return CvAccuracy(scheme, float(correct.mean()), per_class, folds,
                      macro_f1=float(np.mean(present)) if present else None, class_f1=f1)


def grouped_cv(make: Callable[[], Any], features: np.ndarray, classes: np.ndarray, groups: np.ndarray,
               names: Sequence[str], polygons: np.ndarray, max_folds: int, scheme: str) -> CvAccuracy:
    """Hold out each group (or ``max_folds`` balanced sets of groups), refit ``make()``, pool the accuracy."""
    from sklearn.model_selection import GroupKFold

    unique = np.unique(groups)
    if len(unique) < 2:
        return CvAccuracy(scheme, None, why="needs samples in at least two groups")
    splits = min(max_folds, len(unique))
    predicted = np.full(len(classes), -1, np.int64)
    for train, test in GroupKFold(n_splits=splits).split(features, classes, groups):
        model = make().fit(features[train], classes[train], polygons[train])
        predicted[test] = model.predict_proba(features[test]).argmax(axis=1)
    return _pooled(scheme, classes, predicted, names, splits)


def leave_one_polygon_out(make: Callable[[], Any], features: np.ndarray, classes: np.ndarray,
                          polygons: np.ndarray, names: Sequence[str], knn: bool) -> CvAccuracy:
    """Accuracy of each polygon's patches predicted from the other polygons."""
    scheme = "leave-one-polygon-out"
    if len(np.unique(polygons)) < 2:
        return CvAccuracy(scheme, None, why="needs two polygons")
    if knn:
        model = make().fit(features, classes, polygons)
        predicted = model.predict_proba(features, polygons).argmax(axis=1)
        return _pooled(scheme, classes, predicted, names, 1)
    return grouped_cv(make, features, classes, polygons, names, polygons, MAX_LOPO_FOLDS, scheme)


def blocked_cv(make: Callable[[], Any], features: np.ndarray, classes: np.ndarray, polygons: np.ndarray,
               rows: np.ndarray, cols: np.ndarray, block: int, names: Sequence[str]) -> CvAccuracy:
    """Spatially blocked cross-validation: polygons grouped by ``block``-patch blocks, blocks held out."""
    groups = polygon_blocks(polygons, rows, cols, block)
    result = grouped_cv(make, features, classes, groups, names, polygons, MAX_BLOCK_FOLDS,
                        "spatially blocked")
    if result.accuracy is None:
        result.why = (f"all sample polygons lie in one {block}-patch block; draw samples farther apart "
                      "(or lower --cv-block) to get a held-out estimate")
    return result


def beats(accuracy: float | None, macro_f1: float | None, other_accuracy: float | None,
          other_macro_f1: float | None) -> bool:
    """A recipe beats another on held-out figures: more accurate, and at least as good in macro-F1.

    A tie in accuracy is not a win: on a few held-out blocks a macro-F1 edge alone is noise (seen
    with galileo-nano on rstoolbox-sen2, where such wins lost on the outer held-out blocks).
    """
    if None in (accuracy, macro_f1, other_accuracy, other_macro_f1):
        return False
    return accuracy > other_accuracy and macro_f1 >= other_macro_f1


def default_block(window: int | None) -> int:
    """Block side in patches: larger than the encoder's window (its receptive field)."""
    return (window or DEFAULT_WINDOW) // 8 + 1
