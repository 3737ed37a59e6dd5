"""Patch classifiers on embeddings (optionally with band statistics): kNN, random forest, boosting.

All three share one interface (:class:`PatchClassifier`: ``fit`` then ``predict_proba`` over every
class of the sample set, also classes a training fold lacks), so ``classify`` and the accuracy
report treat them alike:

* ``knn``: the cosine kNN of :mod:`backend.downstream.knn` (similarity-weighted votes; the vote
  shares are its class probabilities), on the GPU when present; with ``distance="euclidean"``
  scikit-learn's ``KNeighborsClassifier`` (inverse-distance weights).
* ``random-forest``: scikit-learn ``RandomForestClassifier`` (200 trees, balanced class weights).
* ``gradient-boosting``: scikit-learn ``HistGradientBoostingClassifier`` (200 iterations, balanced
  class weights, no early stopping, so results do not depend on an internal split).

Both scikit-learn models are seeded and run on one core (``n_jobs=1``, OpenMP limited to one thread:
on a shared machine the thread pool costs far more than it saves on sample-sized data).

Features (:class:`FeatureBuilder`): the embedding vectors, L2-normalised (directions, as the
cosine kNN and k-means use them; ``normalise=False`` keeps them as read), optionally followed by
per-patch band statistics (mean and std of the input pixels, :mod:`backend.downstream.band_stats`)
standardised with the training patches' mean and std and scaled by ``1/sqrt(count)`` so that both
parts weigh about the same in a cosine kNN. Trees do not care about the scaling. Without the
embeddings (``embeddings=False``) the features are the band statistics alone: the raw-band baseline.

Recipes (:class:`Recipe`: a classifier and the features it reads): :data:`BASELINE` is a random
forest on the band statistics alone, the figure every model recipe has to match;
:data:`MODEL_RECIPE` is a random forest on the embeddings followed by the band statistics, which
``classify --classifier auto`` weighs against the baseline under the spatially blocked split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.errors import UserError

CLASSIFIERS: tuple[str, ...] = ("knn", "random-forest", "gradient-boosting")
#: Rows per ``predict_proba`` call (bounds the memory of a prediction step).
PREDICT_CHUNK = 65_536
FOREST_TREES = 200
BOOSTING_ITERATIONS = 200


@dataclass(frozen=True)
class Recipe:
    """A classifier and the features it reads (embeddings, band statistics or both)."""

    classifier: str
    embeddings: bool = True
    band_stats: bool = False

    @property
    def name(self) -> str:
        """What the analyst reads, e.g. ``random-forest on embeddings + band statistics``."""
        used = (("embeddings", self.embeddings), ("band statistics", self.band_stats))
        parts = [part for part, wanted in used if wanted]
        return f"{self.classifier} on {' + '.join(parts)}"


#: The raw-band baseline: a random forest on per-patch band mean and std.
BASELINE = Recipe("random-forest", embeddings=False, band_stats=True)
#: The model recipe of ``--classifier auto``: a random forest on the embeddings and the band statistics.
MODEL_RECIPE = Recipe("random-forest", embeddings=True, band_stats=True)
#: The model recipes ``--classifier auto`` weighs against the baseline: the random forest above and
#: a cosine kNN on the embeddings alone (galileo-nano's vectors separate classes on their own:
#: held-out kNN 0.985 vs the baseline's 0.978 on Sen1Floods11, scripts/score_classify.py).
MODEL_RECIPES = (MODEL_RECIPE, Recipe("knn"))


@dataclass
class FeatureBuilder:
    """Turns raw embedding vectors (and band statistics) into classifier features.

    Attributes:
        band_mean: per-statistic mean of the training patches (``None``: no band statistics).
        band_std: per-statistic standard deviation of the training patches.
        normalise: L2-normalise the embedding vectors.
        embeddings: use the embedding vectors (``False``: the band statistics alone).
    """

    band_mean: np.ndarray | None = None
    band_std: np.ndarray | None = None
    normalise: bool = True
    embeddings: bool = True

    @classmethod
    def fit(cls, bands: np.ndarray | None, normalise: bool = True, embeddings: bool = True) -> FeatureBuilder:
        """Standardisation of the training patches' band statistics (``None``: embeddings only).

        ``normalise``: L2-normalise the embedding vectors (``False`` keeps them as read, e.g. a
        field read with ``--normalise none``). ``embeddings=False``: the band statistics alone.
        """
        if bands is None:
            if not embeddings:
                raise ValueError("features without embeddings need band statistics")
            return cls(normalise=normalise)
        mean = np.nanmean(bands, axis=0)
        std = np.nanstd(bands, axis=0)
        return cls(np.nan_to_num(mean).astype(np.float32), np.where(std > 1e-12, std, 1.0).astype(np.float32),
                   normalise, embeddings)

    @property
    def uses_bands(self) -> bool:
        return self.band_mean is not None

    def __call__(self, vectors: np.ndarray, bands: np.ndarray | None = None) -> np.ndarray:
        """``[n, dim (+ s)]`` float32 features of ``[n, dim]`` vectors (and ``[n, s]`` statistics)."""
        features = np.asarray(vectors, np.float32)
        if self.normalise:
            features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        if self.band_mean is None:
            return features
        if bands is None:
            raise ValueError("band statistics were used in training but are missing here")
        scaled = (np.asarray(bands, np.float32) - self.band_mean) / self.band_std
        scaled = (np.nan_to_num(scaled) / np.sqrt(scaled.shape[1])).astype(np.float32)
        return np.concatenate([features, scaled], axis=1) if self.embeddings else scaled


class PatchClassifier:
    """One of :data:`CLASSIFIERS` with class probabilities over all ``class_count`` classes."""

    def __init__(self, name: str, class_count: int, neighbors: int = 10, seed: int = 0,
                 device: Any = None, distance: str = "cosine") -> None:
        if name not in CLASSIFIERS:
            raise UserError(f"unknown classifier {name!r}: use one of {', '.join(CLASSIFIERS)}")
        if neighbors < 1:
            raise UserError(f"--neighbors must be at least 1 (got {neighbors})")
        if distance not in ("cosine", "euclidean"):
            raise UserError(f"--distance must be cosine or euclidean; got {distance!r}")
        self.name = name
        self.distance = distance
        self.class_count = class_count
        self.neighbors = neighbors
        self.seed = seed
        self.device = device
        self._model: Any = None
        self._present: np.ndarray | None = None
        self._references: Any = None

    def fit(self, features: np.ndarray, classes: np.ndarray,
            polygons: np.ndarray | None = None) -> PatchClassifier:
        """Fit on ``[n, f]`` features with 0-based ``classes`` (``polygons``: ids kept by the kNN)."""
        classes = np.asarray(classes, np.int64)
        self._present = np.unique(classes)
        if self.name == "knn" and self.distance == "euclidean":
            from sklearn.neighbors import KNeighborsClassifier

            k = min(self.neighbors, len(classes))
            self._model = KNeighborsClassifier(n_neighbors=k, weights="distance").fit(features, classes)
            return self
        if self.name == "knn":
            import torch

            from backend.downstream.knn import References

            device = self.device or torch.device("cpu")
            vectors = torch.from_numpy(np.ascontiguousarray(features, np.float32)).to(device)
            vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
            ids = polygons if polygons is not None else np.zeros(len(classes), np.int64)
            self._references = References(vectors, torch.from_numpy(classes).to(device),
                                          torch.from_numpy(np.asarray(ids, np.int64)).to(device))
            return self
        if len(self._present) < 2:
            return self  # one class: a constant prediction
        if self.name == "random-forest":
            from sklearn.ensemble import RandomForestClassifier

            model: Any = RandomForestClassifier(n_estimators=FOREST_TREES, class_weight="balanced",
                                                random_state=self.seed, n_jobs=1)
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier

            model = HistGradientBoostingClassifier(max_iter=BOOSTING_ITERATIONS, early_stopping=False,
                                                   class_weight="balanced", random_state=self.seed)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # OpenMP on a busy machine costs far more than it saves here
            self._model = model.fit(features, classes)
        return self

    @property
    def effective_neighbors(self) -> int:
        """k actually used by the kNN (at most the number of references)."""
        if self._references is not None:
            return min(self.neighbors, len(self._references.classes))
        if self.name == "knn" and self._model is not None:
            return int(self._model.n_neighbors)
        return self.neighbors

    def predict_proba(self, features: np.ndarray, polygons: np.ndarray | None = None) -> np.ndarray:
        """``[n, class_count]`` float32 probabilities (``polygons``: the kNN skips a query's own polygon)."""
        out = np.zeros((len(features), self.class_count), np.float32)
        if not len(features):
            return out
        if self.name == "knn" and self.distance == "cosine":
            import torch

            from backend.downstream.knn import knn_votes

            refs = self._references
            query = torch.from_numpy(np.ascontiguousarray(features, np.float32)).to(refs.vectors.device)
            query = query / query.norm(dim=1, keepdim=True).clamp_min(1e-12)
            own = None
            if polygons is not None:
                own = torch.from_numpy(np.asarray(polygons, np.int64)).to(query.device)
            return knn_votes(query, refs, self.neighbors, self.class_count, own).cpu().numpy()
        if self._model is None:
            out[:, int(self._present[0])] = 1.0
            return out
        from threadpoolctl import threadpool_limits

        columns = self._model.classes_.astype(np.int64)
        with threadpool_limits(1):
            for start in range(0, len(features), PREDICT_CHUNK):
                part = self._model.predict_proba(features[start:start + PREDICT_CHUNK])
                out[start:start + len(part), columns] = part
        return out
