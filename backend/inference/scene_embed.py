"""``embed`` over many scenes: per-scene embedding rasters and previews plus VRT mosaics of both.

    python -m backend embed --optical a.tif --optical b.tif --out mosaic.vrt
    python -m backend embed --optical scenes/ --out mosaic.vrt            # every .tif/.tiff/.vrt in it
    python -m backend embed --optical scenes.txt --out mosaic.vrt         # one path a line, '#' comments
    torchrun --nproc-per-node 4 -m backend embed --optical scenes.txt --out mosaic.vrt

Outputs: ``<out stem>_scenes/<scene stem>.tif`` and ``<scene stem>_pca.tif`` beside ``--out``, the
mosaic ``--out`` (a VRT of the scene embeddings) and ``--preview-out`` (default ``<out stem>_pca.vrt``,
a VRT of the previews; each scene's preview has its own PCA). The scenes must share a CRS and a
pixel size; ``--bounds`` applies to every scene. Under ``torchrun`` scene ``i`` goes to rank
``i mod world``; each rank embeds its scenes exactly as a single process would (through the cache)
into a staging folder; once every rank succeeded, rank 0 moves the folder into place and writes the
VRTs. The scene folder carries a marker (:data:`SCENES_MARKER`) listing what the tool wrote; an
existing folder without it, or with other files, is never replaced (the run is refused up front).
On any failure nothing is written and every rank exits with the failing rank's code
(collectives as in ``backend.inference.distributed_embed``: decision, shards, final).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import rasterio

from backend.contract.remote import SCENE_LIST_SUFFIXES
from backend.distributed import DistInfo
from backend.errors import UserError
from backend.events import Reporter
from backend.inference.distributed_embed import (
    _shard_or_error,
    all_gather,
    broadcast,
    check_shared,
    describe,
    join_group,
    launched,
    leave_group,
    mute,
    raise_error,
    raise_first_error,
    settle,
)
from backend.inference.model import resolve_device
from backend.inference.resolve import InputOptions, embed_into_cache
from backend.io.atomic import copy_atomic, write_text_atomic
from backend.io.vrt import grid_offsets, mosaic_vrt

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")
LIST_SUFFIXES = SCENE_LIST_SUFFIXES  # declared in the contract (the server vets them too)
#: The file that marks a scene folder as made by this tool, listing the files it wrote there.
SCENES_MARKER = ".terraprobe-scenes.json"
#: Per-scene stats kept in the result.
SCENE_STATS = ("patches", "valid_patches", "patch_width", "patch_height", "cache_hit", "seconds")


def is_many(values: list[str] | None) -> bool:
    """Whether ``--optical`` values name many scenes (repeated, a folder or a list file)."""
    values = values or []
    return len(values) > 1 or any(Path(v).expanduser().is_dir() or Path(v).suffix.lower() in LIST_SUFFIXES
                                  for v in values)


def scene_paths(values: list[str]) -> list[Path]:
    """The scenes named by ``--optical`` values (folders and list files expanded), in order."""
    scenes: list[Path] = []
    for value in values:
        path = Path(value).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES and p.is_file())
            if not found:
                raise UserError(f"--optical {path} is a folder without rasters (.tif, .tiff, .vrt)")
            scenes += found
        elif path.suffix.lower() in LIST_SUFFIXES:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise UserError(f"cannot read the scene list {path}: {exc.strerror or exc}") from None
            for line in (line.split("#", 1)[0].strip() for line in lines):
                if line:
                    entry = Path(line).expanduser()
                    scenes.append(entry if entry.is_absolute() else path.parent / entry)
        else:
            scenes.append(path)
    missing = [str(s) for s in scenes if not s.is_file()]
    if missing:
        raise UserError(f"scene(s) not found: {', '.join(missing[:5])}")
    if not scenes:
        raise UserError("no scenes given")
    return scenes


def output_names(scenes: list[Path]) -> list[str]:
    """Each scene's output stem (its file stem); two scenes with one stem are refused."""
    names = [scene.stem for scene in scenes]
    seen: dict[str, Path] = {}
    for scene, name in zip(scenes, names):
        if name in seen:
            raise UserError(f"two scenes would write {name}.tif: {seen[name]} and {scene}; rename one")
        seen[name] = scene
    return names


