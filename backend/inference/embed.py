"""Stream an area through a CROMA encoder and write the per-patch embedding GeoTIFF + PCA preview.

``compute_embeddings(inputs, model, out_path, preview_path, ...) -> dict`` is the engine behind
``embed`` and every downstream command (through ``backend.inference.resolve.resolve_embeddings``).

How it works, in bounded memory:

1. The area's patch grid (ceil(width / 8) x ceil(height / 8) patches) is split into overlapping
   tiles (``backend.io.windows``); tiles are read window by window (``InputSet.read_padded``),
   batched (equal tile sizes) and encoded under ``torch.inference_mode``.
2. Stitching (``stitch``): by default (``blend``) overlapping tiles are cross-faded with tent
   weights (highest at a tile's centre, lowest at its edges), so no patch jumps from one tile's
   context to another's; ``centre`` keeps only each tile's core, cut mid-overlap. Attention spans
   the whole tile, so tiles never equal one giant window: on major-tom-core with a random tiny
   model, window 120 / overlap 32, the mean change between neighbouring patches across tile
   borders is 1.21x the change inside tiles with ``centre`` and 0.99-1.01x with ``blend``
   (``centre`` needs overlap 64 for 1.08x). Rows are written as soon as no later tile can reach
   them (``RowStreamWriter``): memory grows with the raster's width, not its area.
3. Nodata: a patch with more than half of its (in-area) pixels invalid is written as NaN;
   invalid pixels of the other patches were filled with the band mean (0.5 after normalisation).
   Tiles with no valid patch skip the encoder.
   Validity is decided per pixel, so every tile covering a patch agrees on it.
4. A random sample of valid patch embeddings (at most ``PCA_SAMPLE``) fits a 3-component PCA;
   a patch is drawn by a hash of its position (``_Sampler``), so any split of the rows among
   processes (``backend.inference.distributed_embed``) draws the same sample;
   a second streaming pass over the written embeddings writes the uint8 preview (2-98 %
   percentile stretch of each component to 1..255, nodata 0).
5. The same sample feeds the degenerate-embeddings guard (``backend.inference.guard``): near-identical
   or near-constant vectors set the returned stats' ``degenerate`` (one phrase, else ``None``); the
   caller decides (``backend.inference.resolve`` refuses them, ``evaluate`` warns).

The embedding is ``joint_encodings`` when optical and radar are both given, else the single
modality's encodings (see :func:`embedding_keys` for models whose joint encoder is untrained).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from backend.contract.commands import DEFAULT_WINDOW
from backend.contract.requests import DEFAULT_OVERLAP
from backend.errors import UserError
from backend.events import Reporter
from backend.inference.galileo_inputs import EMBEDDING_KEY
from backend.inference.guard import degenerate_reason
from backend.inference.inputs import PATCH_SIZE, InputSet
from backend.io.geotiff import embedding_profile, open_stream
from backend.io.windows import Span, Tile, plan_tiles

PCA_SAMPLE = 20_000


def embedding_keys(names: list[str], config: Any = None) -> list[str]:
    """The model outputs whose concatenation is the embedding for the given modalities.

    With both inputs this is the joint (cross-attention) encoding, unless the model's config says
    its joint encoder was never trained (``joint_encoder_trained``: dual-encoder and
    X-STARS-from-scratch pretraining): then the radar and optical encodings are concatenated instead.
    """
    if getattr(config, "is_galileo", False):  # one embedding of every channel group given
        return [EMBEDDING_KEY]
    if len(names) == 1:
        return [f"{names[0]}_encodings"]
    if not getattr(config, "joint_encoder_trained", True):
        return ["sar_encodings", "optical_encodings"]
    return ["joint_encodings"]


def default_tiling(config: Any) -> tuple[int, int]:
    """``(window, overlap)`` in px when ``--window``/``--overlap`` are not given: the contract's
    defaults (CROMA), or Galileo's (``backend.inference.galileo_inputs.GALILEO_TILING``, measured)."""
    if getattr(config, "is_galileo", False):
        from backend.inference.galileo_inputs import GALILEO_TILING

        return GALILEO_TILING
    return DEFAULT_WINDOW, DEFAULT_OVERLAP


def band_descriptions(dim: int) -> list[str]:
    return [f"emb_{i:03d}" for i in range(dim)]


def check_tiling(window: int, overlap: int) -> None:
    """Validate ``--window`` / ``--overlap`` (pixels)."""
    if window < 2 * PATCH_SIZE or window % PATCH_SIZE:
        raise UserError(f"--window must be a multiple of {PATCH_SIZE} and at least {2 * PATCH_SIZE} px, "
                        f"got {window}")
    if overlap < 0 or overlap % PATCH_SIZE or overlap >= window:
        raise UserError(f"--overlap must be a multiple of {PATCH_SIZE} in [0, --window), got {overlap}")


