"""Full-resolution segmentation from frozen patch embeddings plus the input pixels.

The head is deliberately light::

    logits(pixel) = upsample_x8(MLP(embedding of each patch)) + Linear(standardised bands of the pixel)

The MLP sees the encoder's context (what the patch *is*); bilinear upsampling spreads it over the
8x8 pixels; the per-pixel linear term on the input bands lets class edges follow the pixels inside a
patch. Embeddings are L2-normalised (scaled by sqrt(dim)); bands are standardised with statistics of
the training pixels, stored in the head. Training uses AdamW on the labelled pixels only, from
patch-aligned training tiles (at most ``max_tiles``, so memory stays bounded), and is seeded.

A trained head is saved as ``name.safetensors`` + ``name.json`` (classes, embedding dim, bands,
band statistics) and can segment any other raster with the same bands and encoder.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster, Grid

PATCH = 8
HEAD_FORMAT = "terraprobe-segmentation-head"
TILE_PATCHES = 32
CROP_PATCHES = 12


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
    """A :class:`PixelSource` over an ``InputSet`` of ``backend.jobs._inputs.open_inputs``.

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


class SegmentationHead(nn.Module):
    """Patch MLP upsampled x8 plus a per-pixel linear term on standardised bands."""

    def __init__(self, embedding_dim: int, band_count: int, class_count: int, hidden: int = 64) -> None:
        super().__init__()
        self.embedding_dim, self.band_count, self.class_count, self.hidden = (
            embedding_dim, band_count, class_count, hidden)
        self.patch_mlp = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.GELU(),
                                       nn.Linear(hidden, class_count))
        self.pixel_linear = nn.Conv2d(band_count, class_count, kernel_size=1)
        self.register_buffer("band_mean", torch.zeros(band_count))
        self.register_buffer("band_std", torch.ones(band_count))

    def forward(self, embeddings: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K, 8h, 8w]`` from embeddings ``[B, dim, h, w]`` and pixels ``[B, C, 8h, 8w]``.

        NaN embeddings or pixels (nodata) are treated as zeros; mask them in the output.
        """
        vectors = torch.nan_to_num(embeddings, nan=0.0).permute(0, 2, 3, 1)
        scale = math.sqrt(self.embedding_dim)
        vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12) * scale
        patch_logits = self.patch_mlp(vectors).permute(0, 3, 1, 2)
        upsampled = F.interpolate(patch_logits, scale_factor=PATCH, mode="bilinear", align_corners=False)
        bands = (pixels - self.band_mean[:, None, None]) / self.band_std[:, None, None]
        return upsampled + self.pixel_linear(torch.nan_to_num(bands, nan=0.0))


@dataclass
class HeadInfo:
    """What a saved head needs besides its weights."""

    classes: list[str]
    embedding_dim: int
    bands: list[str]
    hidden: int = 64

    def to_json(self) -> dict[str, Any]:
        return {"format": HEAD_FORMAT, "version": 1, "classes": self.classes,
                "embedding_dim": self.embedding_dim, "bands": self.bands, "hidden": self.hidden}


def head_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``x.safetensors`` and ``x.json`` for a head path given with or without the suffix."""
    base = Path(path)
    if base.suffix == ".safetensors":
        base = base.with_suffix("")
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_head(head: SegmentationHead, info: HeadInfo, path: str | os.PathLike[str]) -> Path:
    """Write the head's weights and JSON atomically; returns the ``.safetensors`` path."""
    from safetensors.torch import save_file

    from backend.io.atomic import atomic_paths

    weights, meta = head_paths(path)
    tensors = {name: value.detach().cpu().contiguous() for name, value in head.state_dict().items()}
    with atomic_paths(weights, meta) as (weights_tmp, meta_tmp):
        save_file(tensors, str(weights_tmp))
        meta_tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    return weights