def check_grids(scenes: list[Path]) -> None:
    """Refuse scenes that cannot share a mosaic (another CRS or pixel size), before any encoding."""
    first = None
    for scene in scenes:
        try:
            with rasterio.open(scene) as src:
                grid = (src.crs, src.res)
        except rasterio.errors.RasterioIOError as exc:
            raise UserError(f"cannot read the scene {scene}: {str(exc).splitlines()[0]}") from None
        if first is None:
            first = (scene, *grid)
            continue
        if grid[0] != first[1]:
            raise UserError(f"{scene} is in {grid[0]}, {first[0]} in {first[1]}: the scenes of one mosaic "
                            f"need one CRS (reproject them first, e.g. with gdalwarp)")
        if not all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(grid[1], first[2])):
            raise UserError(f"{scene} has {grid[1][0]:g} x {grid[1][1]:g} pixels, {first[0]} "
                            f"{first[2][0]:g} x {first[2][1]:g}: the scenes of one mosaic need one "
                            f"pixel size")


def misaligned(scenes: list[tuple[Path, str]], folder: Path) -> list[str]:
    """A warning for each scene whose patch grid (embedding pixels in ``folder``) is shifted from the
    first scene's by a fraction of a patch: the mosaic resamples it."""
    paths = [folder / f"{name}.tif" for _, name in scenes]
    with rasterio.open(scenes[0][0]) as src, rasterio.open(paths[0]) as emb:
        patch = (abs(emb.res[0] / src.res[0]), abs(emb.res[1] / src.res[1]))
    by_path = dict(zip(paths, scenes))
    messages = []
    for path, dx, dy in grid_offsets(paths):
        shift = f"{dx * patch[0]:+.3g} px across, {dy * patch[1]:+.3g} px down"
        messages.append(f"the patch grid of {by_path[path][0]} is not aligned with that of the first "
                        f"scene {scenes[0][0]} (misregistration by {shift}; patches of {patch[0]:g} px): "
                        f"the mosaic resamples its embeddings; crop the scenes at multiples of {patch[0]:g} "
                        "px from each other for an exact mosaic")
    return messages


def _embed_scenes(options: InputOptions, reporter: Reporter, scenes: list[tuple[Path, str]],
                  staging: Path) -> dict[str, Any]:
    """Embed this rank's scenes (through the cache) into ``staging``; per-scene stats."""
    stats: dict[str, Any] = {}
    for index, (scene, name) in enumerate(scenes):
        reporter.log(f"scene {index + 1}/{len(scenes)}: {scene}")
        entry, found = embed_into_cache(replace(options, optical=str(scene)), reporter,
                                        start=index / len(scenes) * 0.9, end=(index + 1) / len(scenes) * 0.9,
                                        copies_to=[staging])
        copy_atomic(entry.embeddings, staging / f"{name}.tif")
        copy_atomic(entry.preview, staging / f"{name}_pca.tif")
        stats[name] = {key: found[key] for key in SCENE_STATS if key in found}
        stats[name]["warnings"] = found.get("warnings", [])
    return {"scenes": stats}


