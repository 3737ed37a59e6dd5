"""Cosine k-nearest-neighbour label maps from labelled sample polygons.

The polygons are rasterised onto the patch grid of an embedding raster; every valid patch under a
polygon becomes a reference vector with the polygon's class. Each patch of the raster is then
labelled by its ``k`` most cosine-similar references (L2-normalised vectors, chunked matrix
products on the GPU when present). Votes are weighted by similarity (negative similarities count
zero); the confidence raster is the winning class's share of the neighbours' vote weight.

The label map itself (any classifier, accuracy report) is made by :mod:`backend.downstream.classify`;
:func:`knn_votes` is the kNN's ``predict_proba`` there. Leave-one-polygon-out runs in one pass:
``query_polygons`` makes each query skip the references of its own polygon.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

QUERY_CHUNK = 4096


@dataclass
class References:
    """Labelled reference patches: normalised vectors, class index (0-based) and polygon position."""

    vectors: torch.Tensor
    classes: torch.Tensor
    polygons: torch.Tensor


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (all-zero rows stay zero); shared by kNN and similarity."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def knn_votes(query: torch.Tensor, references: References, neighbors: int, class_count: int,
              query_polygons: torch.Tensor | None = None, chunk: int = QUERY_CHUNK) -> torch.Tensor:
    """Each class's share of the similarity-weighted kNN vote for normalised ``query`` rows.

    Args:
        query: ``[m, dim]`` L2-normalised vectors.
        references: the labelled patches.
        neighbors: k (clamped to the number of usable references).
        class_count: number of classes K.
        query_polygons: when given, references of the query's own polygon are excluded (LOPO).

    Returns:
        ``[m, K]`` float32 vote shares (rows sum to 1): the kNN's class probabilities.
    """
    shares = torch.empty(len(query), class_count, dtype=torch.float32, device=query.device)
    k = min(neighbors, len(references.vectors))
    for start in range(0, len(query), chunk):
        part = query[start:start + chunk]
        similarity = part @ references.vectors.T
        if query_polygons is not None:
            own = query_polygons[start:start + chunk].unsqueeze(1) == references.polygons.unsqueeze(0)
            similarity = similarity.masked_fill(own, -torch.inf)
        values, index = similarity.topk(k, dim=1)
        usable = torch.isfinite(values)
        # Tiny floor so that all-negative neighbourhoods still vote (by count).
        weights = torch.where(usable, values.clamp_min(0) + 1e-6, torch.zeros_like(values))
        votes = torch.zeros(len(part), class_count, dtype=torch.float32, device=query.device)
        votes.scatter_add_(1, references.classes[index], weights.float())
        shares[start:start + chunk] = votes / votes.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return shares
