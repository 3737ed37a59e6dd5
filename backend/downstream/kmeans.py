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

Speed on CPU: the assignment step walks the rows in cache-sized chunks (distance product, argmin
and member sums while the chunk is still in cache) on one worker thread per core, each running
single-threaded torch ops; fine-grained intra-op threading loses most of its time in thread
synchronisation on a busy machine. In memory, Lloyd keeps each row's label and only moves the
rows whose label changed between the member sums (float64), so late iterations cost little more
than the distance product.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster

ASSIGN_CHUNK = 65536
"""Rows per assignment step on a GPU."""
CPU_CHUNK = 1024
"""Rows per assignment step on CPU: 1024 x 768 float32 rows (3 MiB) stay in cache between steps."""
CPU_TASK_CHUNKS = 16
"""Chunks per worker task on CPU (tasks are handed out dynamically to the worker threads)."""

SumsMode = Literal["none", "full", "changed"]


@dataclass
class KMeansResult:
    """Fitted centres ``[k, dim]``, the inertia (sum of squared distances) and iterations run."""

    centres: torch.Tensor
    inertia: float
    iterations: int
    counts: torch.Tensor | None = None


@dataclass
class _Assignment:
    """What one assignment pass over some rows found.

    ``scores`` is the sum over rows of ``|c|² - 2 x·c`` for the nearest centre ``c``; adding
    ``norms`` (the sum of ``|x|²``, when it was asked for) gives the inertia.
    """

    counts: torch.Tensor
    scores: torch.Tensor
    norms: torch.Tensor
    sums: torch.Tensor | None

    @property
    def inertia(self) -> float:
        return float(self.scores + self.norms)

    def add(self, other: _Assignment) -> _Assignment:
        sums = None if self.sums is None else self.sums + other.sums
        return _Assignment(self.counts + other.counts, self.scores + other.scores, self.norms + other.norms,
                           sums)


def row_sq_norms(x: torch.Tensor, chunk: int = ASSIGN_CHUNK) -> torch.Tensor:
    """``|x_i|²`` of every row, chunked so no ``x``-sized temporary is made."""
    return torch.cat([(part * part).sum(dim=1) for part in x.split(chunk)]) if len(x) else x.new_zeros(0)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _assign_rows(x: torch.Tensor, centres_t: torch.Tensor, centre_sq: torch.Tensor, start: int, stop: int,
                 chunk: int, mode: SumsMode, norms: bool, labels: torch.Tensor | None,
                 distances: torch.Tensor | None) -> _Assignment:
    """Assign rows ``start:stop`` to their nearest centres, chunk by chunk.

    ``mode`` says which member sums to return: ``"full"`` the sums of the rows' new clusters,
    ``"changed"`` only the change against the labels already in ``labels`` (rows that moved are
    added to their new cluster and taken from their old one), ``"none"`` no sums. ``norms`` asks
    for the sum of ``|x|²`` (needed for the inertia). New labels and squared distances are
    written into ``labels`` / ``distances`` when given.
    """
    k, dim = centres_t.shape[1], centres_t.shape[0]
    counts = torch.zeros(k, dtype=torch.long, device=x.device)
    scores = torch.zeros((), dtype=torch.float64, device=x.device)
    norm_total = torch.zeros((), dtype=torch.float64, device=x.device)
    sums = None if mode == "none" else torch.zeros(k, dim, dtype=torch.float64, device=x.device)
    for begin in range(start, stop, chunk):
        end = min(begin + chunk, stop)
        part = x[begin:end]
        # |x - c|² = |x|² - 2 x·c + |c|²; the |x|² term does not change the argmin.
        best, nearest = torch.addmm(centre_sq.unsqueeze(0), part, centres_t, alpha=-2.0).min(dim=1)
        scores += best.sum(dtype=torch.float64)
        counts += torch.bincount(nearest, minlength=k)
        if norms or distances is not None:
            part_sq = (part * part).sum(dim=1)
            norm_total += part_sq.sum(dtype=torch.float64)
            if distances is not None:
                distances[begin:end] = (best + part_sq).clamp_min_(0)
        # Member sums: float32 within a chunk, float64 across chunks.
        if mode == "full":
            sums += torch.zeros(k, dim, dtype=x.dtype, device=x.device).index_add_(0, nearest, part).double()
        elif mode == "changed":
            previous = labels[begin:end]
            moved = (nearest != previous).nonzero().squeeze(1)
            if len(moved):
                rows = part[moved]
                delta = torch.zeros(k, dim, dtype=x.dtype, device=x.device)
                delta.index_add_(0, nearest[moved], rows).index_add_(0, previous[moved], rows, alpha=-1.0)
                sums += delta.double()
        if labels is not None:
            labels[begin:end] = nearest
    return _Assignment(counts, scores, norm_total, sums)


