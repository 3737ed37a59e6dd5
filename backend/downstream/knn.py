"""Cosine k-nearest-neighbour label maps from labelled sample polygons.

The polygons are rasterised onto the patch grid of an embedding raster; every valid patch under a
polygon becomes a reference vector with the polygon's class. Each patch of the raster is then
labelled by its ``k`` most cosine-similar references (L2-normalised vectors, chunked matrix
products on the GPU when present). Votes are weighted by similarity (negative similarities count
zero); the confidence raster is the winning class's share of the neighbours' vote weight.

Leave-one-polygon-out (LOPO) accuracy: each reference patch is classified from references of the
*other* polygons only, which estimates how the map performs away from the drawn samples far
better than an accuracy that lets patches see their own polygon.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster
from backend.io.vectors import SampleSet

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


def knn_predict(query: torch.Tensor, references: References, neighbors: int, class_count: int,
                query_polygons: torch.Tensor | None = None,
                chunk: int = QUERY_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarity-weighted kNN vote for normalised ``query`` rows.

    Args:
        query: ``[m, dim]`` L2-normalised vectors.
        references: the labelled patches.
        neighbors: k (clamped to the number of usable references).
        class_count: number of classes K.
        query_polygons: when given, references of the query's own polygon are excluded (LOPO).

    Returns:
        class index (0-based) ``[m]`` and confidence in [0, 1] ``[m]``.
    """
    predicted = torch.empty(len(query), dtype=torch.long, device=query.device)
    confidence = torch.empty(len(query), dtype=torch.float32, device=query.device)
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
        total = votes.sum(dim=1).clamp_min(1e-12)
        best, winner = votes.max(dim=1)
        predicted[start:start + chunk] = winner
        confidence[start:start + chunk] = best / total
    return predicted, confidence


@dataclass
class ClassifyStats:
    """Per-class sample counts, LOPO accuracy and the class legend of a kNN run."""

    classes: dict[int, str]
    class_counts: dict[str, int]
    polygon_counts: dict[str, int]
    lopo_accuracy: float | None
    lopo_class_accuracy: dict[str, float | None]
    neighbors: int
    reference_patches: int
    valid_patches: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def collect_references(reader: Any, samples: SampleSet, device: torch.device) -> tuple[References, list[str]]:
    """Rasterise the polygons onto the patch grid and gather the labelled valid patches.

    Returns the references and warnings (polygons outside the raster or on nodata only).

    Raises:
        UserError: no polygon overlaps valid patches of the raster.
    """
    from backend.downstream.samples import polygons_window, rasterize_polygons

    window = polygons_window(samples.polygons, reader.grid)
    if window is None:
        raise UserError(f"no sample polygon overlaps the raster ({len(samples.polygons)} polygons, "
                        f"reprojected to {reader.grid.crs}); check the layer and the area")
    burnt = rasterize_polygons(samples.polygons, reader.grid, window)
    array, valid = reader.read(window)
    labelled = valid & (burnt > 0)
    warnings: list[str] = []
    outside = len(samples.polygons) - len(np.unique(burnt[burnt > 0]))
    if outside:
        warnings.append(f"{outside} sample polygon(s) lie outside the raster and were ignored")
    on_nodata = len(np.unique(burnt[burnt > 0])) - len(np.unique(burnt[labelled]))
    if on_nodata:
        warnings.append(f"{on_nodata} sample polygon(s) cover only nodata patches and were ignored")
    if not labelled.any():
        raise UserError("no sample polygon overlaps valid (non-nodata) patches of the raster")
    positions = burnt[labelled] - 1
    class_index = np.array([samples.classes.index(p.class_name) for p in samples.polygons])[positions]
    vectors = torch.from_numpy(np.ascontiguousarray(array[:, labelled].T)).to(device)
    return References(vectors=normalize_rows(vectors),
                      classes=torch.from_numpy(class_index).to(device),
                      polygons=torch.from_numpy(positions.astype(np.int64)).to(device)), warnings


def leave_one_polygon_out(references: References, neighbors: int,
                          class_count: int) -> tuple[float | None, list[float | None]]:
    """Patch accuracy when each polygon is predicted from the other polygons; also per class."""
    others = references.polygons.unique()
    if len(others) < 2:
        return None, [None] * class_count
    predicted, _ = knn_predict(references.vectors, references, neighbors, class_count,
                               query_polygons=references.polygons)
    correct = (predicted == references.classes).float()
    per_class: list[float | None] = []
    for index in range(class_count):
        members = references.classes == index
        per_class.append(float(correct[members].mean()) if members.any() else None)
    return float(correct.mean()), per_class


