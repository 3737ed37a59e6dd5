"""Read an embedding field: a raster made by ``embed``, or any multi-band float (or scaled integer)
GeoTIFF/VRT such as an AlphaEarth or TESSERA export (one band per dimension).

The one reader of embedding rasters, for the inference engine (preview, ``--embeddings`` inputs)
and the downstream maps (cluster, classify, segment, similar, change).
``EmbeddingRaster(path, normalise="none", grid=None)`` (also a context manager):

* ``path``, ``crs``, ``transform`` (the field's grid; for ``embed``'s rasters the patch grid: the
  input's transform scaled by 8), ``width`` / ``height`` (in cells, "patches"), ``grid`` (all four
  as a :class:`Grid`), ``dim``, ``descriptions``, ``bounds``, ``profile``.
* ``own``: True for rasters made by ``embed`` (bands ``emb_000``...; they carry units, model and a
  pixel grid for ``segment``); False for foreign fields. ``unit_length``: whether the sampled
  vectors already have length 1. ``normalised``: whether ``read`` L2-normalises (``normalise``
  ``"l2"``, or ``"auto"`` for own and unit-length fields; ``"none"`` keeps the values).
* ``grid=`` another :class:`Grid`: read the field aligned onto that grid on the fly (nearest cell,
  nodata outside the field); ``UserError`` when they do not overlap.
* ``read(window=None) -> (array, valid)``: ``array`` float32 ``[dim, h, w]`` (GDAL scale/offset
  applied), ``valid`` bool ``[h, w]`` (True where the cell has a vector; nodata cells, from NaN, the
  nodata value or the mask, are NaN in ``array``).
* ``read_vectors(window=None) -> (vectors [n, dim], rows, cols)``: only the valid cells, with
  their window-relative row and column indexes.
* ``windows(max_patches=None) -> list[Window]``: full-width strips covering the raster, top to
  bottom, of at most ``max_patches`` cells (at least one row; by default as many as fit in
  :data:`BLOCK_BYTES` of float32), for streaming over big rasters with bounded memory.
* ``iter_blocks(max_patches=None) -> Iterator[(window, array, valid)]``: ``read`` over ``windows``.

``check_field(dataset, path)`` raises the one-line error for rasters that are not fields (an image:
"looks like an image, not an embedding field: 3 bands of uint8; pass it as --optical").
``l2_normalise(vectors, axis)`` is the normalisation helper; ``NORMALISE_CHOICES`` and
``DISTANCE_CHOICES`` are the values of ``--normalise`` and ``--distance``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from backend.errors import UserError
from backend.io.rasters import open_raster

BLOCK_BYTES = 64 * 2**20
"""Default float32 size of one streamed block."""
MIN_FIELD_BANDS = 8
"""Fewer bands than this is an image (or a single product), not an embedding field."""
NORMALISE_CHOICES = ("auto", "l2", "none")
DISTANCE_CHOICES = ("cosine", "euclidean")
UNIT_TOLERANCE = 0.02
"""Median | |v| - 1 | below which a field counts as already unit length."""
_BAND_NAME = re.compile(r"^(b\d{1,2}a?|vv|vh|hh|hv|red|green|blue|nir|swir\d?|coastal|pan|alpha)$", re.I)


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform and size in cells, as live rasterio objects.

    The pretraining sources keep theirs as plain values instead
    (:class:`backend.training.data.PortableGrid`: WKT and 6 numbers, cheap to pickle into workers).
    """

    crs: Any
    transform: Any
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def scaled(self, factor: int) -> Grid:
        """The grid with cells ``factor`` times smaller (patch grid → pixel grid for factor 8)."""
        from rasterio.transform import Affine

        return Grid(self.crs, self.transform * Affine.scale(1 / factor), self.width * factor,
                    self.height * factor)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the grid's CRS."""
        from rasterio.transform import array_bounds

        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return (west, south, east, north)


def is_own_field(descriptions: tuple[str | None, ...]) -> bool:
    """Whether band descriptions are ``embed``'s (``emb_000``, ``emb_001``, ...)."""
    return bool(descriptions) and all(d and d.startswith("emb_") for d in descriptions)


def _scaled(dataset: Any) -> bool:
    return (any(s not in (None, 1.0) for s in dataset.scales)
            or any(o not in (None, 0.0) for o in dataset.offsets))


