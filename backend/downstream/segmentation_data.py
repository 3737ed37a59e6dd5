"""What the segmentation head reads: input pixels, training labels and embedding blocks.

* Pixel sources (:class:`RasterPixels`, :class:`InputSetPixels`): the input bands on the area's
  pixel grid, for the head's per-pixel term.
* Label sources (:class:`PolygonLabels`, :class:`RasterLabels`): training labels on a grid (the
  pixel grid, or the embedding field's own grid when there is no input raster).
* :func:`open_embeddings`: the embedding field read on the input's 8x8 patch grid: as it is when
  it lies there (``embed``'s rasters), else aligned onto it on the fly (nearest cell: every vector
  stays one the field really has; bilinear blends would invent vectors across class edges and
  spread nodata). :func:`check_grids` is the strict test.
* :func:`read_embedding_block`, :func:`read_pixel_block`: padded windows (NaN outside).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster, Grid

PATCH = 8
MAX_LABEL_CLASSES = 255
"""More distinct values than this is not a class raster."""


class PixelSource(Protocol):
    """Input pixels on the pixel grid of the embeddings (``grid`` = the area, in pixels)."""

    grid: Grid
    band_names: list[str]

    def read(self, window: Any) -> tuple[np.ndarray, np.ndarray]:
        """``[C, h, w]`` float32 values and the valid mask ``[h, w]`` of a window (clipped to the grid)."""


class RasterPixels:
    """A :class:`PixelSource` reading a whole raster file directly (all bands, raw values)."""

    def __init__(self, path: str | os.PathLike[str], bands: Sequence[int] | None = None) -> None:
        from backend.io.rasters import open_raster

        self._dataset = open_raster(path, "input")
        ds = self._dataset
        self.bands = list(bands) if bands else list(range(1, ds.count + 1))
        self.band_names = [ds.descriptions[b - 1] or f"band{b}" for b in self.bands]
        self.grid = Grid(ds.crs, ds.transform, ds.width, ds.height)

    def read(self, window: Any) -> tuple[np.ndarray, np.ndarray]:
        raw = self._dataset.read(self.bands, window=window, masked=True)
        data = np.ma.getdata(raw).astype(np.float32)
        valid = ~np.ma.getmaskarray(raw).any(axis=0) & np.isfinite(data).all(axis=0)
        return data, valid

    def close(self) -> None:
        self._dataset.close()


class InputSetPixels:
    """A :class:`PixelSource` over an ``InputSet`` of ``backend.inference.resolve.open_inputs``.

    Modalities are stacked in model order (radar first), with their normalised values.
    """

    def __init__(self, inputs: Any) -> None:
        self.inputs = inputs
        self.band_names = [f"{name}:{band}" for name in inputs.names
                           for band in inputs.modalities[name].band_names]
        self.grid = Grid(inputs.crs, inputs.transform, inputs.width, inputs.height)

    def read(self, window: Any) -> tuple[np.ndarray, np.ndarray]:
        arrays, valid = self.inputs.read(window)
        return np.concatenate([arrays[name] for name in self.inputs.names]), valid



class LabelSource(Protocol):
    """Training labels on the pixel grid: 0 = unlabelled, 1..K = classes."""

    classes: list[str]

    def read(self, window: Any) -> np.ndarray: ...

    def labelled_window(self) -> Any | None: ...


class PolygonLabels:
    """Labels from sample polygons rasterised onto the pixel grid (pixel centres inside)."""

    def __init__(self, samples: Any, grid: Grid) -> None:
        from backend.downstream.samples import polygons_window

        self.samples, self.grid = samples, grid
        self.classes = list(samples.classes)
        self._window = polygons_window(samples.polygons, grid)
        if self._window is None:
            raise UserError("no sample polygon overlaps the raster")
        self._values = np.array([samples.value_of(p.class_name) for p in samples.polygons], np.int32)

    def labelled_window(self) -> Any | None:
        return self._window

    def read(self, window: Any) -> np.ndarray:
        from backend.downstream.samples import rasterize_polygons

        burnt = rasterize_polygons(self.samples.polygons, self.grid, window)
        labels = np.zeros(burnt.shape, np.int32)
        labels[burnt > 0] = self._values[burnt[burnt > 0] - 1]
        return labels


class RasterLabels:
    """Labels from a label raster, aligned onto the pixel grid (nearest neighbour).

    Pixels equal to the raster's nodata value, or negative (e.g. Sen1Floods11's -1), are unlabelled.
    Every other distinct value is a class, numbered in value order and named from the raster's
    paletted ``.qml`` sidecar, else its GDAL category names, else by its value. Rasters that are not
    class rasters (several bands, non-integral values, more than :data:`MAX_LABEL_CLASSES` classes)
    are refused.
    """

    def __init__(self, path: str | os.PathLike[str], grid: Grid, block_rows: int = 1024) -> None:
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        from backend.io.align import grid_view
        from backend.io.rasters import open_raster

        self.grid = grid
        self._source = open_raster(path, "label")
        src = self._source
        what = (f"the label raster {Path(path).name} is not a class raster (--label-raster needs one band of "
                "integer class values, e.g. classify's or segment's map)")
        if src.count != 1:
            self._source.close()
            raise UserError(f"{what}: it has {src.count} bands")
        self._nodata = src.nodata
        # Outside the label raster: -1 (unlabelled) for signed types, else the nodata value.
        unsigned = src.dtypes[0] in ("uint8", "uint16", "uint32")
        fill = (src.nodata if src.nodata is not None else 0) if unsigned else -1
        # Labels are classes: nearest neighbour, the file's dtype; grids within 1e-5 count as the same.
        self._view = grid_view(src, grid.crs, grid.transform, grid.width, grid.height, Resampling.nearest,
                               precision=1e-5, nodata=fill)
        values: set[float] = set()
        rows, cols = [], []
        for row in range(0, grid.height, block_rows):
            window = Window(0, row, grid.width, min(block_rows, grid.height - row))
            raw = self._raw(window)
            labelled = self._labelled(raw)
            found = np.unique(raw[labelled])
            fractional = found[np.mod(found, 1) != 0]
            if fractional.size:
                self.close()
                raise UserError(f"{what}: its values are not whole numbers (e.g. {fractional[0]:g})")
            values.update(found.tolist())
            if len(values) > MAX_LABEL_CLASSES:
                self.close()
                raise UserError(f"{what}: it has more than {MAX_LABEL_CLASSES} distinct values")
            hit_rows, hit_cols = np.nonzero(labelled)
            if len(hit_rows):
                rows += [row + hit_rows.min(), row + hit_rows.max()]
                cols += [hit_cols.min(), hit_cols.max()]
        if not values:
            raise UserError(f"the label raster {Path(path).name} has no labelled pixels over the area")
        self._values = sorted(values)
        names = label_names(Path(path))
        self.classes = [names.get(int(v)) or _value_name(v) for v in self._values]
        self._window = Window(min(cols), min(rows), max(cols) - min(cols) + 1, max(rows) - min(rows) + 1)

    def _raw(self, window: Any) -> np.ndarray:
        return self._view.read(1, window=window, boundless=False)

    def _labelled(self, raw: np.ndarray) -> np.ndarray:
        labelled = np.isfinite(raw) & (raw >= 0)
        if self._nodata is not None:
            labelled &= raw != self._nodata
        return labelled

    def labelled_window(self) -> Any | None:
        return self._window

    def read(self, window: Any) -> np.ndarray:
        raw = self._raw(window)
        labelled = self._labelled(raw)
        labels = np.zeros(raw.shape, np.int32)
        labels[labelled] = np.searchsorted(self._values, raw[labelled]) + 1
        return labels

    def close(self) -> None:
        if self._view is not self._source:
            self._view.close()
        self._source.close()


def label_names(path: Path) -> dict[int, str]:
    """``{value: name}`` of a class raster: its paletted ``.qml`` sidecar, else the GDAL category names
    or raster attribute table of band 1 in its ``.aux.xml`` sidecar (read as XML: rasterio has no API)."""
    import xml.etree.ElementTree as ET

    from backend.downstream.vectorise import read_qml_palette

    palette = read_qml_palette(path.with_suffix(".qml"))
    if palette:
        return {value: label for value, (label, _) in palette.items()}
    try:
        root = ET.parse(path.with_name(path.name + ".aux.xml")).getroot()
    except (OSError, ET.ParseError):
        return {}
    band = next((b for b in root.iter("PAMRasterBand") if b.get("band", "1") == "1"), None)
    if band is None:
        return {}
    names = {value: c.text for value, c in enumerate(band.iter("Category")) if c.text}
    table = band.find("GDALRasterAttributeTable")
    if not names and table is not None:  # usage 5 = MinMax (the value), 2 = Name
        usages = {f.findtext("Usage"): int(f.get("index", -1)) for f in table.iter("FieldDefn")}
        value_col, name_col = usages.get("5", usages.get("3")), usages.get("2")
        if value_col is not None and name_col is not None:
            for row in table.iter("Row"):
                cells = [f.text or "" for f in row.iter("F")]
                try:
                    names[int(float(cells[value_col]))] = cells[name_col]
                except (IndexError, ValueError):
                    continue
    return {value: name for value, name in names.items() if name}


def _value_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def read_embedding_block(reader: Any, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
    """Embeddings ``[dim, rows, cols]`` of a patch window; NaN where nodata or outside."""
    from rasterio.windows import Window

    out = np.full((reader.dim, row1 - row0, col1 - col0), np.nan, np.float32)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row1, reader.grid.height), min(col1, reader.grid.width)
    if r1 > r0 and c1 > c0:
        block, _ = reader.read(Window(c0, r0, c1 - c0, r1 - r0))
        out[:, r0 - row0:r1 - row0, c0 - col0:c1 - col0] = block
    return out


def read_pixel_block(pixels: PixelSource | None, row0: int, row1: int, col0: int,
                     col1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``[C, rows, cols]`` (NaN outside / invalid) and valid mask of a pixel window.

    Without a pixel source (the field form): no bands, every cell valid (nodata is the embeddings').
    """
    from rasterio.windows import Window

    if pixels is None:
        return np.zeros((0, row1 - row0, col1 - col0), np.float32), np.ones((row1 - row0, col1 - col0), bool)
    count = len(pixels.band_names)
    out = np.full((count, row1 - row0, col1 - col0), np.nan, np.float32)
    valid = np.zeros((row1 - row0, col1 - col0), bool)
    r1, c1 = min(row1, pixels.grid.height), min(col1, pixels.grid.width)
    if r1 > row0 and c1 > col0:
        data, ok = pixels.read(Window(col0, row0, c1 - col0, r1 - row0))
        data = data.copy()
        data[:, ~ok] = np.nan
        out[:, :r1 - row0, :c1 - col0] = data
        valid[:r1 - row0, :c1 - col0] = ok
    return out, valid