def load_head(path: str | os.PathLike[str]) -> tuple[SegmentationHead, HeadInfo]:
    """Load a head saved by :func:`save_head` (clear errors for missing or foreign files)."""
    from safetensors.torch import load_file

    weights, meta = head_paths(path)
    for file in (weights, meta):
        if not file.exists():
            raise UserError(f"segmentation head file not found: {file}")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        if data.get("format") != HEAD_FORMAT:
            raise ValueError("not a segmentation head")
        info = HeadInfo(list(data["classes"]), int(data["embedding_dim"]), list(data["bands"]),
                        int(data.get("hidden", 64)))
        head = SegmentationHead(info.embedding_dim, len(info.bands), len(info.classes), info.hidden)
        head.load_state_dict(load_file(str(weights)))
    except Exception as exc:
        raise UserError(f"{weights} is not a segmentation head saved by `segment`: {exc}") from None
    return head.eval(), info


# -- labels --------------------------------------------------------------------------------------

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
    Every other distinct value is a class, named by its value and numbered in value order.
    """

    def __init__(self, path: str | os.PathLike[str], grid: Grid, block_rows: int = 1024) -> None:
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        from backend.io.align import grid_view
        from backend.io.rasters import open_raster

        self.grid = grid
        self._source = open_raster(path, "label")
        src = self._source
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
            values.update(np.unique(raw[labelled]).tolist())
            hit_rows, hit_cols = np.nonzero(labelled)
            if len(hit_rows):
                rows += [row + hit_rows.min(), row + hit_rows.max()]
                cols += [hit_cols.min(), hit_cols.max()]
        if not values:
            raise UserError(f"the label raster {Path(path).name} has no labelled pixels over the area")
        self._values = sorted(values)
        self.classes = [_value_name(v) for v in self._values]
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


def _value_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# -- training ------------------------------------------------------------------------------------

@dataclass
class TrainingTile:
    embeddings: torch.Tensor  # [dim, h, w]
    pixels: torch.Tensor  # [C, 8h, 8w]
    labels: torch.Tensor  # [8h, 8w] long, -1 = ignore


@dataclass
class SegmentationStats:
    """Training summary and the class legend of a segmentation run."""

    classes: dict[int, str]
    training_pixels: dict[str, int]
    train_accuracy: float | None
    final_loss: float | None
    steps: int
    tiles: int
    head_trained: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _read_embedding_block(reader: Any, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
    """Embeddings ``[dim, rows, cols]`` of a patch window; NaN where nodata or outside."""
    from rasterio.windows import Window

    out = np.full((reader.dim, row1 - row0, col1 - col0), np.nan, np.float32)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row1, reader.grid.height), min(col1, reader.grid.width)
    if r1 > r0 and c1 > c0:
        block, _ = reader.read(Window(c0, r0, c1 - c0, r1 - r0))
        out[:, r0 - row0:r1 - row0, c0 - col0:c1 - col0] = block
    return out


def _read_pixel_block(pixels: PixelSource, row0: int, row1: int, col0: int,
                      col1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``[C, rows, cols]`` (NaN outside / invalid) and valid mask of a pixel window."""
    from rasterio.windows import Window

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
    """The embedding grid must be the pixel grid scaled by 8 (as ``embed`` writes it)."""
    from affine import Affine

    expected = pixels.grid.transform * Affine.scale(PATCH)
    size_ok = (reader.grid.width == math.ceil(pixels.grid.width / PATCH)
               and reader.grid.height == math.ceil(pixels.grid.height / PATCH))
    if not size_ok or not reader.grid.transform.almost_equals(expected, precision=1e-6 * abs(expected.a)):
        raise UserError("the embeddings do not match the input raster's pixel grid (they must be made by "
                        "`embed` from the same raster and area)")