def check_field(dataset: Any, path: str | os.PathLike[str]) -> None:
    """Raise a one-line ``UserError`` when ``dataset`` is not an embedding field.

    A field has at least :data:`MIN_FIELD_BANDS` bands of floats (or integers with a GDAL scale),
    and its bands are not named like spectral or radar bands.
    """
    if is_own_field(tuple(dataset.descriptions)):
        return
    count, dtype = int(dataset.count), str(dataset.dtypes[0])
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    names = [d for d in dataset.descriptions if d]
    kind = f"{count} band{'s' if count != 1 else ''} of {dtype}"
    image_hint = "pass it as --optical (or --sar)"
    image_dtype = dtype in ("uint8", "uint16", "int16")
    if integer and not _scaled(dataset) and (count < MIN_FIELD_BANDS or image_dtype):
        raise UserError(f"{path} looks like an image, not an embedding field: {kind}; {image_hint}")
    if names and sum(bool(_BAND_NAME.match(n.strip())) for n in names) >= max(1, len(names) // 2):
        raise UserError(f"{path} looks like an image, not an embedding field: {kind} named "
                        f"{', '.join(names[:4])}{', ...' if len(names) > 4 else ''}; {image_hint}")
    if count < MIN_FIELD_BANDS:
        raise UserError(f"{path} is not an embedding field: {kind}; a field has one band per dimension "
                        f"(at least {MIN_FIELD_BANDS})")
    if integer and not _scaled(dataset):
        raise UserError(f"{path} is not an embedding field: {kind} without a scale; give integer fields a "
                        "GDAL scale/offset (e.g. gdal_translate -a_scale 0.0078125), or export floats")


class EmbeddingRaster:
    """Reader of an embedding field (see the module docstring).

    Args:
        path: the raster.
        normalise: ``"none"`` (values as stored), ``"l2"`` (unit-length vectors), or ``"auto"``
            (l2 for ``embed``'s rasters and fields that are already unit length, else none).
        grid: read the field aligned onto this grid (nearest cell) instead of its own.

    Raises:
        UserError: the file is missing, not a raster, has no CRS, is not a field (see
            :func:`check_field`), or does not overlap ``grid``.
    """

    def __init__(self, path: str | os.PathLike[str], normalise: str = "none",
                 grid: Grid | None = None) -> None:
        if normalise not in NORMALISE_CHOICES:
            raise UserError(f"--normalise must be one of {', '.join(NORMALISE_CHOICES)}; got {normalise!r}")
        self.path = Path(path)
        self.source = open_raster(self.path, "embedding")
        self.dataset = self.source
        try:
            check_field(self.source, self.path)
            self.own = is_own_field(tuple(self.source.descriptions))
            self._scales = np.array([1.0 if s is None else s for s in self.source.scales], np.float32)
            self._offsets = np.array([0.0 if o is None else o for o in self.source.offsets], np.float32)
            self._apply_scale = bool(np.any(self._scales != 1.0) or np.any(self._offsets != 0.0))
            nodata = self.source.nodata
            self._nodata = None if nodata is None or np.isnan(nodata) else float(nodata)
            flags = self.source.mask_flag_enums[0] if self.source.count else ()
            self._mask = nodata is None and any(f.name == "per_dataset" for f in flags)
            if grid is not None:
                self.dataset = self._aligned(grid)
                self._nodata, self._mask = None, False
            self._unit: bool | None = None
            self.normalised = normalise == "l2" or (normalise == "auto" and (self.own or self.unit_length))
        except BaseException:
            self.close()
            raise

    def _aligned(self, grid: Grid) -> Any:
        from rasterio.enums import Resampling
        from rasterio.warp import transform_bounds

        from backend.io.align import grid_view

        left, bottom, right, top = transform_bounds(self.source.crs, grid.crs, *self.source.bounds,
                                                    densify_pts=21)
        g_left, g_bottom, g_right, g_top = grid.bounds
        if not (min(right, g_right) > max(left, g_left) and min(top, g_top) > max(bottom, g_bottom)) \
                or any(math.isnan(v) for v in (left, bottom, right, top)):
            raise UserError(f"{self.path} does not overlap the grid it is compared with (its bounds in "
                            f"{grid.crs}: {left:.6g} {bottom:.6g} {right:.6g} {top:.6g}; the other's: "
                            f"{g_left:.6g} {g_bottom:.6g} {g_right:.6g} {g_top:.6g})")
        return grid_view(self.source, grid.crs, grid.transform, grid.width, grid.height, Resampling.nearest,
                         precision=1e-6 * abs(grid.transform.a), dtype="float32", nodata=float("nan"),
                         src_nodata=self.source.nodata, init_dest_nodata=True)

    @property
    def unit_length(self) -> bool:
        """Whether sampled vectors have length 1 (within :data:`UNIT_TOLERANCE`): a central window of
        at most 64 x 64 cells, else (all nodata there) a 64 x 64 decimated read of the whole field."""
        if self._unit is None:
            from rasterio.enums import Resampling

            h, w = min(self.height, 64), min(self.width, 64)
            window = Window((self.width - w) // 2, (self.height - h) // 2, w, h)
            raw = self.dataset.read(window=window, out_dtype="float32")
            if self._mask:
                raw[:, self.dataset.read_masks(1, window=window) == 0] = np.nan
            array, valid = self._clean(raw, None)
            if not valid.any():
                raw = self.dataset.read(out_shape=(self.dim, h, w), out_dtype="float32",
                                        resampling=Resampling.nearest)
                array, valid = self._clean(raw, None)
            norms = np.linalg.norm(array[:, valid], axis=0)
            self._unit = bool(valid.any() and np.median(np.abs(norms - 1.0)) < UNIT_TOLERANCE)
        return self._unit

    @property
    def crs(self) -> Any:
        return self.dataset.crs

    @property
    def transform(self) -> Any:
        return self.dataset.transform

    @property
    def width(self) -> int:
        return int(self.dataset.width)

    @property
    def height(self) -> int:
        return int(self.dataset.height)

    @property
    def grid(self) -> Grid:
        return Grid(self.crs, self.transform, self.width, self.height)

    @property
    def dim(self) -> int:
        return int(self.dataset.count)

    @property
    def descriptions(self) -> tuple[str, ...]:
        return tuple(self.source.descriptions)

    @property
    def bounds(self) -> Any:
        return self.dataset.bounds

    @property
    def profile(self) -> dict[str, Any]:
        return dict(self.dataset.profile)

    def describe(self) -> str:
        """One line for the log: what the field is and how it is read."""
        kind = "made by `embed`" if self.own else "foreign field"
        return (f"embeddings {self.path.name}: {kind}, {self.dim} dimensions of {self.source.dtypes[0]}, "
                f"{self.width}x{self.height} cells in {self.crs}"
                f"{', unit length' if self.unit_length else ''}"
                f"{', L2-normalised' if self.normalised else ''}")

    def _clean(self, array: np.ndarray, window: Window | None) -> tuple[np.ndarray, np.ndarray]:
        if self._nodata is not None:
            array[array == self._nodata] = np.nan
        if self._mask and window is not None:
            array[:, self.dataset.read_masks(1, window=window) == 0] = np.nan
        if self._apply_scale:
            array *= self._scales[:, None, None]
            array += self._offsets[:, None, None]
        valid = np.isfinite(array).all(axis=0)
        return array, valid

    def read(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``[dim, h, w]`` float32 and the valid mask ``[h, w]`` of a window."""
        array = self.dataset.read(window=window, out_dtype="float32")
        if self._mask and window is None:
            array[:, self.dataset.read_masks(1) == 0] = np.nan
        array, valid = self._clean(array, window)
        if self.normalised and valid.any():
            array[:, valid] = l2_normalise(array[:, valid], axis=0)
        return array, valid

    def read_vectors(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Valid patch vectors ``[n, dim]`` with their row and column indexes (window-relative)."""
        array, valid = EmbeddingRaster.read(self, window)
        rows, cols = np.nonzero(valid)
        return np.ascontiguousarray(array[:, rows, cols].T), rows, cols

    def windows(self, max_patches: int | None = None) -> list[Window]:
        """Full-width strips of at most ``max_patches`` patches (default: :data:`BLOCK_BYTES`)."""
        if max_patches is None:
            max_patches = BLOCK_BYTES // (4 * max(self.dim, 1))
        block_rows = self.dataset.block_shapes[0][0]
        rows = max(1, max_patches // max(self.width, 1))
        if rows > block_rows:
            rows -= rows % block_rows
        return [Window(0, row, self.width, min(rows, self.height - row))
                for row in range(0, self.height, rows)]

    def iter_blocks(self, max_patches: int | None = None) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
        """Full-width strips ``(window, array, valid)`` of at most ``max_patches`` patches."""
        for window in self.windows(max_patches):
            array, valid = EmbeddingRaster.read(self, window)
            yield window, array, valid

    def close(self) -> None:
        if self.dataset is not self.source:
            self.dataset.close()
        self.source.close()

    def __enter__(self) -> EmbeddingRaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def l2_normalise(vectors: np.ndarray, axis: int = -1) -> np.ndarray:
    """``vectors`` scaled to unit length along ``axis`` (zero vectors stay zero)."""
    norms = np.linalg.norm(vectors, axis=axis, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def is_embedding_raster(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` opens as an embedding raster made by ``embed`` (bands named ``emb_...``)."""
    try:
        with rasterio.open(path) as src:
            return is_own_field(tuple(src.descriptions))
    except rasterio.errors.RasterioIOError:
        return False