def _axis_weights(span: Span, stitch: str) -> np.ndarray:
    """Per-patch weights of one tile along one axis.

    ``centre``: 1 on the tile's core, 0 elsewhere (a hard cut mid-overlap). ``blend``: a tent,
    lowest at the tile's edges, so overlapping tiles cross-fade and edge patches (with the least
    context) count least.
    """
    if stitch == "centre":
        weights = np.zeros(span.size, np.float32)
        weights[span.keep_start - span.start:span.keep_stop - span.start] = 1
        return weights
    position = np.arange(span.size)
    return (np.minimum(position, span.size - 1 - position) + 1).astype(np.float32)


def _cosine_sum(a: np.ndarray, b: np.ndarray) -> float:
    """Sum over columns of the cosine between ``a[:, i]`` and ``b[:, i]`` (``[dim, n]`` arrays)."""
    norms = np.maximum(np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0), 1e-12)
    return float(((a * b).sum(axis=0) / norms).sum(dtype=np.float64))


class _Stitcher:
    """Accumulates weighted tile outputs over one band of rows and writes rows once final.

    Tiles arrive row-major; rows above the start of the current tile row are final (no later
    tile reaches them), so the buffer only ever spans one tile height.
    """

    def __init__(self, writer: Any, dim: int, cols: int, tile_height: int, stitch: str,
                 sampler: _Sampler) -> None:
        self.writer, self.stitch, self.sampler = writer, stitch, sampler
        self.base = 0
        self.sum = np.zeros((dim, tile_height, cols), np.float32)
        self.weight = np.zeros((tile_height, cols), np.float32)
        self.invalid = np.zeros((tile_height, cols), bool)
        self.valid_patches = 0
        self._agreement = [0.0, 0]  # sum and count of cosines between overlapping tiles' patch vectors
        self._neighbours = [0.0, 0]  # the same between horizontally adjacent final patches

    def add(self, tile: Tile, values: np.ndarray | None, invalid: np.ndarray) -> None:
        if tile.row.start != self.base:
            self.advance(tile.row.start)
        rows = slice(0, tile.row.size)
        cols = slice(tile.col.start, tile.col.start + tile.col.size)
        self.invalid[rows, cols] |= invalid
        if values is not None:
            self._compare(values, rows, cols, invalid)
            weights = np.outer(_axis_weights(tile.row, self.stitch), _axis_weights(tile.col, self.stitch))
            self.sum[:, rows, cols] += values * weights
            self.weight[rows, cols] += weights

    def _compare(self, values: np.ndarray, rows: slice, cols: slice, invalid: np.ndarray) -> None:
        """Cosine between this tile's vectors and what earlier tiles gave the same (overlap) patches."""
        seen = (self.weight[rows, cols] > 0) & ~self.invalid[rows, cols] & ~invalid
        if not seen.any():
            return
        before = self.sum[:, rows, cols][:, seen] / self.weight[rows, cols][seen]
        self._agreement[0] += _cosine_sum(before, values[:, seen])
        self._agreement[1] += int(seen.sum())

    def agreement(self) -> float | None:
        """Mean cosine between overlapping tiles' embeddings of the same patches (``None``: no overlap)."""
        total, count = self._agreement
        return round(total / count, 4) if count else None

    def neighbour_similarity(self) -> float | None:
        """Mean cosine between horizontally adjacent patches of the result (``None``: none counted)."""
        total, count = self._neighbours
        return round(total / count, 4) if count else None

    def _count_neighbours(self, rows: np.ndarray, invalid: np.ndarray) -> None:
        left, right = rows[:, :, :-1], rows[:, :, 1:]
        both = ~invalid[:, :-1] & ~invalid[:, 1:]
        if not both.any():
            return
        self._neighbours[0] += _cosine_sum(left[:, both], right[:, both])
        self._neighbours[1] += int(both.sum())

    def advance(self, new_base: int) -> None:
        """Write rows ``[base, new_base)`` and move the buffer down to start at ``new_base``."""
        done = new_base - self.base
        if done <= 0:
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            rows = self.sum[:, :done] / self.weight[:done]
        invalid = self.invalid[:done] | (self.weight[:done] == 0)
        rows[:, invalid] = np.nan
        self.emit(self.base, rows, invalid)
        for buffer in (self.sum, self.weight, self.invalid):
            buffer[..., :-done, :] = buffer[..., done:, :].copy()
            buffer[..., -done:, :] = 0
        self.base = new_base

    def emit(self, first_row: int, rows: np.ndarray, invalid: np.ndarray) -> None:
        """Final rows ``[first_row, first_row + len)``: sample, count and write them."""
        self.sampler.add(rows, invalid, first_row)
        self.valid_patches += int((~invalid).sum())
        self._count_neighbours(rows, invalid)
        self.writer.write_rows(rows)


