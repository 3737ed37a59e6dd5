"""Helpers of the downstream maps: device choice, class dtypes, result rasters, progress.

Embedding GeoTIFFs are read with :class:`backend.inference.embedding_raster.EmbeddingRaster` (the
one reader for the whole backend); :class:`Grid` is re-exported here for the downstream modules.

Every class or float result raster of the downstream commands is written through
:func:`result_rasters` (the one output writer)::

    with result_rasters(grid, RasterOutput(out, "uint8", 0, ("cluster",))) as (clusters,):
        with clusters.open() as dst:
            dst.write(...)
        clusters.style_classes({1: "cluster 1", ...})

The rasters are tiled, compressed GeoTIFFs on ``grid`` with a description per band; each gets its
``.qml`` style beside it; all appear together, verified, only when the block ends without error
(:func:`backend.io.atomic.atomic_paths`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.inference.embedding_raster import Grid


def pick_device(device: str = "auto") -> Any:
    """:func:`backend.inference.model.resolve_device` as a ``torch.device`` (auto/cpu/cuda)."""
    import torch

    from backend.inference.model import resolve_device

    return torch.device(resolve_device(device))


def class_dtype(count: int) -> str:
    """uint8 for up to 254 classes (0 is nodata), else uint16."""
    return "uint8" if count <= 254 else "uint16"


def create_raster(path: str | os.PathLike[str], grid: Grid, dtype: str, nodata: float | int,
                  count: int = 1) -> Any:
    """Open a tiled, compressed GeoTIFF on ``grid`` for writing, on a temporary path of
    :func:`result_rasters` (its profile is recorded for the verification before the rename)."""
    import rasterio

    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": count,
               "dtype": dtype, "nodata": nodata, "crs": grid.crs, "transform": grid.transform,
               "compress": "deflate", "predictor": 3 if dtype.startswith("float") else 2}
    if grid.width >= 16 and grid.height >= 16:
        side = min(256, 16 * (min(grid.width, grid.height) // 16))
        profile.update(tiled=True, blockxsize=side, blockysize=side)
    from backend.io.write_checks import record_profile

    record_profile(path, profile)
    return rasterio.open(path, "w", **profile)


@dataclass(frozen=True)
class RasterOutput:
    """One result raster to write: final ``path``, pixel ``dtype``, ``nodata`` and one description
    per band (the band count)."""

    path: str | os.PathLike[str]
    dtype: str
    nodata: float | int
    descriptions: Sequence[str] = ("",)


class ResultRaster:
    """A result raster being written: ``path`` is its temporary file (readable once closed)."""

    def __init__(self, output: RasterOutput, grid: Grid, path: Path, style: Path) -> None:
        self.output, self.grid, self.path, self._style = output, grid, path, style
        self.styled = False

    def open(self) -> Any:
        """The raster opened for writing (a rasterio dataset; close it, or use ``with``)."""
        output = self.output
        dataset = create_raster(self.path, self.grid, output.dtype, output.nodata,
                                count=len(output.descriptions))
        for band, description in enumerate(output.descriptions, start=1):
            if description:
                dataset.set_band_description(band, description)
        return dataset

    def write_style(self, qml: str) -> None:
        """The raster's ``.qml`` sidecar style."""
        self._style.write_text(qml, encoding="utf-8")
        self.styled = True

    def style_classes(self, classes: Mapping[int, str], colors: Sequence[str] | None = None) -> None:
        """A paletted style: one colour and label per class value."""
        from backend.downstream.styles import paletted_qml

        self.write_style(paletted_qml(classes, colors))

    def style_range(self, minimum: float, maximum: float) -> None:
        """A pseudocolour style stretched over ``minimum`` … ``maximum``."""
        from backend.downstream.styles import pseudocolor_qml

        self.write_style(pseudocolor_qml(minimum, maximum))


@contextlib.contextmanager
def result_rasters(grid: Grid, *outputs: RasterOutput) -> Iterator[tuple[ResultRaster, ...]]:
    """Write result rasters on ``grid`` and their styles atomically (see the module docstring).

    Raises:
        RuntimeError: a raster was left without its style (a programming error; nothing is written).
    """
    from backend.downstream.styles import style_path
    from backend.io.atomic import atomic_paths

    finals = [path for output in outputs for path in (Path(output.path), style_path(output.path))]
    with atomic_paths(*finals) as temps:
        results = tuple(ResultRaster(output, grid, temps[2 * i], temps[2 * i + 1])
                        for i, output in enumerate(outputs))
        yield results
        unstyled = [str(result.output.path) for result in results if not result.styled]
        if unstyled:
            raise RuntimeError(f"result raster(s) without a style: {', '.join(unstyled)}")


def write_patch_classes(reader: Any, windows: Iterable[Any], out: str | os.PathLike[str], count: int,
                        label: Callable[[Any], Any], legend: Mapping[int, str],
                        colors: Sequence[str] | None = None, description: str = "cluster") -> Any:
    """Write the class map of ``reader``'s patches over ``windows`` through :func:`result_rasters`.

    Args:
        reader: an open ``EmbeddingRaster``.
        windows: its windows (wrapped in a progress tracker, if wanted).
        out: the class GeoTIFF; its paletted style is ``legend`` (value -> label) in ``colors``.
        count: the largest class value (0 is nodata).
        label: each valid patch's class value (1 … ``count``) from its vectors ``[n, dim]``.
        description: the band description.

    Returns:
        How many patches hold each value 0 … ``count`` (int64 array).
    """
    import numpy as np

    dtype = class_dtype(count)
    sizes = np.zeros(count + 1, np.int64)
    with result_rasters(reader.grid, RasterOutput(out, dtype, 0, (description,))) as (classes_raster,):
        with classes_raster.open() as dst:
            for window in windows:
                vectors, rows, cols = reader.read_vectors(window)
                classes = np.zeros((int(window.height), int(window.width)), dtype=dtype)
                if len(vectors):
                    classes[rows, cols] = label(vectors).astype(dtype)
                sizes += np.bincount(classes.ravel(), minlength=count + 1)
                dst.write(classes[np.newaxis], window=window)
        classes_raster.style_classes(legend, colors)
    return sizes


def tracker(reporter: Any) -> Callable[..., Iterable[Any]]:
    """``reporter.track`` over a list when a reporter is given, else the plain list."""
    def track(items: list[Any], description: str, start: float, end: float) -> Iterable[Any]:
        if reporter is None:
            return items
        return reporter.track(items, total=len(items), description=description, start=start, end=end)
    return track
