"""Similarity maps: cosine similarity of every patch to the mean embedding of a query.

The query is the patch under a point, or the patches under sample polygons. Vectors are
L2-normalised before averaging, so every query patch counts equally; the mean is normalised
again and compared with every patch by cosine similarity, giving values in [-1, 1]. With
``distance="euclidean"`` the map holds instead the similarity ``-|v - q|``, the negative euclidean
distance of every patch to the mean query vector (vectors as read with ``normalise``; at most 0, at
the query itself). Either way higher = more similar, so one colour ramp reads the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend.errors import UserError
from backend.io.vectors import SampleSet

#: Band description of the map per ``distance``: both hold a similarity (higher = more alike).
SIMILARITY_NAMES = {"cosine": "similarity", "euclidean": "similarity (negative euclidean distance)"}


@dataclass
class SimilarityStats:
    """Query size and the value range of a similarity map."""

    query_patches: int
    minimum: float
    maximum: float
    mean: float
    valid_patches: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def point_query(reader: Any, x: float, y: float, crs: Any = None) -> np.ndarray:
    """The embedding ``[1, dim]`` of the patch under point (x, y), given in ``crs`` (default: raster CRS).

    Raises:
        UserError: the point is outside the raster or on a nodata patch.
    """
    from rasterio.crs import CRS
    from rasterio.transform import rowcol
    from rasterio.warp import transform as transform_points
    from rasterio.windows import Window

    if crs is not None and CRS.from_user_input(crs) != reader.grid.crs:
        xs, ys = transform_points(CRS.from_user_input(crs), reader.grid.crs, [x], [y])
        px, py = xs[0], ys[0]
    else:
        px, py = x, y
    row, col = rowcol(reader.grid.transform, px, py)
    if not (0 <= row < reader.grid.height and 0 <= col < reader.grid.width):
        raise UserError(f"the point ({x}, {y}) lies outside the raster")
    vectors, _, _ = reader.read_vectors(Window(col, row, 1, 1))
    if not len(vectors):
        raise UserError(f"the point ({x}, {y}) falls on a nodata patch of the raster")
    return vectors


def polygon_query(reader: Any, samples: SampleSet) -> np.ndarray:
    """The valid embeddings ``[n, dim]`` of all patches under the polygons (any class).

    Raises:
        UserError: no polygon covers a valid patch.
    """
    from backend.downstream.samples import polygons_window, rasterize_polygons

    window = polygons_window(samples.polygons, reader.grid)
    if window is None:
        raise UserError("no query polygon overlaps the raster")
    burnt = rasterize_polygons(samples.polygons, reader.grid, window)
    array, valid = reader.read(window)
    chosen = (burnt > 0) & valid
    if not chosen.any():
        raise UserError("the query polygons cover only nodata patches")
    return np.ascontiguousarray(array[:, chosen].T)


def similarity_map(embeddings: str | os.PathLike[str], out: str | os.PathLike[str],
                   point: tuple[float, float] | None = None, point_crs: Any = None,
                   samples: SampleSet | None = None, device: str = "auto", reporter: Any = None,
                   start: float = 0.0, end: float = 1.0, distance: str = "cosine",
                   normalise: str = "none") -> SimilarityStats:
    """Write the similarity of every patch to the query's mean embedding (higher = more similar).

    Give either ``point`` (with ``point_crs``) or ``samples``. Writes ``out`` (float32: cosine
    similarity in [-1, 1], or with ``distance="euclidean"`` the negative euclidean distance, at most
    0; nodata NaN; on the embedding grid) and a pseudocolour ``.qml`` stretched from the data's
    minimum to its maximum; both appear only when complete.
    """
    from backend.downstream.knn import normalize_rows
    from backend.downstream.raster import RasterOutput, pick_device, result_rasters, tracker
    from backend.inference.embedding_raster import EmbeddingRaster

    if (point is None) == (samples is None):
        raise UserError("give either a point (--point X Y) or query polygons (--samples), not both")
    if distance not in SIMILARITY_NAMES:
        raise UserError(f"--distance must be cosine or euclidean; got {distance!r}")
    torch_device = pick_device(device)
    euclidean = distance == "euclidean"
    with EmbeddingRaster(embeddings, normalise=normalise) as reader:
        if point is not None:
            query = point_query(reader, *point, crs=point_crs)
        else:
            query = polygon_query(reader, samples)
        query_rows = torch.from_numpy(query).to(torch_device)
        if euclidean:
            centre = query_rows.mean(dim=0, keepdim=True)
        else:
            centre = normalize_rows(normalize_rows(query_rows).mean(dim=0, keepdim=True))
        low, high, total, count = np.inf, -np.inf, 0.0, 0
        output = RasterOutput(out, "float32", float("nan"),
                              (SIMILARITY_NAMES[distance],))
        with result_rasters(reader.grid, output) as (similarity_raster,):
            with similarity_raster.open() as dst:
                for window in tracker(reporter)(reader.windows(), "similarity", start, end):
                    vectors, rows, cols = reader.read_vectors(window)
                    result = np.full((int(window.height), int(window.width)), np.nan, dtype=np.float32)
                    if len(vectors):
                        patches = torch.from_numpy(vectors).to(torch_device)
                        if euclidean:
                            values = -(patches - centre).norm(dim=1).cpu().numpy()
                        else:
                            similarity = (normalize_rows(patches) @ centre.T)[:, 0]
                            values = similarity.clamp(-1, 1).cpu().numpy()
                        result[rows, cols] = values
                        low, high = min(low, float(values.min())), max(high, float(values.max()))
                        total, count = total + float(values.sum(dtype=np.float64)), count + len(values)
                    dst.write(result[np.newaxis], window=window)
            similarity_raster.style_range(low, high)
    return SimilarityStats(query_patches=len(query), minimum=low, maximum=high,
                           mean=total / max(count, 1), valid_patches=count)