def _marker_files(folder: Path) -> list[str] | None:
    """The files ``folder``'s marker says the tool wrote there, or ``None`` without a sound marker."""
    try:
        marker = json.loads((folder / SCENES_MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    files = marker.get("files") if isinstance(marker, dict) else None
    return [str(name) for name in files] if isinstance(files, list) else None


def check_scene_folder(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is a scene folder this tool made, holding only its files.

    Nothing the tool did not create is ever deleted or moved: a folder without the marker, or with
    files the marker does not list, stays as it is and the run is refused.
    """
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink() or not folder.is_dir():
        raise UserError(f"the scene folder {folder} exists and is not a folder made by this tool; move it "
                        "away or choose another --out")
    ours = _marker_files(folder)
    if ours is None:
        raise UserError(f"the scene folder {folder} already exists and was not made by this tool (no "
                        f"{SCENES_MARKER}); it is left as it is: move it away or choose another --out")
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in {*ours, SCENES_MARKER})
    if foreign:
        raise UserError(f"the scene folder {folder} holds files this tool did not write "
                        f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); they are left as "
                        "they are: move them away or choose another --out")


def _mark(staging: Path) -> None:
    """Record in the staged folder that this tool made it and which files it wrote there."""
    files = sorted(p.name for p in staging.iterdir())
    (staging / SCENES_MARKER).write_text(json.dumps({"made_by": "terraprobe embed", "files": files},
                                                    indent=1) + "\n", encoding="utf-8")


def _place(staging: Path, folder: Path, names: list[str], out: Path, preview: Path) -> None:
    """Write the VRTs of the staged scenes, move the staging folder to ``folder``, then the VRTs.

    An existing ``folder`` is replaced only when it is one this tool made (:func:`check_scene_folder`).
    """
    def sources(suffix: str, vrt: Path) -> list[tuple[Path, str]]:
        return [(staging / f"{name}{suffix}.tif",
                 Path(os.path.relpath(folder / f"{name}{suffix}.tif", vrt.parent.resolve())).as_posix())
                for name in names]

    texts = {out: mosaic_vrt(sources("", out)), preview: mosaic_vrt(sources("_pca", preview))}
    _mark(staging)
    check_scene_folder(folder)  # again: the folder may have appeared or changed while scenes were embedded
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    for path, text in texts.items():
        write_text_atomic(path, text)


def run_scenes(given: list[str], options: InputOptions, reporter: Reporter, out: Path, preview: Path | None,
               check: Callable[[dict[str, Path]], None]) -> None:
    """``embed`` over the scenes ``given`` (the ``--optical`` values; see the module docstring).

    ``check`` is the command's output guard, called with the outputs by option before any work.
    """
    scenes = scene_paths(given)
    if options.sar:
        raise UserError("--sar with many optical scenes is not supported: embed scene pairs one at a time")
    if out.suffix.lower() != ".vrt":
        raise UserError(f"with many scenes --out is a VRT mosaic (e.g. {out.with_suffix('.vrt')}), not {out}")
    preview = preview or out.with_name(f"{out.stem}_pca.vrt")
    check({"--out": out, "--preview-out": preview})
    folder = out.absolute().parent / f"{out.stem}_scenes"
    check_scene_folder(folder)
    names = output_names(scenes)
    for scene in scenes:
        if folder.resolve() in scene.resolve().parents:
            raise UserError(f"the scene {scene} lies in the output folder {folder}; choose another --out")
    info = DistInfo()
    if launched():
        info = join_group(resolve_device(options.device))
        if not info.is_main:
            mute(reporter)
    try:
        _run(options, reporter, info, list(zip(scenes, names)), folder, out, preview)
    except BaseException:
        if launched():
            settle(info)
        raise
    finally:
        if launched():
            leave_group()


@contextlib.contextmanager
def _errors_told(together: bool) -> Iterator[None]:
    """Rank 0: an error in the block is told to the other ranks (when launched together), then raised."""
    try:
        yield
    except BaseException as exc:
        if together:
            with contextlib.suppress(Exception):
                broadcast({"error": describe(exc)})
        raise


def _run(options: InputOptions, reporter: Reporter, info: DistInfo, scenes: list[tuple[Path, str]],
         folder: Path, out: Path, preview: Path) -> None:
    together = launched()
    if info.is_main:
        with _errors_told(together):
            check_grids([scene for scene, _ in scenes])
            folder.parent.mkdir(parents=True, exist_ok=True)
            decision = {"staging": tempfile.mkdtemp(prefix=f".{folder.name}.parts-", dir=folder.parent)}
        if together:
            broadcast(decision)
        reporter.log(f"{len(scenes)} scene(s) on {info.world_size} rank(s)")
    else:
        decision = broadcast(None)
        if decision.get("error"):
            raise_error(decision["error"])
    staging = Path(decision["staging"])
    mine = scenes[info.rank::info.world_size]
    def work() -> dict[str, Any]:
        check_shared(staging, info)
        return _embed_scenes(options, reporter, mine, staging)

    own = _shard_or_error(work)
    results = all_gather(own) if together else [own]
    if not info.is_main:
        raise_first_error(results)
        final = broadcast(None)
        if final.get("error"):
            raise_error(final["error"])
        return
    try:
        raise_first_error(results)
        with _errors_told(together):
            _place(staging, folder, [name for _, name in scenes], out, preview)
        if together:
            broadcast({"error": None})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for message in misaligned(scenes, folder):
        reporter.warning(message)
    per_scene: dict[str, Any] = {}
    for result in results:
        per_scene.update(result["scenes"])
    stats = {"scenes": len(scenes), "ranks": info.world_size,
             "patches": sum(s.get("patches", 0) for s in per_scene.values()),
             "valid_patches": sum(s.get("valid_patches", 0) for s in per_scene.values()),
             "cache_hit": all(s.get("cache_hit") for s in per_scene.values()), "per_scene": per_scene}
    reporter.progress(1.0, "done")
    reporter.result({"embeddings": str(out), "preview": str(preview), "scenes": str(folder)}, stats)
