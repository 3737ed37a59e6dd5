"""Embedding with several processes: ``torchrun --nproc-per-node G [--nnodes N ...] -m backend embed``.

One raster: the tile rows of the plan (``backend.io.windows.plan_tiles``) are split into contiguous
shares, one per rank. A rank owns the patch rows of its tile rows' cores and encodes every batch of
the single-process plan that holds a tile reaching those rows, so the blend across a shard border
adds the same tile encodings, from the same batches, in the same order: the result equals a
single-process run. Each rank writes its rows (float32 ``.npy``) and its PCA sample (patches drawn
by position, see ``backend.inference.embed._Sampler``) into a parts folder beside ``--out`` (with
several nodes that folder must be on a shared file system); rank 0 streams the parts into the
GeoTIFF, fits the PCA on the gathered sample, commits the cache entry and writes the outputs.
Many rasters: ``backend.inference.scene_embed``.

The collectives, in this order on every rank, so that a failure on any rank ends every rank with
the same exit code and one message (only rank 0 reports; the other ranks are muted):

1. *decision* (broadcast from rank 0): ``compute`` once rank 0 starts computing (with the batch
   size and the parts folder), ``hit`` after a cache hit, ``failed`` (with its error) before that.
2. *shards* (all-gather): per rank, its error or its counts.
3. *final* (broadcast from rank 0): whether assembling and writing the outputs succeeded.

The group uses NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``) and gloo on the CPU; only small
Python objects travel through it. ``TERRAPROBE_DIST_TIMEOUT`` (seconds, default 21600) bounds how
long a rank waits for the others.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
import torch.distributed as dist

from backend.distributed import DistInfo
from backend.errors import Cancelled, EnvironmentFault, UserError
from backend.events import Reporter
from backend.inference.embed import (
    PATCH_SIZE,
    _batches,
    _Sampler,
    _Stitcher,
    band_descriptions,
    embedding_keys,
    finish_embeddings,
    run_batches,
)
from backend.inference.model import load_model_for, model_config, resolve_device
from backend.inference.resolve import InputOptions, model_path_for, open_inputs, with_model_tiling
from backend.io.geotiff import embedding_profile, open_stream
from backend.io.windows import Tile, plan_tiles

DEFAULT_TIMEOUT_S = 6 * 3600
#: Rows copied from a part into the GeoTIFF at a time.
ASSEMBLE_ROWS = 64
#: Seconds a failed non-zero rank waits before exiting, so that rank 0 reports the error first
#: (torchrun stops the other ranks as soon as one exits with an error).
LINGER_S = 5.0
#: Rank 0's ordinary job (cache lookup, compute, copy to the outputs), given the function that
#: computes the embeddings: :func:`compute_sharded` in place of ``compute_embeddings``.
Job = Callable[[Callable[..., dict[str, Any]]], None]


class RankFailed(UserError):
    """Another rank's internal error, reported once by rank 0 (exit 1)."""

    exit_code = 1


@dataclass
class Session:
    """Rank 0's state while a distributed ``embed`` runs the ordinary job."""

    info: DistInfo
    parts_root: Path
    decided: bool = False
    final_pending: bool = False


def launched() -> bool:
    """Whether ``torchrun`` started this process (``RANK`` and ``WORLD_SIZE`` in the environment)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def join_group(device: str) -> DistInfo:
    """Join the process group: NCCL on ``cuda:LOCAL_RANK``, gloo on the CPU."""
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                    int(os.environ.get("LOCAL_RANK", 0)))
    if device == "cuda":
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        seconds = int(os.environ.get("TERRAPROBE_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo",
                                 timeout=timedelta(seconds=seconds))
    return info


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order."""
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def describe(exc: BaseException) -> dict[str, Any]:
    """An exception as a picklable record (message, kind, exit code)."""
    if isinstance(exc, (Cancelled, KeyboardInterrupt)):
        return {"message": "cancelled; no output was written", "kind": "cancelled",
                "code": Cancelled.exit_code}
    if isinstance(exc, UserError):
        return {"message": str(exc), "kind": exc.kind, "code": exc.exit_code}
    text = str(exc).splitlines()[0] if str(exc) else ""
    return {"message": f"{type(exc).__name__}: {text}" if text else type(exc).__name__, "kind": "internal",
            "code": 1}


def raise_error(error: dict[str, Any], rank: int | None = None, world: int = 1) -> NoReturn:
    """Raise the recorded ``error`` (from ``rank``) as the exception that gives its exit code."""
    message = error["message"]
    if rank is not None and world > 1 and error["code"] != Cancelled.exit_code:
        message = f"{message} (rank {rank} of {world})"
    if error["code"] == Cancelled.exit_code:
        raise Cancelled(message)
    if error["code"] == EnvironmentFault.exit_code:
        raise EnvironmentFault(message, error["kind"])
    if error["code"] == UserError.exit_code:
        raise UserError(message, error["kind"])
    raise RankFailed(f"internal error: {message}", kind="internal")


