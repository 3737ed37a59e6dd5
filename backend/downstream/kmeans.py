"""k-means in PyTorch for millions of patch embeddings, and the cluster map of an embedding raster.

Distances: embeddings are L2-normalised first (``metric="cosine"``, the default), so the squared
euclidean distance to a centre is ``|c|² - 2 x·c + 1`` and patches are grouped by direction rather
than by length (the usual choice for transformer features). Centres are plain means of their
members (not re-normalised). ``metric="euclidean"`` clusters the raw vectors.

Algorithm: k-means++ initialisation on a random sample (at most ``sample_size`` vectors), then
Lloyd iterations. When every valid vector fits in ``memory_budget`` bytes the iterations run on an
in-memory (GPU when present) matrix; otherwise each iteration streams the raster block by block
and accumulates the new centres, so memory stays bounded for any raster size. A mini-batch
variant (:func:`minibatch_kmeans`) is available for in-memory matrices.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend.errors import UserError

ASSIGN_CHUNK = 65536


@dataclass
class KMeansResult:
    """Fitted centres ``[k, dim]``, the inertia (sum of squared distances) and iterations run."""

    centres: torch.Tensor
    inertia: float
    iterations: int
    counts: torch.Tensor | None = None


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def assign(x: torch.Tensor, centres: torch.Tensor,
           chunk: int = ASSIGN_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of each row of ``x`` and the squared distance to it (chunked over rows)."""
    centre_sq = (centres * centres).sum(dim=1)
    labels = torch.empty(len(x), dtype=torch.long, device=x.device)
    distances = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        # |x - c|² = |x|² - 2 x·c + |c|²; the |x|² term does not change the argmin.
        scores = torch.addmm(centre_sq.unsqueeze(0), part, centres.T, alpha=-2.0)
        best, index = scores.min(dim=1)
        labels[start:start + chunk] = index
        distances[start:start + chunk] = (best + (part * part).sum(dim=1)).clamp_min(0)
    return labels, distances


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator,
                     trials: int | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding: each new centre is the best of a few D²-weighted candidates."""
    n = len(x)
    if k > n:
        raise ValueError(f"k={k} is larger than the {n} vectors")
    trials = trials or 2 + int(math.log(k))
    x_sq = (x * x).sum(dim=1)
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [x[first]]
    closest = (x_sq - 2 * x @ x[first] + x_sq[first]).clamp_min(0)
    for _ in range(1, k):
        weights = closest.double().cpu()
        if float(weights.sum()) <= 0:
            candidates = torch.randint(n, (trials,), generator=generator)
        else:
            candidates = torch.multinomial(weights, trials, replacement=True, generator=generator)
        candidates = candidates.to(x.device)
        candidate_sq = x_sq.unsqueeze(0) - 2 * x[candidates] @ x.T + x_sq[candidates].unsqueeze(1)
        candidate_sq = candidate_sq.clamp_min(0)
        candidate_sq = torch.minimum(candidate_sq, closest.unsqueeze(0))
        best = int(candidate_sq.sum(dim=1).argmin())
        closest = candidate_sq[best]
        centres.append(x[candidates[best]])
    return torch.stack(centres)


def _update(sums: torch.Tensor, counts: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """New centres from member sums; an empty cluster keeps its previous centre."""
    new = old.clone()
    filled = counts > 0
    new[filled] = sums[filled] / counts[filled].unsqueeze(1).to(sums.dtype)
    return new


def accumulate(x: torch.Tensor, centres: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor,
               x_sq: torch.Tensor | None = None) -> float:
    """One E-step over ``x``: add member sums/counts of the nearest centres; return the inertia.

    Member sums are a one-hot matrix product per chunk (a GEMM is far faster than scatter-adds).
    """
    k = len(centres)
    chunk = max(1024, min(ASSIGN_CHUNK, 2**24 // max(k, 1)))
    centre_sq = (centres * centres).sum(dim=1)
    inertia = 0.0
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        scores = torch.addmm(centre_sq.unsqueeze(0), part, centres.T, alpha=-2.0)
        best, labels = scores.min(dim=1)
        one_hot = torch.zeros(len(part), k, dtype=x.dtype, device=x.device)
        one_hot.scatter_(1, labels.unsqueeze(1), 1.0)
        sums.addmm_(one_hot.T, part)
        counts += one_hot.sum(dim=0).to(counts.dtype)
        part_sq = x_sq[start:start + chunk] if x_sq is not None else (part * part).sum(dim=1)
        inertia += float((best + part_sq).clamp_min(0).double().sum())
    return inertia


def lloyd(x: torch.Tensor, centres: torch.Tensor, iterations: int, tol: float = 0.0) -> KMeansResult:
    """Full-batch Lloyd iterations on an in-memory matrix.

    Stops early when the total squared centre shift falls to ``tol`` or below (pass a negative
    ``tol`` to always run every iteration). The reported inertia is of the final centres.
    """
    centres = centres.clone()
    x_sq = (x * x).sum(dim=1)
    done = 0
    while done < iterations:
        done += 1
        sums = torch.zeros_like(centres)
        counts = torch.zeros(len(centres), dtype=x.dtype, device=x.device)
        accumulate(x, centres, sums, counts, x_sq)
        new = _update(sums, counts, centres)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= tol:
            break
    sums = torch.zeros_like(centres)
    counts = torch.zeros(len(centres), dtype=x.dtype, device=x.device)
    inertia = accumulate(x, centres, sums, counts, x_sq)
    return KMeansResult(centres, inertia, done, counts.round().long())


def minibatch_kmeans(x: torch.Tensor, centres: torch.Tensor, iterations: int, batch_size: int,
                     generator: torch.Generator) -> KMeansResult:
    """Mini-batch k-means (per-centre learning rate 1/count) on an in-memory matrix.

    ``iterations`` counts passes over the data (epochs), each made of random mini-batches.
    """
    centres = centres.clone()
    seen = torch.zeros(len(centres), dtype=x.dtype, device=x.device)
    steps = max(1, math.ceil(len(x) / batch_size))
    for _ in range(iterations):
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for step in range(steps):
            batch = x[order[step * batch_size:(step + 1) * batch_size]]
            labels, _ = assign(batch, centres)
            counts = torch.bincount(labels, minlength=len(centres)).to(x.dtype)
            sums = torch.zeros_like(centres).index_add_(0, labels, batch)
            seen += counts
            filled = counts > 0
            rate = (counts[filled] / seen[filled]).unsqueeze(1)
            centres[filled] = (1 - rate) * centres[filled] + rate * sums[filled] / counts[filled].unsqueeze(1)
    labels, distances = assign(x, centres)
    return KMeansResult(centres, float(distances.double().sum()), iterations,
                        torch.bincount(labels, minlength=len(centres)))


def streamed_lloyd(blocks: Callable[[], Iterable[torch.Tensor]], centres: torch.Tensor, iterations: int,
                   tol: float = 0.0, on_pass: Callable[[int], None] | None = None) -> KMeansResult:
    """Lloyd iterations where each pass streams the data as blocks (bounded memory).

    Args:
        blocks: returns a fresh iterable of ``[n_i, dim]`` tensors (on the centres' device).
        centres: initial centres.
        iterations: maximum passes.
        tol: stop when the total squared centre shift is at most this.
        on_pass: called with the pass number after each pass (progress reporting).
    """
    centres = centres.clone()
    inertia = math.inf
    counts = torch.zeros(len(centres), dtype=torch.long, device=centres.device)
    done = 0
    for done in range(1, iterations + 1):
        sums = torch.zeros_like(centres)
        counts = torch.zeros(len(centres), dtype=centres.dtype, device=centres.device)
        total = 0.0
        for block in blocks():
            total += accumulate(block, centres, sums, counts)
        inertia = total  # inertia of the centres this pass started from
        new = _update(sums, counts, centres)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if on_pass:
            on_pass(done)
        if shift <= tol:
            break
    return KMeansResult(centres, inertia, done, counts.round().long())


@dataclass
class ClusterStats:
    """What :func:`cluster_embeddings` did, for the result event."""

    k: int
    valid_patches: int
    nodata_patches: int
    iterations: int
    inertia: float
    cluster_sizes: dict[int, int]
    in_memory: bool
    metric: str
    device: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _prepare(vectors: np.ndarray, metric: str, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
    return l2_normalize(x) if metric == "cosine" else x


def cluster_embeddings(embeddings: str | os.PathLike[str], out: str | os.PathLike[str], k: int, seed: int = 0,
                       iterations: int = 30, metric: str = "cosine", device: str = "auto",
                       sample_size: int = 100_000, memory_budget: int = 2 * 2**30, tol: float = 1e-6,
                       reporter: Any = None, start: float = 0.0, end: float = 1.0) -> ClusterStats:
    """Cluster every valid patch of an embedding GeoTIFF and write the class raster + QML style.

    Writes ``out`` (uint8, or uint16 above 254 clusters; values 1..k ordered by cluster size,
    largest first; nodata 0 where the embedding is NaN) on the embedding grid, and ``out``'s
    ``.qml`` sidecar with labels "cluster 1"... Both appear only when complete.

    Raises:
        UserError: k < 1, or k larger than the number of valid patches.
    """
    from backend.downstream.raster import EmbeddingReader, class_dtype, create_raster, pick_device, tracker
    from backend.downstream.styles import paletted_qml, style_path
    from backend.io.atomic import atomic_paths

    if k < 1:
        raise UserError(f"--k must be at least 1 (got {k})")
    if metric not in ("cosine", "euclidean"):
        raise UserError(f"unknown metric {metric!r}: use cosine or euclidean")
    torch_device = pick_device(device)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    span = end - start
    track = tracker(reporter)

    with EmbeddingReader(embeddings) as reader:
        windows = reader.windows()
        # Pass 1: count valid patches, keep a uniform random sample (top random keys), and keep
        # every vector while they fit in the memory budget.
        sample_keys = np.empty(0)
        sample = np.empty((0, reader.dim), np.float32)
        kept: list[np.ndarray] | None = []
        kept_bytes = 0
        valid_total = 0
        for window in track(windows, "reading embeddings", start, start + 0.2 * span):
            vectors, _ = reader.read_vectors(window)
            valid_total += len(vectors)
            if kept is not None:
                kept_bytes += vectors.nbytes
                kept = [*kept, vectors] if kept_bytes <= memory_budget else None
            keys = rng.random(len(vectors))
            sample_keys = np.concatenate([sample_keys, keys])
            sample = np.concatenate([sample, vectors])
            if len(sample) > sample_size:
                top = np.argpartition(-sample_keys, sample_size - 1)[:sample_size]
                sample_keys, sample = sample_keys[top], sample[top]
        nodata_total = reader.grid.width * reader.grid.height - valid_total
        if valid_total == 0:
            raise UserError(f"the embedding raster {reader.path.name} has no valid patches (all nodata)")
        if k > valid_total:
            raise UserError(f"--k {k} is larger than the number of valid patches ({valid_total}); "
                            f"choose k <= {valid_total} or a larger area")

        sample_tensor = _prepare(sample[np.argsort(sample_keys)], metric, torch_device)
        initial = kmeans_plus_plus(sample_tensor, k, generator)
        del sample_tensor, sample

        in_memory = kept is not None
        if kept is not None:
            matrix = _prepare(np.concatenate(kept), metric, torch_device)
            kept = None
            fitted = lloyd(matrix, initial, iterations, tol)
            del matrix
            if reporter is not None:
                reporter.progress(start + 0.8 * span, "k-means iterations")
        else:
            def blocks() -> Iterable[torch.Tensor]:
                for window in windows:
                    vectors, _ = reader.read_vectors(window)
                    if len(vectors):
                        yield _prepare(vectors, metric, torch_device)

            def on_pass(done: int) -> None:
                if reporter is not None:
                    reporter.progress(start + span * (0.2 + 0.6 * done / iterations),
                                      f"k-means pass {done}/{iterations}")
                    reporter.log(f"k-means pass {done}/{iterations}")

            fitted = streamed_lloyd(blocks, initial, iterations, tol, on_pass)

        # Label clusters by size: value 1 is the largest cluster.
        order = torch.argsort(fitted.counts.cpu(), descending=True, stable=True)
        centres = fitted.centres[order.to(fitted.centres.device)]
        dtype = class_dtype(k)
        sizes = np.zeros(k + 1, dtype=np.int64)
        with atomic_paths(out, style_path(out)) as (raster_tmp, style_tmp):
            with create_raster(raster_tmp, reader.grid, dtype, 0, description="cluster") as dst:
                for window in track(windows, "writing clusters", start + 0.8 * span, end):
                    vectors, valid = reader.read_vectors(window)
                    classes = np.zeros(valid.shape, dtype=dtype)
                    if len(vectors):
                        labels, _ = assign(_prepare(vectors, metric, torch_device), centres)
                        classes[valid] = (labels.cpu().numpy() + 1).astype(dtype)
                    sizes += np.bincount(classes.ravel(), minlength=k + 1)
                    dst.write(classes[np.newaxis], window=window)
            style_tmp.write_text(paletted_qml({i: f"cluster {i}" for i in range(1, k + 1)}), encoding="utf-8")
    return ClusterStats(k=k, valid_patches=valid_total, nodata_patches=int(nodata_total),
                        iterations=fitted.iterations, inertia=fitted.inertia,
                        cluster_sizes={i: int(sizes[i]) for i in range(1, k + 1)},
                        in_memory=in_memory, metric=metric, device=str(torch_device))


__all__ = ["ClusterStats", "KMeansResult", "assign", "cluster_embeddings", "kmeans_plus_plus", "l2_normalize",
           "lloyd", "minibatch_kmeans", "streamed_lloyd"]