def classify_embeddings(embeddings: str | os.PathLike[str], samples: SampleSet, out: str | os.PathLike[str],
                        confidence_out: str | os.PathLike[str] | None = None, neighbors: int = 10,
                        device: str = "auto", reporter: Any = None, start: float = 0.0,
                        end: float = 1.0) -> ClassifyStats:
    """Label every valid patch by cosine kNN to the sample polygons' patches.

    Writes ``out`` (classes 1..K in ``samples.classes`` order, nodata 0) with a paletted ``.qml``
    whose labels are the class names, and, when ``confidence_out`` is given, a float32 confidence
    raster (nodata NaN) with a pseudocolour ``.qml``. All files appear together when complete.

    Raises:
        UserError: no usable samples on the raster, or fewer than two classes among them.
    """
    from backend.downstream.raster import class_dtype, create_raster, pick_device, tracker
    from backend.downstream.styles import paletted_qml, pseudocolor_qml, style_path
    from backend.io.atomic import atomic_paths

    if neighbors < 1:
        raise UserError(f"--neighbors must be at least 1 (got {neighbors})")
    torch_device = pick_device(device)
    class_count = len(samples.classes)
    track = tracker(reporter)
    span = end - start
    with EmbeddingRaster(embeddings) as reader:
        references, warnings = collect_references(reader, samples, torch_device)
        classes_present = references.classes.unique().tolist()
        if len(classes_present) < 2:
            only = samples.classes[classes_present[0]]
            raise UserError(f"the samples on this raster have only one class ('{only}'); kNN needs at "
                            "least two classes")
        class_counts: dict[str, int] = {}
        polygon_counts: dict[str, int] = {}
        for index, name in enumerate(samples.classes):
            members = references.classes == index
            class_counts[name] = int(members.sum())
            polygon_counts[name] = len(references.polygons[members].unique())
            if not class_counts[name]:
                warnings.append(f"class '{name}' has no valid sample patch on this raster")
        if neighbors > len(references.vectors):
            warnings.append(f"--neighbors {neighbors} is more than the {len(references.vectors)} sample "
                            f"patches; using {len(references.vectors)}")
        lopo, lopo_per_class = leave_one_polygon_out(references, neighbors, class_count)
        if reporter is not None:
            reporter.progress(start + 0.1 * span, "leave-one-polygon-out accuracy")

        outputs = [out, style_path(out)]
        if confidence_out is not None:
            outputs += [confidence_out, style_path(confidence_out)]
        dtype = class_dtype(class_count)
        valid_total = 0
        low, high = np.inf, -np.inf
        with atomic_paths(*outputs) as temps:
            labels_dst = create_raster(temps[0], reader.grid, dtype, 0, description="class")
            confidence_dst = (create_raster(temps[2], reader.grid, "float32", float("nan"),
                                            description="confidence") if confidence_out is not None else None)
            try:
                for window in track(reader.windows(), "classifying patches", start + 0.1 * span, end):
                    vectors, rows, cols = reader.read_vectors(window)
                    shape = (int(window.height), int(window.width))
                    labels = np.zeros(shape, dtype=dtype)
                    confidence = np.full(shape, np.nan, dtype=np.float32)
                    if len(vectors):
                        query = normalize_rows(torch.from_numpy(vectors).to(torch_device))
                        predicted, score = knn_predict(query, references, neighbors, class_count)
                        labels[rows, cols] = (predicted.cpu().numpy() + 1).astype(dtype)
                        scores = score.cpu().numpy()
                        confidence[rows, cols] = scores
                        low = min(low, float(scores.min()))
                        high = max(high, float(scores.max()))
                    valid_total += len(vectors)
                    labels_dst.write(labels[np.newaxis], window=window)
                    if confidence_dst is not None:
                        confidence_dst.write(confidence[np.newaxis], window=window)
            finally:
                labels_dst.close()
                if confidence_dst is not None:
                    confidence_dst.close()
            temps[1].write_text(paletted_qml(samples.class_values), encoding="utf-8")
            if confidence_out is not None:
                temps[3].write_text(pseudocolor_qml(low if np.isfinite(low) else 0.0,
                                                    high if np.isfinite(high) else 1.0), encoding="utf-8")
    return ClassifyStats(
        classes=samples.class_values, class_counts=class_counts, polygon_counts=polygon_counts,
        lopo_accuracy=lopo, lopo_class_accuracy=dict(zip(samples.classes, lopo_per_class)),
        neighbors=min(neighbors, len(references.vectors)), reference_patches=len(references.vectors),
        valid_patches=valid_total, warnings=warnings)