def raise_first_error(results: list[dict[str, Any]]) -> None:
    """Raise the lowest rank's error, if any rank reported one."""
    for rank, result in enumerate(results):
        if result.get("error"):
            raise_error(result["error"], rank, len(results))


def settle(info: DistInfo) -> None:
    """After a failure every rank shares: meet, then let rank 0 exit (and report) first."""
    with contextlib.suppress(Exception):
        dist.barrier()
    if not info.is_main:
        time.sleep(LINGER_S)


def check_shared(folder: Path, info: DistInfo) -> None:
    """``EnvironmentFault`` when rank 0's work folder is not visible here (nodes without shared storage)."""
    if not folder.is_dir():
        raise EnvironmentFault(f"rank {info.rank} cannot see {folder}, made by rank 0: with several nodes "
                               f"the output folder must be on a file system every node shares")


def mute(reporter: Reporter) -> None:
    """Silence a non-zero rank: its events (and its copy of the error) go nowhere."""
    reporter.mode = "json"
    reporter._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


# -- one raster, rows sharded -------------------------------------------------------------------------

def shard_rows(plan: list[list[Tile]], world: int, rank: int) -> tuple[int, int]:
    """Patch rows ``[first, stop)`` owned by ``rank``: the cores of its contiguous share of tile rows."""
    count = len(plan)
    low, high = count * rank // world, count * (rank + 1) // world
    if low == high:
        return 0, 0
    return plan[low][0].row.keep_start, plan[high - 1][0].row.keep_stop


class _ShardStitcher(_Stitcher):
    """A stitcher that keeps only the rows ``[first, stop)`` and writes them into an array."""

    def __init__(self, array: np.ndarray, first: int, stop: int, dim: int, cols: int, tile_height: int,
                 stitch: str, sampler: _Sampler) -> None:
        super().__init__(None, dim, cols, tile_height, stitch, sampler)
        self.array, self.first, self.stop = array, first, stop

    def emit(self, first_row: int, rows: np.ndarray, invalid: np.ndarray) -> None:
        low, high = max(first_row, self.first), min(first_row + rows.shape[1], self.stop)
        if low >= high:
            return
        rows, invalid = rows[:, low - first_row:high - first_row], invalid[low - first_row:high - first_row]
        self.sampler.add(rows, invalid, low)
        self.valid_patches += int((~invalid).sum())
        self.array[:, low - self.first:high - self.first] = rows


def _part(parts: Path, rank: int, what: str) -> Path:
    return parts / f"{what}-{rank:05d}.npy"