def _assignment_pass(x: torch.Tensor, centres: torch.Tensor, mode: SumsMode = "none", norms: bool = True,
                     labels: torch.Tensor | None = None,
                     distances: torch.Tensor | None = None) -> _Assignment:
    """One assignment pass over all rows of ``x`` (see :func:`_assign_rows`).

    On CPU the rows are cut into tasks of :data:`CPU_TASK_CHUNKS` chunks that one worker thread
    per torch thread picks up, each running single-threaded torch ops.
    """
    centres_t = centres.T.contiguous()
    centre_sq = (centres * centres).sum(dim=1)
    n = len(x)

    def rows(span: tuple[int, int], chunk: int = CPU_CHUNK) -> _Assignment:
        return _assign_rows(x, centres_t, centre_sq, span[0], span[1], chunk, mode, norms, labels, distances)

    if x.device.type != "cpu":
        return rows((0, n), ASSIGN_CHUNK)
    threads = torch.get_num_threads()
    # Tasks of CPU_TASK_CHUNKS chunks, smaller when that would leave a worker idle (mini-batches).
    task = max(CPU_CHUNK, min(CPU_CHUNK * CPU_TASK_CHUNKS, -(-n // threads)))
    spans = [(begin, min(begin + task, n)) for begin in range(0, n, task)] or [(0, 0)]
    workers = min(threads, len(spans))
    with _torch_threads(1):
        if workers <= 1:
            parts = [rows(span) for span in spans]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="kmeans") as pool:
                parts = list(pool.map(rows, spans))
    total = parts[0]
    for part in parts[1:]:
        total = total.add(part)
    return total


def assign(x: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of each row of ``x`` and the squared distance to it."""
    labels = torch.empty(len(x), dtype=torch.long, device=x.device)
    distances = torch.empty(len(x), dtype=x.dtype, device=x.device)
    _assignment_pass(x, centres, "none", labels=labels, distances=distances)
    return labels, distances


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator,
                     trials: int | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding: each new centre is the best of a few D²-weighted candidates."""
    n = len(x)
    if k > n:
        raise ValueError(f"k={k} is larger than the {n} vectors")
    trials = trials or 2 + int(math.log(k))
    x_sq = row_sq_norms(x)
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
    new[filled] = (sums[filled] / counts[filled].unsqueeze(1).to(sums.dtype)).to(old.dtype)
    return new


def lloyd(x: torch.Tensor, centres: torch.Tensor, iterations: int, tol: float = 0.0) -> KMeansResult:
    """Full-batch Lloyd iterations on an in-memory matrix.

    Stops early when the total squared centre shift falls to ``tol`` or below (pass a negative
    ``tol`` to always run every iteration). The reported inertia and counts are of the final
    centres. Member sums are carried between iterations: after the first pass only the rows that
    changed cluster are added and removed.
    """
    centres = centres.clone()
    labels = torch.empty(len(x), dtype=torch.long, device=x.device)
    sums: torch.Tensor | None = None
    norms: torch.Tensor | None = None
    done = 0
    while done < iterations:
        done += 1
        if sums is None:
            step = _assignment_pass(x, centres, "full", True, labels)
            sums, norms = step.sums, step.norms
        else:
            step = _assignment_pass(x, centres, "changed", False, labels)
            sums = sums + step.sums
        new = _update(sums, step.counts, centres)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= tol:
            break
    final = _assignment_pass(x, centres, "none", norms is None)
    inertia = final.inertia if norms is None else float(final.scores + norms)
    return KMeansResult(centres, inertia, done, final.counts)


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
    final = _assignment_pass(x, centres)
    return KMeansResult(centres, final.inertia, iterations, final.counts)


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
        total: _Assignment | None = None
        for block in blocks():
            step = _assignment_pass(block, centres, "full")
            total = step if total is None else total.add(step)
        if total is None:
            break
        inertia = total.inertia  # inertia of the centres this pass started from
        counts = total.counts
        new = _update(total.sums, counts, centres)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if on_pass:
            on_pass(done)
        if shift <= tol:
            break
    return KMeansResult(centres, inertia, done, counts)


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

    @property
    def empty_clusters(self) -> list[int]:
        """Cluster values that no patch of the map holds."""
        return [value for value, size in self.cluster_sizes.items() if not size]

    @property
    def populated_clusters(self) -> int:
        """How many of the ``k`` clusters the map actually holds."""
        return self.k - len(self.empty_clusters)

    @property
    def warnings(self) -> list[str]:
        """An empty cluster is never silent: it says how many are populated and what it likely means."""
        empty = self.empty_clusters
        if not empty:
            return []
        return [f"only {self.populated_clusters} of the {self.k} clusters hold patches (cluster(s) "
                f"{', '.join(map(str, empty))} are empty): the embeddings have fewer distinct directions "
                "than k; lower --k, or check the input's units and sensor if the map should vary"]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "populated_clusters": self.populated_clusters,
                "empty_clusters": self.empty_clusters}


def _prepare(vectors: np.ndarray, metric: str, device: torch.device) -> torch.Tensor:
    """A tensor of freshly read vectors (normalised in place for the cosine metric)."""
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
    return x.div_(x.norm(dim=1, keepdim=True).clamp_min_(1e-12)) if metric == "cosine" else x


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
    from backend.downstream.raster import pick_device, tracker, write_patch_classes

    if k < 1:
        raise UserError(f"--k must be at least 1 (got {k})")
    if metric not in ("cosine", "euclidean"):
        raise UserError(f"unknown metric {metric!r}: use cosine or euclidean")
    torch_device = pick_device(device)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    span = end - start
    track = tracker(reporter)

    with EmbeddingRaster(embeddings) as reader:
        windows = reader.windows()
        # Pass 1: count valid patches, keep a uniform random sample (top random keys), and keep
        # every vector while they fit in the memory budget.
        sample_keys = np.empty(0)
        sample = np.empty((0, reader.dim), np.float32)
        kept: list[np.ndarray] | None = []
        kept_bytes = 0
        valid_total = 0
        for window in track(windows, "reading embeddings", start, start + 0.2 * span):
            vectors, _, _ = reader.read_vectors(window)
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
                    vectors, _, _ = reader.read_vectors(window)
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

        def label(vectors: np.ndarray) -> np.ndarray:
            return assign(_prepare(vectors, metric, torch_device), centres)[0].cpu().numpy() + 1

        writing = track(windows, "writing clusters", start + 0.8 * span, end)
        legend = {i: f"cluster {i}" for i in range(1, k + 1)}
        sizes = write_patch_classes(reader, writing, out, k, label, legend)
    return ClusterStats(k=k, valid_patches=valid_total, nodata_patches=int(nodata_total),
                        iterations=fitted.iterations, inertia=fitted.inertia,
                        cluster_sizes={i: int(sizes[i]) for i in range(1, k + 1)},
                        in_memory=in_memory, metric=metric, device=str(torch_device))


__all__ = ["ClusterStats", "KMeansResult", "assign", "cluster_embeddings", "kmeans_plus_plus",
           "lloyd", "minibatch_kmeans", "streamed_lloyd"]
