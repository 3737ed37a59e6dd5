"""Cross-validated kNN, linear-probe and k-means scores of a feature matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Scores:
    """Per-fold values of each metric; ``summary`` gives mean and std."""

    folds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.folds.setdefault(name, []).append(float(value))

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v}
                for name, v in self.folds.items()}


def markdown_scores(caption: str, rows: dict[str, dict[str, Any]],
                    metrics: list[tuple[str, str]]) -> str:
    """A caption and a Markdown table of ``mean ± std`` per row and metric (key, title); "—" if absent."""
    lines = [caption, "", "| features | " + " | ".join(title for _, title in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for label, row in rows.items():
        cells = [f"{row[key]['mean']:.3f} ± {row[key]['std']:.3f}" if key in row else "—"
                 for key, _ in metrics]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of samples whose cluster's majority class is their own class."""
    total = 0
    for cluster in np.unique(clusters):
        total += np.bincount(labels[clusters == cluster]).max()
    return total / len(labels)


def cross_validate(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0,
                   neighbors: int = 20) -> Scores:
    """5-fold stratified CV of cosine kNN, logistic regression and a random forest; k-means on each test fold.

    The random forest (200 trees, seeded, one core) on the band-statistics row is the
    "random forest on band statistics" baseline an encoder has to beat.

    k-means uses k = number of classes on the held-out fold's L2-normalised features, so its
    NMI / ARI / purity vary with the folds as the supervised scores do.
    """
    from sklearn.cluster import KMeans
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from backend.downstream.classifiers import FOREST_TREES

    features = np.nan_to_num(features.astype(np.float64))
    n_classes = len(np.unique(labels))
    scores = Scores()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(features, labels):
        knn = KNeighborsClassifier(n_neighbors=min(neighbors, len(train)), metric="cosine")
        knn.fit(features[train], labels[train])
        scores.add("knn_accuracy", knn.score(features[test], labels[test]))

        forest = RandomForestClassifier(n_estimators=FOREST_TREES, random_state=seed, n_jobs=1)
        with threadpool_limits(1):
            scores.add("rf_accuracy", forest.fit(features[train], labels[train]).score(features[test],
                                                                                         labels[test]))

        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        probe.fit(features[train], labels[train])
        scores.add("linear_accuracy", probe.score(features[test], labels[test]))

        held_out = features[test] / np.maximum(np.linalg.norm(features[test], axis=1, keepdims=True), 1e-12)
        clusters = KMeans(n_clusters=n_classes, n_init=10, random_state=seed).fit_predict(held_out)
        scores.add("kmeans_nmi", normalized_mutual_info_score(labels[test], clusters))
        scores.add("kmeans_ari", adjusted_rand_score(labels[test], clusters))
        scores.add("kmeans_purity", purity(labels[test], clusters))
    return scores