def encode_shard(inputs: Any, model: Any, parts: Path, info: DistInfo, window: int, overlap: int,
                 batch_size: int, device: str, stitch: str, reporter: Reporter, start: float = 0.0,
                 end: float = 1.0) -> dict[str, Any]:
    """Encode this rank's rows of ``inputs`` into ``parts`` (rows and PCA sample); returns its counts."""
    keys = embedding_keys(inputs.names, model.config)
    dim = int(model.config.dim) * len(keys)
    rows, cols = inputs.patch_height, inputs.patch_width
    plan = plan_tiles(rows, cols, window // PATCH_SIZE, overlap // PATCH_SIZE)
    tiles = [tile for tile_row in plan for tile in tile_row]
    first, stop = shard_rows(plan, info.world_size, info.rank)
    sampler = _Sampler(rows * cols, cols)
    counts = {"rows": [first, stop], "valid_patches": 0, "encoded_tiles": 0, "dim": dim,
              "embedding": "+".join(keys), "tiles": len(tiles)}
    if first < stop:
        def reaches(tile: Tile) -> bool:
            return tile.row.start < stop and tile.row.start + tile.row.size > first

        batches = [b for b in _batches(tiles, max(1, batch_size)) if any(reaches(t) for t in b)]
        needed = [t for b in batches for t in b if reaches(t)]
        array = np.lib.format.open_memmap(_part(parts, info.rank, "rows"), mode="w+", dtype=np.float32,
                                          shape=(dim, stop - first, cols))
        stitcher = _ShardStitcher(array, first, stop, dim, cols, tiles[0].row.size, stitch, sampler)
        stitcher.base = needed[0].row.start
        counts["encoded_tiles"] = run_batches(inputs, model, batches, stitcher, device, reporter, start, end,
                                              keep=reaches)
        stitcher.advance(needed[-1].row.start + needed[-1].row.size)
        array.flush()
        del array
        counts["valid_patches"] = stitcher.valid_patches
    np.save(_part(parts, info.rank, "sample"), sampler.sample())
    return counts


def _shard_or_error(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return work()
    except BaseException as exc:  # reported to every rank by the gather that follows
        return {"error": describe(exc)}


def _assemble(parts: Path, results: list[dict[str, Any]], out_path: str | Path, profile: dict[str, Any],
              dim: int) -> np.ndarray:
    """Stream the parts into ``out_path`` in row order; returns the gathered PCA sample."""
    with open_stream(out_path, profile, band_descriptions(dim)) as writer:
        for rank, result in enumerate(results):
            first, stop = result["rows"]
            if first == stop:
                continue
            rows = np.load(_part(parts, rank, "rows"), mmap_mode="r")
            for low in range(0, stop - first, ASSEMBLE_ROWS):
                writer.write_rows(np.asarray(rows[:, low:low + ASSEMBLE_ROWS]))
            del rows
    samples = [np.load(_part(parts, rank, "sample")) for rank in range(len(results))]
    samples = [s for s in samples if s.size]
    return np.concatenate(samples) if samples else np.zeros((0, 0), np.float32)


def compute_sharded(session: Session, inputs: Any, model: Any, out_path: str | Path,
                    preview_path: str | Path | None, *, window: int, overlap: int, batch_size: int,
                    device: str, dtype: str, reporter: Reporter, start: float, end: float,
                    stitch: str) -> dict[str, Any]:
    """Rank 0's ``compute_embeddings``: shard the rows over every rank, assemble, write the preview."""
    began = time.perf_counter()
    session.parts_root.mkdir(parents=True, exist_ok=True)
    parts = Path(tempfile.mkdtemp(prefix=".terraprobe-parts-", dir=session.parts_root))
    try:
        broadcast({"status": "compute", "batch_size": batch_size, "parts": str(parts)})
        session.decided = True
        middle = start + (end - start) * 0.8
        own = _shard_or_error(lambda: encode_shard(inputs, model, parts, session.info, window, overlap,
                                                   batch_size, device, stitch, reporter, start, middle))
        results = all_gather(own)
        raise_first_error(results)
        session.final_pending = True  # from here on only rank 0 can fail: it tells the others
        reporter.progress(middle, f"{session.info.world_size} shards encoded; assembling")
        dim = results[0]["dim"]
        rows, cols = inputs.patch_height, inputs.patch_width
        profile = embedding_profile(inputs.crs, inputs.patch_transform, cols, rows, dim, dtype)
        sample = _assemble(parts, results, out_path, profile, dim)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    stats = {"patches": rows * cols, "valid_patches": sum(r["valid_patches"] for r in results),
             "patch_width": cols, "patch_height": rows, "tiles": results[0]["tiles"],
             "encoded_tiles": sum(r["encoded_tiles"] for r in results), "embedding_dim": dim,
             "embedding": results[0]["embedding"], "ranks": len(results),
             "rows_per_rank": [r["rows"][1] - r["rows"][0] for r in results]}
    return finish_embeddings(out_path, preview_path, sample, stats, began, reporter, end)


def _worker(options: InputOptions, info: DistInfo, device: str, reporter: Reporter) -> None:
    """A non-zero rank: follow rank 0's decision, encode this rank's share, wait for the final word."""
    decision = broadcast(None)
    if decision["status"] == "hit":
        return
    if decision["status"] == "failed":
        raise_error(decision["error"])

    def work() -> dict[str, Any]:
        check_shared(Path(decision["parts"]), info)
        model_path = model_path_for(options)
        config = model_config(model_path)
        tiled = with_model_tiling(options, config)
        with open_inputs(options, config) as inputs:
            model = load_model_for(model_path, inputs, device)
            return encode_shard(inputs, model, Path(decision["parts"]), info, tiled.window,
                                tiled.overlap, decision["batch_size"], device, options.stitch, reporter)

    raise_first_error(all_gather(_shard_or_error(work)))
    final = broadcast(None)
    if final.get("error"):
        raise_error(final["error"])


def _main(info: DistInfo, parts_root: Path, job: Job) -> None:
    """Rank 0: run the ordinary job (sharded compute), keeping the other ranks in step."""
    session = Session(info, parts_root)
    try:
        job(functools.partial(compute_sharded, session))
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the group may be what failed
            if not session.decided:
                broadcast({"status": "failed", "error": describe(exc)})
            elif session.final_pending:
                broadcast({"error": describe(exc)})
        raise
    else:
        if not session.decided:
            broadcast({"status": "hit"})
        elif session.final_pending:
            broadcast({"error": None})


def run_ranks(options: InputOptions, reporter: Reporter, job: Job, parts_root: Path) -> None:
    """Run ``embed`` of one raster on every rank of a ``torchrun`` launch.

    Args:
        options: the ``embed`` inputs (the same on every rank).
        reporter: this process's reporter (muted on non-zero ranks).
        job: rank 0's ordinary job (:data:`Job`).
        parts_root: an existing folder beside the outputs, seen by every rank, for the parts.
    """
    device = resolve_device(options.device)
    info = join_group(device)
    try:
        if info.is_main:
            if info.world_size > 1:
                reporter.log(f"distributed embedding: {info.world_size} ranks, {device}")
            _main(info, parts_root, job)
        else:
            mute(reporter)
            _worker(options, info, device, reporter)
    except BaseException:
        settle(info)
        raise
    finally:
        leave_group()
