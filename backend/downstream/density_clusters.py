"""HDBSCAN cluster maps of an embedding raster: no k, a noise class of its own.

scikit-learn's ``HDBSCAN`` (density-based, hierarchical; it chooses the number of clusters) runs
on a bounded, uniform random sample of the valid patches (``sample_size``, seeded): its cost grows
faster than linearly, so the whole raster never goes through it. Its neighbour searches degrade to
brute force in high dimensions, so the sample is first projected onto its first ``pca_dims``
principal components (32 by default; 10,000 patches of 192 dimensions: about 5 s instead of 90 s
on 2 busy cores, with the same clusters on well-separated data). scikit-learn has no
``approximate_predict``, so every patch of the raster (sampled ones included, so that the map is
one consistent rule) is then assigned like this:

1. each cluster is summarised by its centroid (mean of its sampled members, in the full embedding
   space) and its *noise distance*: the 95th percentile of its members' distances to that centroid;
2. a patch joins the nearest centroid when it lies within that cluster's noise distance, and is
   noise otherwise.

How well this rule reproduces HDBSCAN's own labels on the sample is reported
(``sample_agreement``). With ``metric="cosine"`` (default) vectors are L2-normalised first and
distances are euclidean between directions. Output values: clusters 1..n ordered by size (largest
first), ``n + 1`` = noise (legend "noise", grey), 0 = nodata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster

NOISE_COLOR = "#b3b3b3"
#: Members' distance percentile that bounds a cluster when the rest of the raster is assigned.
NOISE_PERCENTILE = 95.0
ASSIGN_CHUNK = 65_536


@dataclass
class DensityStats:
    """What :func:`hdbscan_embeddings` did, for the result event."""

    method: str
    clusters: int
    min_cluster_size: int
    min_samples: int | None
    sample_size: int
    valid_patches: int
    nodata_patches: int
    noise_patches: int
    noise_fraction: float
    sample_noise_fraction: float
    sample_agreement: float
    metric: str
    pca_dims: int
    cluster_sizes: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    x = np.asarray(vectors, np.float32)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def assign_to_clusters(x: np.ndarray, centroids: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """0-based cluster of each row, or ``-1`` (noise) beyond the nearest cluster's noise distance."""
    out = np.empty(len(x), np.int64)
    centre_sq = (centroids * centroids).sum(axis=1)
    for start in range(0, len(x), ASSIGN_CHUNK):
        part = x[start:start + ASSIGN_CHUNK]
        distance = (part * part).sum(axis=1, keepdims=True) - 2 * part @ centroids.T + centre_sq
        nearest = distance.argmin(axis=1)
        best = np.sqrt(np.maximum(distance[np.arange(len(part)), nearest], 0))
        out[start:start + len(part)] = np.where(best <= radius[nearest], nearest, -1)
    return out