def _tile_window(tile: Tile) -> Window:
    return Window(tile.col.start * PATCH_SIZE, tile.row.start * PATCH_SIZE, tile.col.size * PATCH_SIZE,
                  tile.row.size * PATCH_SIZE)


def _patch_invalid(valid: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Patches with more than half of their in-area pixels invalid, ``[rows, cols]`` bool."""
    h, w = valid.shape
    shape = (h // PATCH_SIZE, PATCH_SIZE, w // PATCH_SIZE, PATCH_SIZE)
    real = inside.reshape(shape).sum(axis=(1, 3))
    bad = (inside & ~valid).reshape(shape).sum(axis=(1, 3))
    return 2 * bad > real


def _position_uniform(index: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per patch index (splitmix64 of index and seed): order-free sampling."""
    z = index.astype(np.uint64) + np.uint64(seed + 1) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


class _Sampler:
    """Keeps a uniform random subset of valid patch embeddings for the PCA preview.

    A patch is kept when the hash of its position (row-major index) falls below the rate, so the
    sample does not depend on how the rows were split or in which order they arrived.
    """

    def __init__(self, total_patches: int, cols: int = 1, limit: int = PCA_SAMPLE, seed: int = 0) -> None:
        self.rate = min(1.0, limit / max(total_patches, 1))
        self.cols, self.seed = cols, seed
        self.parts: list[np.ndarray] = []

    def add(self, core: np.ndarray, invalid: np.ndarray, first_row: int = 0) -> None:
        keep = ~invalid.reshape(-1)
        vectors = core.reshape(core.shape[0], -1).T[keep]
        if len(vectors):
            index = first_row * self.cols + np.flatnonzero(keep)
            chosen = _position_uniform(index, self.seed) < self.rate
            self.parts.append(vectors[chosen].astype(np.float32))

    def sample(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros((0, 0), np.float32)


def _encode(model: Any, batch: list[dict[str, np.ndarray]], names: list[str], device: str) -> np.ndarray:
    """Encode equally sized tiles; returns ``[B, dim, rows, cols]`` float32."""
    import torch

    tensors = {name: torch.from_numpy(np.stack([b[name] for b in batch])).to(device) for name in names}
    height, width = batch[0][names[0]].shape[-2:]
    with torch.inference_mode():
        outputs = model(**tensors)
        out = torch.cat([outputs[key] for key in embedding_keys(names, model.config)], dim=-1)
        broken = int((~torch.isfinite(out)).any(dim=-1).sum())
    if broken:  # NaN patches would otherwise be written as if valid
        raise UserError(f"the encoder produced non-finite values (NaN or inf) for {broken} of "
                        f"{out.shape[0] * out.shape[1]} patches: the model's weights or the input values "
                        f"are unusable; no embedding was written", kind="non_finite")
    rows, cols = height // PATCH_SIZE, width // PATCH_SIZE
    return out.reshape(len(batch), rows, cols, -1).permute(0, 3, 1, 2).float().cpu().numpy()


def _batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    for i in range(0, len(tiles), size):
        yield tiles[i:i + size]


def run_batches(inputs: InputSet, model: Any, batches: list[list[Tile]], stitcher: _Stitcher, device: str,
                reporter: Reporter, start: float, end: float, keep: Any = None) -> int:
    """Read, encode and stitch ``batches`` in order; returns the number of tiles encoded.

    ``keep(tile) -> bool`` limits which tiles reach the stitcher; a batch is always encoded whole,
    so every tile's encoding is the one a single process computes.
    """
    encoded_tiles = 0
    for batch in reporter.track(batches, total=len(batches), description="embedding tiles",
                                start=start, end=end, unit="batch"):
        reads = [inputs.read_padded(_tile_window(t)) for t in batch]
        invalid = [_patch_invalid(valid, inside) for _, valid, inside in reads]
        todo = [i for i, bad in enumerate(invalid) if not bad.all()]
        encoded = _encode(model, [reads[i][0] for i in todo], inputs.names, device) if todo else None
        for i, tile in enumerate(batch):
            if keep is not None and not keep(tile):
                continue
            values = encoded[todo.index(i)] if i in todo else None  # type: ignore[index]
            stitcher.add(tile, values, invalid[i])
        encoded_tiles += len(todo)
    return encoded_tiles


def compute_embeddings(inputs: InputSet, model: Any, out_path: str | Path, preview_path: str | Path | None,
                       window: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP, batch_size: int = 4,
                       device: str = "cpu",
                       dtype: str = "float16", reporter: Reporter | None = None, start: float = 0.0,
                       end: float = 1.0, stitch: str = "blend") -> dict[str, Any]:
    """Write the embedding GeoTIFF of ``inputs`` to ``out_path`` (and the preview, if asked).

    The caller handles atomicity (pass temporary paths from ``atomic_paths``).

    Args:
        inputs: opened inputs (grid, area, normalisation).
        model: a loaded ``CromaModel`` in eval mode on ``device``.
        out_path: embedding GeoTIFF to create.
        preview_path: PCA preview GeoTIFF to create, or ``None``.
        window: tile size in pixels (multiple of 8).
        overlap: minimum tile overlap in pixels (multiple of 8).
        batch_size: tiles per encoder call.
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"float16"`` or ``"float32"`` on disk.
        reporter: progress and logs.
        start: progress fraction at the start of this step.
        end: progress fraction at its end.
        stitch: ``"blend"`` (tent-weighted cross-fade of overlapping tiles) or ``"centre"``
            (each tile keeps only its core).

    Returns:
        Stats: patch counts, valid patches, tiles, seconds, patches per second.
    """
    check_tiling(window, overlap)
    reporter = reporter or Reporter("human")
    names = inputs.names
    keys = embedding_keys(names, model.config)
    dim = int(model.config.dim) * len(keys)
    if keys != ["joint_encodings"] and len(names) > 1:
        reporter.log("this model's joint encoder is untrained: the embedding concatenates its radar "
                     "and optical encodings")
    rows, cols = inputs.patch_height, inputs.patch_width
    plan = plan_tiles(rows, cols, window // PATCH_SIZE, overlap // PATCH_SIZE)
    tiles = [tile for tile_row in plan for tile in tile_row]
    sampler = _Sampler(rows * cols, cols)
    began = time.perf_counter()
    preview_end = start + (end - start) * 0.9 if preview_path else end
    profile = embedding_profile(inputs.crs, inputs.patch_transform, cols, rows, dim, dtype)
    with open_stream(out_path, profile, band_descriptions(dim)) as writer:
        stitcher = _Stitcher(writer, dim, cols, tiles[0].row.size, stitch, sampler)
        batches = list(_batches(tiles, max(1, batch_size)))
        encoded_tiles = run_batches(inputs, model, batches, stitcher, device, reporter, start, preview_end)
        stitcher.advance(rows)
    stats = {"patches": rows * cols, "valid_patches": stitcher.valid_patches, "patch_width": cols,
             "patch_height": rows, "tiles": len(tiles), "encoded_tiles": encoded_tiles,
             "embedding_dim": dim, "embedding": "+".join(keys), "tile_agreement": stitcher.agreement(),
             "neighbour_similarity": stitcher.neighbour_similarity()}
    seam = seam_note(stats["tile_agreement"], stats["neighbour_similarity"], window)
    if seam:
        reporter.log(seam)
    return finish_embeddings(out_path, preview_path, sampler.sample(), stats, began, reporter, end)


SEAM_RATIO = 0.5
"""Tile disagreement (1 - agreement) at this fraction of the neighbour difference shows as seams."""


def seam_note(agreement: float | None, neighbours: float | None, window: int) -> str | None:
    """A log line when overlapping tiles disagree about as much as neighbouring patches differ.

    The model then depends on its context window: tile borders can show in cluster and class maps
    (seen with the small bundled model at window 120). ``None`` when tiles agree well.
    """
    if agreement is None or neighbours is None or neighbours >= 1.0:
        return None
    ratio = (1.0 - agreement) / (1.0 - neighbours)
    if ratio < SEAM_RATIO:
        return None
    return (f"tile seams may show: overlapping tiles' vectors agree to cosine {agreement:.3f}, neighbouring "
            f"patches to {neighbours:.3f} (the model depends on its context window); a larger --window "
            f"than {window} (e.g. {2 * window + 8}) covers the area with fewer tiles")


def finish_embeddings(out_path: str | Path, preview_path: str | Path | None, sample: np.ndarray,
                      stats: dict[str, Any], began: float, reporter: Reporter, end: float) -> dict[str, Any]:
    """Refuse an all-nodata area, add timings, judge degeneracy, write the preview; returns ``stats``."""
    seconds = time.perf_counter() - began
    if stats["valid_patches"] == 0:
        raise UserError("the area has no valid pixels (all nodata): nothing to embed")
    stats.update(seconds=round(seconds, 3),
                 patches_per_second=round(stats["patches"] / max(seconds, 1e-9), 2))
    stats["degenerate"] = degenerate_reason(sample)
    if preview_path is not None:
        from backend.inference.preview import write_pca_preview

        write_pca_preview(out_path, preview_path, sample)
        reporter.progress(end, "PCA preview written")
    return stats