def collect_tiles(reader: Any, pixels: PixelSource, labels: LabelSource, max_tiles: int,
                  generator: np.random.Generator) -> list[TrainingTile]:
    """Patch-aligned training tiles over the labelled area (a seeded random subset of ``max_tiles``)."""
    window = labels.labelled_window()
    if window is None:
        raise UserError("no labelled pixels overlap the raster")
    prow0, pcol0 = int(window.row_off) // PATCH, int(window.col_off) // PATCH
    prow1 = math.ceil((window.row_off + window.height) / PATCH)
    pcol1 = math.ceil((window.col_off + window.width) / PATCH)
    starts = [(r, c) for r in range(prow0, prow1, TILE_PATCHES) for c in range(pcol0, pcol1, TILE_PATCHES)]
    generator.shuffle(starts)
    tiles: list[TrainingTile] = []
    from rasterio.windows import Window

    for r, c in starts:
        if len(tiles) >= max_tiles:
            break
        r1, c1 = min(r + TILE_PATCHES, prow1), min(c + TILE_PATCHES, pcol1)
        px_r1 = min(r1 * PATCH, pixels.grid.height)
        px_c1 = min(c1 * PATCH, pixels.grid.width)
        tile_labels = np.zeros(((r1 - r) * PATCH, (c1 - c) * PATCH), np.int64)
        tile_labels[:px_r1 - r * PATCH, :px_c1 - c * PATCH] = labels.read(
            Window(c * PATCH, r * PATCH, px_c1 - c * PATCH, px_r1 - r * PATCH))
        embeddings = _read_embedding_block(reader, r, r1, c, c1)
        values, valid = _read_pixel_block(pixels, r * PATCH, r1 * PATCH, c * PATCH, c1 * PATCH)
        patch_ok = np.isfinite(embeddings).all(axis=0).repeat(PATCH, 0).repeat(PATCH, 1)
        target = tile_labels - 1
        target[~(valid & patch_ok)] = -1
        if (target >= 0).any():
            tiles.append(TrainingTile(torch.from_numpy(embeddings), torch.from_numpy(values),
                                      torch.from_numpy(target)))
    if not tiles:
        raise UserError("the labelled pixels fall only on nodata; nothing to train on")
    return tiles


