"""Segmentation maps from frozen embeddings: train a light head (or load one) and apply it.

Two forms (see :mod:`backend.downstream.segmentation_head`):

* with an input raster (``pixels``): patch MLP upsampled x8 + a per-pixel linear term on the bands,
  trained and applied on the input's pixel grid. The embeddings are read on its 8x8 patch grid:
  as they are for ``embed``'s rasters, aligned on the fly (nearest cell) for any other field, e.g. a
  TESSERA export in another CRS (:func:`backend.downstream.segmentation_data.open_embeddings`).
* without (``pixels=None``): the MLP alone, trained and applied on the field's own grid (the map has
  the field's resolution).

Training uses AdamW on the labelled pixels only, from training tiles of at most 32 x 32 embedding
cells (at most ``max_tiles``, so memory stays bounded), and is seeded.

Held-out check (:func:`held_out_check`): the labelled pixels are cut into blocks of 16 embedding
cells (128 px, larger than the encoder's window), dealt to at most 3 folds; each fold trains the
same head on the other blocks and scores it on its own (pixel accuracy, macro-F1). With a
band-statistics raster (``baseline``) the same head on the band statistics is scored on the same
blocks: the raw-band baseline. With ``features="auto"`` the head on the embeddings makes the map
only where it beats that baseline (more accurate, macro-F1 at least the baseline's); else the
band-statistics head makes the map and is saved (its ``embedding`` kind says
``band_statistics``, so applying it computes them again).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from backend.downstream.segmentation_data import (  # noqa: F401  (re-exported for callers)
    InputSetPixels,
    LabelSource,
    PixelSource,
    PolygonLabels,
    RasterLabels,
    RasterPixels,
    check_grids,
    open_embeddings,
    read_embedding_block,
    read_pixel_block,
)
from backend.downstream.segmentation_head import (
    PATCH,
    HeadInfo,
    SegmentationHead,
    check_head_form,
    head_paths,
    load_head,
    save_head,
)
from backend.errors import UserError

#: What a head reads: the embeddings (the model recipe) or per-patch band statistics (the raw-band baseline).
MODEL_RECIPE = "head on embeddings"
BASELINE_RECIPE = "head on band statistics (raw-band baseline)"
#: The embedding kind a band-statistics head records (applying it computes the statistics again).
BAND_STATISTICS_KIND = {"band_statistics": True}
TILE_PATCHES = 32
CROP_PATCHES = 12
_read_embedding_block = read_embedding_block
_read_pixel_block = read_pixel_block


#: Held-out check: at most this many folds of label blocks.
HELD_OUT_FOLDS = 3
#: Held-out check: block side in embedding cells (larger than the encoder's 120 px window).
HELD_OUT_BLOCK = 16


@dataclass
class TrainingTile:
    embeddings: torch.Tensor  # [dim, h, w]
    pixels: torch.Tensor  # [C, s*h, s*w] (C = 0 in the field form)
    labels: torch.Tensor  # [s*h, s*w] long, -1 = ignore
    row: int = 0  # the tile's first embedding cell on the grid
    col: int = 0


@dataclass
class HeldOut:
    """Pixel accuracy and macro-F1 of a head on label blocks it did not train on (``None``: no check)."""

    accuracy: float | None
    macro_f1: float | None
    folds: int = 0
    pixels: int = 0
    why: str = ""


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
    form: str = "pixels"
    held_out_accuracy: float | None = None
    held_out_macro_f1: float | None = None
    held_out_folds: int = 0
    held_out_pixels: int = 0
    held_out_note: str = ""
    baseline_held_out_accuracy: float | None = None
    baseline_held_out_macro_f1: float | None = None
    recipe: str = ""
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "notes"}


# -- training ------------------------------------------------------------------------------------

def collect_tiles(reader: Any, pixels: PixelSource | None, labels: LabelSource, max_tiles: int,
                  generator: np.random.Generator) -> list[TrainingTile]:
    """Embedding-cell-aligned training tiles over the labelled area (a seeded random subset).

    ``pixels=None``: the field form, with ``labels`` on the field's own grid.
    """
    from rasterio.windows import Window

    window = labels.labelled_window()
    if window is None:
        raise UserError("no labelled pixels overlap the raster")
    s = PATCH if pixels is not None else 1
    height, width = (pixels.grid.height, pixels.grid.width) if pixels is not None else reader.grid.shape
    prow0, pcol0 = int(window.row_off) // s, int(window.col_off) // s
    prow1 = math.ceil((window.row_off + window.height) / s)
    pcol1 = math.ceil((window.col_off + window.width) / s)
    starts = [(r, c) for r in range(prow0, prow1, TILE_PATCHES) for c in range(pcol0, pcol1, TILE_PATCHES)]
    generator.shuffle(starts)
    tiles: list[TrainingTile] = []
    for r, c in starts:
        if len(tiles) >= max_tiles:
            break
        r1, c1 = min(r + TILE_PATCHES, prow1), min(c + TILE_PATCHES, pcol1)
        px_r1, px_c1 = min(r1 * s, height), min(c1 * s, width)
        tile_labels = np.zeros(((r1 - r) * s, (c1 - c) * s), np.int64)
        tile_labels[:px_r1 - r * s, :px_c1 - c * s] = labels.read(
            Window(c * s, r * s, px_c1 - c * s, px_r1 - r * s))
        embeddings = read_embedding_block(reader, r, r1, c, c1)
        values, valid = read_pixel_block(pixels, r * s, r1 * s, c * s, c1 * s)
        patch_ok = np.isfinite(embeddings).all(axis=0).repeat(s, 0).repeat(s, 1)
        target = tile_labels - 1
        target[~(valid & patch_ok)] = -1
        if (target >= 0).any():
            tiles.append(TrainingTile(torch.from_numpy(embeddings), torch.from_numpy(values),
                                      torch.from_numpy(target), r, c))
    if not tiles:
        raise UserError("the labelled pixels fall only on nodata; nothing to train on")
    return tiles


def _random_crop(tile: TrainingTile, rng: np.random.Generator,
                 side: int = CROP_PATCHES) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random ``side`` x ``side`` cell crop of a tile (the whole tile when smaller)."""
    height, width = tile.embeddings.shape[1:]
    s = tile.labels.shape[0] // height
    row = int(rng.integers(0, max(height - side, 0) + 1))
    col = int(rng.integers(0, max(width - side, 0) + 1))
    rows, cols = slice(row, row + side), slice(col, col + side)
    pixel_rows, pixel_cols = slice(row * s, (row + side) * s), slice(col * s, (col + side) * s)
    return (tile.embeddings[:, rows, cols], tile.pixels[:, pixel_rows, pixel_cols],
            tile.labels[pixel_rows, pixel_cols])