def hdbscan_embeddings(embeddings: str | os.PathLike[str], out: str | os.PathLike[str],
                       min_cluster_size: int | None = None, min_samples: int | None = None,
                       sample_size: int = 10_000, metric: str = "cosine", seed: int = 0, pca_dims: int = 32,
                       reporter: Any = None, start: float = 0.0, end: float = 1.0) -> DensityStats:
    """Cluster the valid patches with HDBSCAN on a sample, assign the rest, write the map + ``.qml``.

    Args:
        embeddings: the embedding raster.
        out: cluster GeoTIFF to write (see the module docstring for its values).
        min_cluster_size: HDBSCAN's smallest cluster, in sampled patches (default: 1 % of the
            sample, at least 10).
        min_samples: HDBSCAN's density smoothing (default: ``min_cluster_size``).
        sample_size: patches HDBSCAN sees at most.
        metric: ``cosine`` or ``euclidean``.
        seed: seeds the sample (and the PCA solver).
        pca_dims: principal components HDBSCAN clusters in (0: the full vectors).

    Raises:
        UserError: bad sizes, an all-nodata raster, or HDBSCAN finding no cluster.
    """
    from sklearn.cluster import HDBSCAN

    from backend.downstream.raster import tracker, write_patch_classes
    from backend.downstream.styles import class_colors

    if metric not in ("cosine", "euclidean"):
        raise UserError(f"unknown metric {metric!r}: use cosine or euclidean")
    if sample_size < 2:
        raise UserError(f"--sample-size must be at least 2 (got {sample_size})")
    if pca_dims < 0:
        raise UserError(f"--pca-dims must be 0 (off) or more (got {pca_dims})")
    for option, value in (("--min-cluster-size", min_cluster_size), ("--min-samples", min_samples)):
        if value is not None and value < (2 if option == "--min-cluster-size" else 1):
            raise UserError(f"{option} must be at least {2 if option == '--min-cluster-size' else 1} "
                            f"(got {value})")
    rng = np.random.default_rng(seed)
    track = tracker(reporter)
    span = end - start
    with EmbeddingRaster(embeddings) as reader:
        windows = reader.windows()
        keys = np.empty(0)
        sample = np.empty((0, reader.dim), np.float32)
        valid_total = 0
        for window in track(windows, "sampling embeddings", start, start + 0.2 * span):
            vectors, _, _ = reader.read_vectors(window)
            valid_total += len(vectors)
            keys = np.concatenate([keys, rng.random(len(vectors))])
            sample = np.concatenate([sample, vectors])
            if len(sample) > sample_size:
                top = np.argpartition(-keys, sample_size - 1)[:sample_size]
                keys, sample = keys[top], sample[top]
        nodata_total = reader.grid.width * reader.grid.height - valid_total
        reader_dim = reader.dim
        if valid_total == 0:
            raise UserError(f"the embedding raster {reader.path.name} has no valid patches (all nodata)")
        size = min_cluster_size or max(10, len(sample) // 100)
        if size > len(sample):
            raise UserError(f"--min-cluster-size {size} is larger than the {len(sample)} sampled patches; "
                            "lower it or use a larger area")
        x = _prepare(sample[np.argsort(keys)], metric)
        del sample
        if reporter is not None:
            reporter.progress(start + 0.25 * span, f"HDBSCAN on {len(x)} sampled patches")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            reduced = x
            if 0 < pca_dims < x.shape[1] and len(x) > pca_dims:
                from sklearn.decomposition import PCA

                reduced = PCA(pca_dims, random_state=seed).fit_transform(x)
            found = HDBSCAN(min_cluster_size=size, min_samples=min_samples, copy=True).fit_predict(reduced)
            del reduced
        count = int(found.max()) + 1
        if count < 1:
            raise UserError(f"HDBSCAN found no cluster among {len(x)} sampled patches (all noise); lower "
                            f"--min-cluster-size (now {size}) or --min-samples")
        # Clusters by sampled size, largest first; centroid and noise distance of each.
        order = np.argsort(-np.bincount(found[found >= 0], minlength=count), kind="stable")
        rank = np.full(count, 0, np.int64)
        rank[order] = np.arange(count)
        found = np.where(found >= 0, rank[np.maximum(found, 0)], -1)
        centroids = np.stack([x[found == c].mean(axis=0) for c in range(count)]).astype(np.float32)
        radius = np.array([np.percentile(np.linalg.norm(x[found == c] - centroids[c], axis=1),
                                         NOISE_PERCENTILE) for c in range(count)], np.float32)
        agreement = float((assign_to_clusters(x, centroids, radius) == found).mean())
        sample_noise = float((found < 0).mean())
        noise_value = count + 1

        def label(vectors: np.ndarray) -> np.ndarray:
            labels = assign_to_clusters(_prepare(vectors, metric), centroids, radius)
            return np.where(labels >= 0, labels + 1, noise_value)

        legend = {i: f"cluster {i}" for i in range(1, count + 1)}
        legend[noise_value] = "noise"
        sizes = write_patch_classes(reader, track(windows, "assigning patches", start + 0.4 * span, end), out,
                                    noise_value, label, legend, [*class_colors(count), NOISE_COLOR])
    noise = int(sizes[noise_value])
    return DensityStats(method="hdbscan", clusters=count, min_cluster_size=size, min_samples=min_samples,
                        sample_size=len(x), valid_patches=valid_total, nodata_patches=int(nodata_total),
                        noise_patches=noise, noise_fraction=noise / valid_total,
                        sample_noise_fraction=sample_noise, sample_agreement=agreement, metric=metric,
                        pca_dims=min(pca_dims, reader_dim) if pca_dims else 0,
                        cluster_sizes={i: int(sizes[i]) for i in range(1, count + 1)})