def _random_crop(tile: TrainingTile, rng: np.random.Generator,
                 side: int = CROP_PATCHES) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random ``side`` x ``side`` patch crop of a tile (the whole tile when smaller)."""
    height, width = tile.embeddings.shape[1:]
    row = int(rng.integers(0, max(height - side, 0) + 1))
    col = int(rng.integers(0, max(width - side, 0) + 1))
    rows, cols = slice(row, row + side), slice(col, col + side)
    pixel_rows = slice(row * PATCH, (row + side) * PATCH)
    pixel_cols = slice(col * PATCH, (col + side) * PATCH)
    return (tile.embeddings[:, rows, cols], tile.pixels[:, pixel_rows, pixel_cols],
            tile.labels[pixel_rows, pixel_cols])


def train_head(tiles: list[TrainingTile], class_count: int, band_names: list[str], embedding_dim: int,
               steps: int = 300, learning_rate: float = 3e-3, seed: int = 0, hidden: int = 64,
               device: torch.device | None = None, reporter: Any = None, start: float = 0.0,
               end: float = 1.0) -> tuple[SegmentationHead, float, float]:
    """Train a head with AdamW on the labelled pixels of ``tiles``; returns (head, loss, accuracy).

    On CPU the tiny per-step operations run on one thread: thread hand-offs cost more than they save.
    """
    device = device or torch.device("cpu")
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return _train(tiles, class_count, band_names, embedding_dim, steps, learning_rate, seed, hidden,
                      device, reporter, start, end)
    finally:
        torch.set_num_threads(threads)


def _train(tiles: list[TrainingTile], class_count: int, band_names: list[str], embedding_dim: int, steps: int,
           learning_rate: float, seed: int, hidden: int, device: torch.device, reporter: Any, start: float,
           end: float) -> tuple[SegmentationHead, float, float]:
    torch.manual_seed(seed)
    head = SegmentationHead(embedding_dim, len(band_names), class_count, hidden).to(device)
    # Band statistics and class weights from the training pixels.
    labelled_pixels = torch.cat([t.pixels[:, t.labels >= 0].T for t in tiles])
    head.band_mean.copy_(torch.nanmean(labelled_pixels, dim=0))
    centred = torch.nan_to_num(labelled_pixels - head.band_mean.cpu(), nan=0.0)
    head.band_std.copy_(centred.pow(2).mean(dim=0).sqrt().clamp_min(1e-6))
    counts = torch.bincount(torch.cat([t.labels[t.labels >= 0] for t in tiles]), minlength=class_count)
    weights = (counts.sum() / (class_count * counts.clamp_min(1))).sqrt().float().to(device)
    optimiser = torch.optim.AdamW(head.parameters(), lr=learning_rate, weight_decay=1e-2)
    order = np.random.default_rng(seed)
    moved = [TrainingTile(t.embeddings.to(device), t.pixels.to(device), t.labels.to(device)) for t in tiles]
    loss_value = math.nan
    head.train()
    step_range = range(steps)
    if reporter is not None:
        step_range = reporter.track(step_range, total=steps, description="training head", start=start,
                                    end=end)
    for _ in step_range:
        batch = [moved[i] for i in order.choice(len(moved), size=min(4, len(moved)), replace=False)]
        loss = torch.zeros((), device=device)
        for tile in batch:
            embeddings, pixels, labels = _random_crop(tile, order)
            logits = head(embeddings[None], pixels[None])
            loss = loss + F.cross_entropy(logits, labels[None], weight=weights, ignore_index=-1)
        loss = loss / len(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        loss_value = float(loss.detach())
    head.eval()
    correct = total = 0
    with torch.no_grad():
        for tile in moved:
            predicted = head(tile.embeddings[None], tile.pixels[None])[0].argmax(dim=0)
            mask = tile.labels >= 0
            correct += int((predicted[mask] == tile.labels[mask]).sum())
            total += int(mask.sum())
    return head, loss_value, correct / max(total, 1)


# -- prediction ----------------------------------------------------------------------------------

def predict_segmentation(head: SegmentationHead, reader: Any, pixels: PixelSource,
                         out: str | os.PathLike[str], classes: list[str], device: torch.device | None = None,
                         strip_patches: int = 16,
                         reporter: Any = None, start: float = 0.0, end: float = 1.0) -> dict[int, int]:
    """Write the full-resolution class map (``out`` + paletted ``.qml``) strip by strip.

    Each strip of patch rows is computed with one patch row of context above and below, so the
    bilinear upsampling is identical to upsampling the whole raster at once (no seams).
    Returns the pixel count of each class value.
    """
    from rasterio.windows import Window

    from backend.downstream.raster import class_dtype, create_raster, tracker
    from backend.downstream.styles import paletted_qml, style_path
    from backend.io.atomic import atomic_paths

    device = device or torch.device("cpu")
    head = head.to(device).eval()
    dtype = class_dtype(len(classes))
    grid = pixels.grid
    counts = np.zeros(len(classes) + 1, np.int64)
    strips = list(range(0, reader.grid.height, strip_patches))
    with atomic_paths(out, style_path(out)) as (raster_tmp, style_tmp):
        with create_raster(raster_tmp, grid, dtype, 0, description="class") as dst:
            for prow in tracker(reporter)(strips, "segmenting", start, end):
                prow1 = min(prow + strip_patches, reader.grid.height)
                top, bottom = max(prow - 1, 0), min(prow1 + 1, reader.grid.height)
                embeddings = _read_embedding_block(reader, top, bottom, 0, reader.grid.width)
                values, valid = _read_pixel_block(pixels, top * PATCH, bottom * PATCH, 0,
                                                  reader.grid.width * PATCH)
                with torch.no_grad():
                    logits = head(torch.from_numpy(embeddings)[None].to(device),
                                  torch.from_numpy(values)[None].to(device))[0]
                predicted = logits.argmax(dim=0).cpu().numpy() + 1
                patch_ok = np.isfinite(embeddings).all(axis=0).repeat(PATCH, 0).repeat(PATCH, 1)
                predicted[~(valid & patch_ok)] = 0
                row0 = (prow - top) * PATCH
                rows = min(prow1 * PATCH, grid.height) - prow * PATCH
                strip = predicted[row0:row0 + rows, :grid.width].astype(dtype)
                counts += np.bincount(strip.ravel(), minlength=len(classes) + 1)
                dst.write(strip[np.newaxis], window=Window(0, prow * PATCH, grid.width, rows))
        style_tmp.write_text(paletted_qml({i + 1: name for i, name in enumerate(classes)}), encoding="utf-8")
    return {i: int(counts[i]) for i in range(1, len(classes) + 1)}


def segment(embeddings: str | os.PathLike[str], pixels: PixelSource, out: str | os.PathLike[str],
            labels: LabelSource | None = None, head_path: str | os.PathLike[str] | None = None,
            head_out: str | os.PathLike[str] | None = None, steps: int = 300, seed: int = 0,
            max_tiles: int = 32, device: str = "auto", reporter: Any = None) -> SegmentationStats:
    """Train a head from ``labels`` (or load ``head_path``) and segment the whole pixel grid.

    Args:
        embeddings: embedding GeoTIFF of the same area as ``pixels`` (patch grid = pixel grid x 8).
        pixels: the input pixels on the area's pixel grid.
        out: class raster to write (uint8, nodata 0, classes 1..K) with a paletted ``.qml``.
        labels: training labels (polygons or a label raster); omit when ``head_path`` is given.
        head_path: an existing head to apply instead of training one.
        head_out: where to save the trained head (``.safetensors`` + ``.json``).
    """
    from backend.downstream.raster import pick_device

    if (labels is None) == (head_path is None):
        raise UserError("give training labels (--samples or --label-raster) or an existing --head, not both")
    torch_device = pick_device(device)
    warnings: list[str] = []
    with EmbeddingRaster(embeddings) as reader:
        check_grids(reader, pixels)
        if head_path is not None:
            head, info = load_head(head_path)
            if info.embedding_dim != reader.dim:
                raise UserError(f"the head expects {info.embedding_dim}-d embeddings but the raster has "
                                f"{reader.dim}; use the encoder the head was trained with")
            if len(info.bands) != len(pixels.band_names):
                raise UserError(f"the head expects {len(info.bands)} bands ({', '.join(info.bands)}) but the "
                                f"input has {len(pixels.band_names)}")
            if info.bands != pixels.band_names:
                warnings.append(f"band names differ from the head's ({', '.join(info.bands)}); "
                                "using them in order")
            classes, training_pixels, tiles_used, trained = info.classes, {}, 0, False
            loss = accuracy = None
            steps = 0
        else:
            if len(labels.classes) < 2:
                raise UserError(f"the labels have only one class ('{labels.classes[0]}'); segmentation needs "
                                "at least two")
            tiles = collect_tiles(reader, pixels, labels, max_tiles, np.random.default_rng(seed))
            counts = torch.bincount(torch.cat([t.labels[t.labels >= 0] for t in tiles]),
                                    minlength=len(labels.classes))
            training_pixels = {name: int(counts[i]) for i, name in enumerate(labels.classes)}
            for name, count in training_pixels.items():
                if not count:
                    warnings.append(f"class '{name}' has no valid training pixel")
            head, loss, accuracy = train_head(tiles, len(labels.classes), pixels.band_names, reader.dim,
                                              steps=steps, seed=seed, device=torch_device, reporter=reporter,
                                              start=0.0, end=0.7)
            classes, tiles_used, trained = list(labels.classes), len(tiles), True
        predict_segmentation(head, reader, pixels, out, classes, torch_device, reporter=reporter,
                             start=0.7 if trained else 0.0, end=1.0)
        if trained and head_out is not None:
            try:
                save_head(head, HeadInfo(classes, reader.dim, list(pixels.band_names)), head_out)
            except BaseException:  # all or nothing: no class map without the head the run promised
                from backend.downstream.styles import style_path

                for written in (Path(out), style_path(out)):
                    written.unlink(missing_ok=True)
                raise
    return SegmentationStats(classes={i + 1: c for i, c in enumerate(classes)},
                             training_pixels=training_pixels, train_accuracy=accuracy, final_loss=loss,
                             steps=steps, tiles=tiles_used,
                             head_trained=trained, warnings=warnings)