def train_head(tiles: list[TrainingTile], class_count: int, band_names: list[str], embedding_dim: int,
               steps: int = 300, learning_rate: float = 3e-3, seed: int = 0, hidden: int = 64,
               device: torch.device | None = None, reporter: Any = None, start: float = 0.0,
               end: float = 1.0) -> tuple[SegmentationHead, float, float]:
    """Train a head with AdamW on the labelled pixels of ``tiles``; returns (head, loss, accuracy).

    No ``band_names``: the field form. On CPU the tiny per-step operations run on one thread:
    thread hand-offs cost more than they save.
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
    if band_names:  # band statistics from the training pixels
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


def _label_blocks(tile: TrainingTile, block: int) -> np.ndarray:
    """Block id of each label pixel of ``tile`` (blocks of ``block`` embedding cells on the grid)."""
    height, width = tile.labels.shape
    s = height // tile.embeddings.shape[1]
    rows = (tile.row * s + np.arange(height)) // (block * s)
    cols = (tile.col * s + np.arange(width)) // (block * s)
    return rows[:, None].astype(np.int64) * 1_000_003 + cols[None, :]


def held_out_check(tiles: list[TrainingTile], class_count: int, band_names: list[str], embedding_dim: int,
                   steps: int, seed: int = 0, device: torch.device | None = None,
                   block: int = HELD_OUT_BLOCK, max_folds: int = HELD_OUT_FOLDS) -> HeldOut:
    """Train the head without some label blocks and score it on them; pooled over the folds.

    The labelled blocks (``block`` embedding cells square, larger than the encoder's window) are
    shuffled (seeded) and dealt to at most ``max_folds`` folds; each fold trains a head with the
    same steps on the other blocks' labels and predicts its own.
    """
    from backend.downstream.validation import class_f1

    device = device or torch.device("cpu")
    blocks = [_label_blocks(tile, block) for tile in tiles]
    labelled = np.unique(np.concatenate([ids[tile.labels.numpy() >= 0] for tile, ids in zip(tiles, blocks)]))
    if len(labelled) < 2:
        return HeldOut(None, None, why=f"the labels lie in one {block}-cell block; label more places for a "
                                       "held-out figure")
    order = np.random.default_rng(seed).permutation(labelled)
    folds = min(max_folds, len(order))
    truth: list[np.ndarray] = []
    predicted: list[np.ndarray] = []
    for fold in range(folds):
        held = order[fold::folds]
        masks = [np.isin(ids, held) & (tile.labels.numpy() >= 0) for tile, ids in zip(tiles, blocks)]
        training = [TrainingTile(t.embeddings, t.pixels, t.labels.masked_fill(torch.from_numpy(m), -1))
                    for t, m in zip(tiles, masks)]
        training = [t for t in training if (t.labels >= 0).any()]
        if not training:
            continue
        head, _, _ = train_head(training, class_count, band_names, embedding_dim, steps=steps, seed=seed,
                                device=device)
        with torch.no_grad():
            for tile, mask in zip(tiles, masks):
                if mask.any():
                    scores = head(tile.embeddings[None].to(device), tile.pixels[None].to(device))
                    predicted.append(scores[0].argmax(dim=0).cpu().numpy()[mask])
                    truth.append(tile.labels.numpy()[mask])
    if not truth:
        return HeldOut(None, None, why="no fold kept training labels")
    truth_all, predicted_all = np.concatenate(truth), np.concatenate(predicted)
    f1 = [value for value in class_f1(truth_all, predicted_all, class_count) if value is not None]
    return HeldOut(float((truth_all == predicted_all).mean()), float(np.mean(f1)), folds, len(truth_all))


# -- prediction ----------------------------------------------------------------------------------

def predict_segmentation(head: SegmentationHead, reader: Any, pixels: PixelSource | None,
                         out: str | os.PathLike[str], classes: list[str], device: torch.device | None = None,
                         strip_patches: int = 16,
                         reporter: Any = None, start: float = 0.0, end: float = 1.0) -> dict[int, int]:
    """Write the class map (``out`` + paletted ``.qml``) strip by strip; returns each class's pixel count.

    On the pixel grid of ``pixels``, or on the field's own grid when ``pixels`` is None. Each strip
    is computed with one row of embedding cells of context above and below, so the bilinear
    upsampling is identical to upsampling the whole raster at once (no seams).
    """
    from rasterio.windows import Window

    from backend.downstream.raster import RasterOutput, class_dtype, result_rasters, tracker

    device = device or torch.device("cpu")
    head = head.to(device).eval()
    dtype = class_dtype(len(classes))
    grid = pixels.grid if pixels is not None else reader.grid
    s = PATCH if pixels is not None else 1
    counts = np.zeros(len(classes) + 1, np.int64)
    strips = list(range(0, reader.grid.height, strip_patches))
    with result_rasters(grid, RasterOutput(out, dtype, 0, ("class",))) as (result,):
        with result.open() as dst:
            for prow in tracker(reporter)(strips, "segmenting", start, end):
                prow1 = min(prow + strip_patches, reader.grid.height)
                top, bottom = max(prow - 1, 0), min(prow1 + 1, reader.grid.height)
                embeddings = read_embedding_block(reader, top, bottom, 0, reader.grid.width)
                values, valid = read_pixel_block(pixels, top * s, bottom * s, 0, reader.grid.width * s)
                with torch.no_grad():
                    logits = head(torch.from_numpy(embeddings)[None].to(device),
                                  torch.from_numpy(values)[None].to(device))[0]
                predicted = logits.argmax(dim=0).cpu().numpy() + 1
                patch_ok = np.isfinite(embeddings).all(axis=0).repeat(s, 0).repeat(s, 1)
                predicted[~(valid & patch_ok)] = 0
                row0 = (prow - top) * s
                rows = min(prow1 * s, grid.height) - prow * s
                strip = predicted[row0:row0 + rows, :grid.width].astype(dtype)
                counts += np.bincount(strip.ravel(), minlength=len(classes) + 1)
                dst.write(strip[np.newaxis], window=Window(0, prow * s, grid.width, rows))
        result.style_classes({i + 1: name for i, name in enumerate(classes)})
    return {i: int(counts[i]) for i in range(1, len(classes) + 1)}


def _applied_head(head_path: str | os.PathLike[str], reader: Any,
                  pixels: PixelSource | None, warnings: list[str]) -> tuple[SegmentationHead, HeadInfo]:
    """Load ``head_path`` and check it fits the field and the pixels (clear errors)."""
    head, info = load_head(head_path)
    check_head_form(info, pixels is not None, head_path)
    if info.embedding_dim != reader.dim:
        raise UserError(f"the head expects {info.embedding_dim}-d embeddings but the raster has "
                        f"{reader.dim}; use the encoder the head was trained with")
    if not info.embedding.get("band_statistics"):  # a band-statistics head reads what the job computed
        check_embedding_kind(info.embedding, embedding_kind(reader), head_path, warnings)
    if pixels is not None:
        if len(info.bands) != len(pixels.band_names):
            raise UserError(f"the head expects {len(info.bands)} bands ({', '.join(info.bands)}) but the "
                            f"input has {len(pixels.band_names)}")
        if info.bands != pixels.band_names:
            warnings.append(f"band names differ from the head's ({', '.join(info.bands)}); "
                            "using them in order")
    return head, info


def embedding_kind(reader: Any) -> dict[str, Any]:
    """What kind of embeddings a field holds, as far as its file says.

    ``embed``'s rasters (``own``): the modalities they were made from (their ``TERRAPROBE_*_UNITS``
    tags), the optical sensor and the model (``TERRAPROBE_MODEL*`` tags) when recorded. Foreign
    fields: their band descriptions (None when the bands are unnamed: nothing to compare).
    """
    tags = {key.upper(): value for key, value in reader.source.tags().items()}
    if not reader.own:
        names = [d or "" for d in reader.source.descriptions]
        return {"own": False, "descriptions": names if any(names) else None}
    modalities = [name for name in ("sar", "optical") if f"TERRAPROBE_{name.upper()}_UNITS" in tags]
    return {"own": True, "modalities": modalities or None, "sensor": tags.get("TERRAPROBE_SENSOR"),
            "model": tags.get("TERRAPROBE_MODEL"), "model_hash": tags.get("TERRAPROBE_MODEL_HASH")}


def check_embedding_kind(trained: dict[str, Any], given: dict[str, Any], head_path: str | os.PathLike[str],
                         warnings: list[str]) -> None:
    """Refuse a field of another kind than the head was trained on; warn when that is unknowable."""
    name = head_paths(head_path)[0].name
    unknown = (f"cannot check that these embeddings are of the kind the head {name} was trained on "
               "(same encoder, same inputs)")
    if not trained:
        warnings.append(f"{unknown}: the head records no embedding kind (saved by an older version)")
        return

    phrases = {"own": lambda v: "embed's embeddings" if v else "a foreign embedding field",
               "modalities": lambda v: f"embeddings of {'+'.join(v)} inputs",
               "model": lambda v: f"embeddings of the model {v}",
               "model_hash": lambda v: f"embeddings of the model with hash {str(v)[:12]}",
               "descriptions": lambda v: f"a field whose bands are named {_first(v)}"}
    keys = ("modalities", "model", "model_hash") if given.get("own") else ("descriptions",)
    for key in ("own", *keys):
        was, now = trained.get(key), given.get(key)
        if was is not None and now is not None and was != now:
            raise UserError(f"the head {name} was trained on {phrases[key](was)} but these are "
                            f"{phrases[key](now)}; apply a head trained on embeddings of this kind")
    checked = [key for key in keys if trained.get(key) is not None and given.get(key) is not None]
    if not checked:
        warnings.append(f"{unknown}: neither records its encoder or inputs")
    elif given.get("own") and trained.get("sensor") != given.get("sensor"):
        warnings.append(f"the head {name} was trained on embeddings of {trained.get('sensor')} rasters, "
                        f"these are of {given.get('sensor')}")


def _first(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def segment(embeddings: str | os.PathLike[str], pixels: PixelSource | None, out: str | os.PathLike[str],
            labels: LabelSource | None = None, head_path: str | os.PathLike[str] | None = None,
            head_out: str | os.PathLike[str] | None = None, steps: int = 300, seed: int = 0,
            max_tiles: int = 32, device: str = "auto", reporter: Any = None,
            baseline: str | os.PathLike[str] | None = None, held_out: bool = True,
            features: str = "auto") -> SegmentationStats:
    """Train a head from ``labels`` (or load ``head_path``) and segment the whole grid.

    Args:
        embeddings: any embedding field over the area (``embed``'s raster, AlphaEarth, TESSERA...).
        pixels: the input pixels on the area's pixel grid; None for the field form (the map on the
            field's own grid, no per-pixel term).
        out: class raster to write (uint8, nodata 0, classes 1..K) with a paletted ``.qml``.
        labels: training labels (polygons or a label raster) on the pixel grid (the field's grid
            when ``pixels`` is None); omit when ``head_path`` is given.
        head_path: an existing head to apply instead of training one (of the same form).
        head_out: where to save the trained head (``.safetensors`` + ``.json``).
        baseline: a band-statistics raster on the pixels' patch grid: the same head on it is the
            raw-band baseline, scored by the same held-out check (its figures beside the model's).
        held_out: score the head on label blocks it did not train on (:func:`held_out_check`).
        features: ``auto``: the head on the embeddings only where it beats the band-statistics head
            under the held-out check, else that head makes the map (and is saved); ``embeddings``:
            always the head on the embeddings (both figures still reported).
    """
    from backend.downstream.raster import pick_device

    if (labels is None) == (head_path is None):
        raise UserError("give training labels (--samples or --label-raster) or an existing --head, not both")
    torch_device = pick_device(device)
    warnings: list[str] = []
    reader, aligned = open_embeddings(embeddings, pixels)
    with reader, contextlib.ExitStack() as stack:
        notes = [aligned] if aligned else []
        if pixels is None:
            notes.append("no input raster: the head has no per-pixel band term and the map is on the "
                         f"field's own grid ({reader.width}x{reader.height} cells of "
                         f"{abs(reader.transform.a):.6g} in {reader.crs})")
        for note in notes if reporter is not None else ():
            reporter.log(note)
        if head_path is not None:
            head, info = _applied_head(head_path, reader, pixels, warnings)
            classes, training_pixels, tiles_used, trained = info.classes, {}, 0, False
            loss = accuracy = None
            steps = 0
            check = base = HeldOut(None, None, why="an existing head was applied")
            recipe = BASELINE_RECIPE if info.embedding.get("band_statistics") else MODEL_RECIPE
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
            band_names = list(pixels.band_names) if pixels is not None else []
            check = HeldOut(None, None, why="not asked for")
            base = HeldOut(None, None, why="no band statistics")
            if held_out:
                if reporter is not None:
                    reporter.progress(0.0, "held-out check")
                check = held_out_check(tiles, len(labels.classes), band_names, reader.dim, steps, seed,
                                       torch_device)
                if baseline is not None and check.accuracy is not None:
                    base = _baseline_check(baseline, pixels, labels, max_tiles, band_names, steps, seed,
                                           torch_device)
                warnings += _held_out_warnings(check, base, features)
            if features == "auto" and base.accuracy is not None and not _beats(check, base):  # baseline maps
                reader = stack.enter_context(open_embeddings(baseline, pixels)[0])
                tiles = collect_tiles(reader, pixels, labels, max_tiles, np.random.default_rng(seed))
                kind, recipe = dict(BAND_STATISTICS_KIND), BASELINE_RECIPE
            else:
                kind, recipe = embedding_kind(reader), MODEL_RECIPE
            head, loss, accuracy = train_head(tiles, len(labels.classes), band_names, reader.dim,
                                              steps=steps, seed=seed, device=torch_device, reporter=reporter,
                                              start=0.0, end=0.7)
            classes, tiles_used, trained = list(labels.classes), len(tiles), True
        predict_segmentation(head, reader, pixels, out, classes, torch_device, reporter=reporter,
                             start=0.7 if trained else 0.0, end=1.0)
        if trained and head_out is not None:
            try:
                save_head(head, HeadInfo(classes, reader.dim, band_names, embedding=kind), head_out)
            except BaseException:  # all or nothing: no class map without the head the run promised
                from backend.downstream.styles import style_path

                for written in (Path(out), style_path(out)):
                    written.unlink(missing_ok=True)
                raise
    return SegmentationStats(classes={i + 1: c for i, c in enumerate(classes)},
                             training_pixels=training_pixels, train_accuracy=accuracy, final_loss=loss,
                             steps=steps, tiles=tiles_used, head_trained=trained, form=head.form,
                             held_out_accuracy=check.accuracy, held_out_macro_f1=check.macro_f1,
                             held_out_folds=check.folds, held_out_pixels=check.pixels,
                             held_out_note=check.why, baseline_held_out_accuracy=base.accuracy,
                             baseline_held_out_macro_f1=base.macro_f1, recipe=recipe,
                             warnings=warnings, notes=notes)


def _baseline_check(baseline: str | os.PathLike[str], pixels: PixelSource, labels: LabelSource,
                    max_tiles: int, band_names: list[str], steps: int, seed: int,
                    device: torch.device) -> HeldOut:
    """The held-out check of the same head on the band statistics (the raw-band baseline)."""
    statistics, _ = open_embeddings(baseline, pixels)
    with statistics:
        tiles = collect_tiles(statistics, pixels, labels, max_tiles, np.random.default_rng(seed))
        return held_out_check(tiles, len(labels.classes), band_names, statistics.dim, steps, seed, device)


def _beats(one: HeldOut, other: HeldOut) -> bool:
    """``one`` beats ``other`` on the held-out blocks (:func:`backend.downstream.validation.beats`)."""
    from backend.downstream.validation import beats

    return beats(one.accuracy, one.macro_f1, other.accuracy, other.macro_f1)


def _held_out_warnings(check: HeldOut, base: HeldOut, features: str) -> list[str]:
    """No held-out figure, or a model head below the band-statistics baseline, is never silent."""
    if check.accuracy is None:
        return [f"no held-out figure: {check.why}; the training accuracy alone overstates the map"]
    if base.accuracy is not None and not _beats(check, base):
        return [f"the head on the embeddings does not beat the same head on band statistics on held-out "
                f"label blocks (accuracy {check.accuracy:.3f} vs {base.accuracy:.3f}, macro-F1 "
                f"{check.macro_f1:.3f} vs {base.macro_f1:.3f}): "
                + ("the map and the head are the band-statistics head's" if features == "auto" else
                   "--features auto would map with the band-statistics head")]
    return []