def check_grids(reader: Any, pixels: PixelSource) -> None:
    """Raise unless the embedding grid is the pixel grid scaled by 8 (as ``embed`` writes it)."""
    if not on_patch_grid(reader, pixels):
        raise UserError("the embeddings do not match the input raster's pixel grid (they must be made by "
                        "`embed` from the same raster and area)")


def patch_grid(pixel_grid: Grid) -> Grid:
    """The 8x8 patch grid of a pixel grid (as ``embed`` writes it; partial patches at the edges count)."""
    from affine import Affine

    return Grid(pixel_grid.crs, pixel_grid.transform @ Affine.scale(PATCH),
                math.ceil(pixel_grid.width / PATCH), math.ceil(pixel_grid.height / PATCH))


def on_patch_grid(reader: Any, pixels: PixelSource) -> bool:
    """Whether the embeddings lie on the pixel grid's 8x8 patch grid."""
    expected = patch_grid(pixels.grid)
    return (reader.grid.width == expected.width and reader.grid.height == expected.height
            and reader.crs == expected.crs
            and reader.grid.transform.almost_equals(expected.transform,
                                                    precision=1e-6 * abs(expected.transform.a)))


def open_embeddings(path: str | os.PathLike[str],
                    pixels: PixelSource | None) -> tuple[EmbeddingRaster, str | None]:
    """The field for the head, and a log line when it had to be aligned.

    With ``pixels``: on their 8x8 patch grid (aligned on the fly, nearest cell, when the field lies
    elsewhere). Without: the field on its own grid.
    """
    reader = EmbeddingRaster(path)
    if pixels is None or on_patch_grid(reader, pixels):
        return reader, None
    own = reader.grid
    reader.close()
    target = patch_grid(pixels.grid)
    aligned = EmbeddingRaster(path, grid=target)
    size = abs(own.transform.a)
    message = (f"embeddings {Path(path).name} are not on the input's 8x8 patch grid "
               f"({own.width}x{own.height} cells of {size:.6g} in {own.crs}): read aligned onto it on the "
               f"fly ({target.width}x{target.height} patches in {target.crs}, nearest cell)")
    return aligned, message
