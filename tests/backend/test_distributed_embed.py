"""``torchrun -m backend embed`` (gloo, 2 ranks on the CPU) equals a single process, and fails as one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from backend.inference.distributed_embed import shard_rows
from backend.io.windows import plan_tiles
from backend.models import ModalityConfig, ModelConfig, build_model, save_model
from tests.backend.conftest import ONE_THREAD, events_of, run_json, torchrun

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
TILING = ["--window", "32", "--overlap", "16", "--batch-size", "3"]
CPU = [*TILING, "--device", "cpu"]


def _crop(source: Path, target: Path, window: Window, bands: list[int] | None = None) -> Path:
    """A real crop of ``source`` (``bands``: a subset, descriptions kept)."""
    with rasterio.open(source) as src:
        indexes = bands or list(range(1, src.count + 1))
        profile = dict(src.profile, width=window.width, height=window.height, count=len(indexes),
                       transform=src.window_transform(window))
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(src.read(indexes, window=window))
            dst.descriptions = tuple(src.descriptions[i - 1] for i in indexes)
    return target


@pytest.fixture(scope="module")
def scenes(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scenes")
    source = shared_data / S2_FILE
    return {"left": _crop(source, folder / "left.tif", Window(0, 0, 160, 200)),
            "right": _crop(source, folder / "right.tif", Window(160, 0, 160, 200)),
            "three_bands": _crop(source, folder / "three.tif", Window(160, 0, 160, 200), [2, 3, 4])}


@pytest.fixture(scope="module")
def tiny_model(scenes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random optical CROMA with band statistics of the crop."""
    with rasterio.open(scenes["left"]) as src:
        data = src.read([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]).reshape(12, -1).astype(float)
    torch.manual_seed(0)
    bands = ModelConfig().modalities["optical"].bands
    config = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1, modalities={
        "optical": ModalityConfig(bands, data.mean(axis=1).tolist(), data.std(axis=1).tolist())})
    weights, _ = save_model(build_model(config), tmp_path_factory.mktemp("model") / "tiny")
    return weights


def _single(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_json("embed", *args, env=ONE_THREAD)


def _torchrun(*args: str | Path, ranks: int = 2) -> subprocess.CompletedProcess[str]:
    return run_json("embed", *args, launcher=torchrun(ranks), env=ONE_THREAD)


def _events(proc: subprocess.CompletedProcess[str], kind: str) -> list[dict]:
    return [event for event in events_of(proc) if event["event"] == kind]


def _nothing_in(folder: Path) -> bool:
    return not folder.exists() or not any(folder.rglob("*"))


def _assert_same_raster(a: Path, b: Path) -> None:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert (x.transform, x.crs, x.descriptions) == (y.transform, y.crs, y.descriptions)
        first, second = x.read(), y.read()
    assert first.shape == second.shape
    assert np.array_equal(np.isnan(first), np.isnan(second))
    valid = ~np.isnan(first)
    assert np.abs(first[valid].astype(np.float64) - second[valid]).max(initial=0) <= 1e-6
    assert np.array_equal(first, second, equal_nan=True)  # bitwise, as the arithmetic allows


def test_shards_partition_the_rows() -> None:
    for rows, window, overlap in ((25, 4, 2), (64, 15, 12), (7, 8, 0), (100, 6, 0)):
        plan = plan_tiles(rows, 3, window, overlap)
        for world in (1, 2, 3, 5, 16):
            shares = [shard_rows(plan, world, rank) for rank in range(world)]
            covered = [row for first, stop in shares for row in range(first, stop)]
            assert covered == list(range(rows)), (rows, window, overlap, world)


@pytest.mark.slow
def test_two_ranks_embed_one_raster_like_one_process(scenes: dict[str, Path], tiny_model: Path,
                                                     tmp_path: Path) -> None:
    common = ["--optical", scenes["left"], "--model", tiny_model, *CPU, "--dtype", "float32"]
    single = _single(*common, "--out", tmp_path / "single.tif", "--cache-dir", tmp_path / "cache1")
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = _torchrun(*common, "--out", tmp_path / "ranks.tif", "--cache-dir", tmp_path / "cache2")
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    results = _events(ranks, "result")
    assert len(results) == 1 and results[0]["stats"]["ranks"] == 2  # only rank 0 reports
    assert sum(results[0]["stats"]["rows_per_rank"]) == 25 and min(results[0]["stats"]["rows_per_rank"]) > 0
    _assert_same_raster(tmp_path / "single.tif", tmp_path / "ranks.tif")
    _assert_same_raster(tmp_path / "single_pca.tif", tmp_path / "ranks_pca.tif")  # PCA on the same sample
    assert len(list((tmp_path / "cache2").glob("*.json"))) == 1  # rank 0 committed the assembled result
    assert not list(tmp_path.glob(".*"))  # no parts or temporaries left


@pytest.mark.slow
def test_two_ranks_embed_a_list_of_scenes_like_one_process(scenes: dict[str, Path], tiny_model: Path,
                                                           tmp_path: Path) -> None:
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"# two crops\n{scenes['left']}\n{scenes['right']}\n")
    common = ["--model", tiny_model, *CPU]
    single = _single("--optical", scenes["left"], "--optical", scenes["right"], *common,
                     "--out", tmp_path / "one" / "mosaic.vrt", "--cache-dir", tmp_path / "cache1")
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = _torchrun("--optical", listing, *common, "--out", tmp_path / "two" / "mosaic.vrt",
                      "--cache-dir", tmp_path / "cache2")
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    assert _events(ranks, "result")[0]["stats"]["ranks"] == 2
    for name in ("mosaic_scenes/left.tif", "mosaic_scenes/right.tif", "mosaic_scenes/left_pca.tif",
                 "mosaic_scenes/right_pca.tif", "mosaic.vrt", "mosaic_pca.vrt"):
        _assert_same_raster(tmp_path / "one" / name, tmp_path / "two" / name)
    with rasterio.open(tmp_path / "two" / "mosaic.vrt") as mosaic, \
            rasterio.open(tmp_path / "two" / "mosaic_scenes" / "right.tif") as right:
        assert (mosaic.width, mosaic.height) == (40, 25)
        assert np.array_equal(mosaic.read(window=Window(20, 0, 20, 25)), right.read(), equal_nan=True)


@pytest.mark.slow
def test_error_in_one_rank_fails_every_rank_and_writes_nothing(scenes: dict[str, Path], tiny_model: Path,
                                                               tmp_path: Path) -> None:
    # rank 1 gets the scene without the model's bands; rank 0's scene is fine
    out = tmp_path / "out" / "mosaic.vrt"
    proc = _torchrun("--optical", scenes["left"], "--optical", scenes["three_bands"], "--model", tiny_model,
                     *CPU, "--out", out, "--cache-dir", tmp_path / "cache")
    assert proc.returncode != 0
    errors = _events(proc, "error")
    assert len(errors) == 1 and "lacks the band(s)" in errors[0]["message"]
    assert errors[0]["message"].endswith("(rank 1 of 2)")
    assert "exitcode  : 2" in proc.stderr  # the bad-input code (a lingering rank may be stopped by torchrun)
    assert _nothing_in(tmp_path / "out")
    # rank 0 fails after the shards are in (all nodata): the other rank must not wait forever
    empty = tmp_path / "empty.tif"
    with rasterio.open(scenes["left"]) as src:
        profile = dict(src.profile, nodata=0)
        with rasterio.open(empty, "w", **profile) as dst:
            dst.write(np.zeros((src.count, src.height, src.width), src.dtypes[0]))
            dst.descriptions = src.descriptions
    proc = _torchrun("--optical", empty, "--model", tiny_model, *CPU, "--out", tmp_path / "e" / "emb.tif",
                     "--cache-dir", tmp_path / "cache")
    assert proc.returncode != 0
    assert [e["message"] for e in _events(proc, "error")] == [
        "the area has no valid pixels (all nodata): nothing to embed"]
    assert "exitcode  : 2" in proc.stderr
    assert _nothing_in(tmp_path / "e")


@pytest.mark.slow
@pytest.mark.gpu
def test_nccl_ranks_on_every_gpu_embed_like_one_process(scenes: dict[str, Path], tiny_model: Path,
                                                        tmp_path: Path) -> None:
    common = ["--optical", scenes["left"], "--model", tiny_model, *TILING, "--device", "cuda",
              "--dtype", "float32"]
    single = _single(*common, "--out", tmp_path / "single.tif", "--cache-dir", tmp_path / "cache1")
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = _torchrun(*common, "--out", tmp_path / "ranks.tif", "--cache-dir", tmp_path / "cache2",
                      ranks=torch.cuda.device_count())
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    assert _events(ranks, "result")[0]["stats"]["ranks"] == torch.cuda.device_count()
    _assert_same_raster(tmp_path / "single.tif", tmp_path / "ranks.tif")
    _assert_same_raster(tmp_path / "single_pca.tif", tmp_path / "ranks_pca.tif")


def test_scenes_off_the_first_patch_grid_are_warned_and_fit_the_mosaic(shared_data: Path, tiny_model: Path,
                                                                        tmp_path: Path) -> None:
    """Two crops 4 px (half a patch) apart: warned, and the mosaic holds the shifted one whole."""
    first = _crop(shared_data / S2_FILE, tmp_path / "first.tif", Window(0, 0, 160, 160))
    shifted = _crop(shared_data / S2_FILE, tmp_path / "shifted.tif", Window(84, 4, 160, 160))
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"{first}\n{shifted}\n")
    done = _single("--optical", listing, "--model", tiny_model, *CPU, "--out",
                   tmp_path / "mos" / "mosaic.vrt", "--cache-dir", tmp_path / "cache")
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [event["message"] for event in _events(done, "warning")]
    assert any("shifted.tif is not aligned" in w and "misregistration by +4 px across, +4 px down" in w
               for w in warnings), warnings
    with rasterio.open(tmp_path / "mos" / "mosaic.vrt") as mosaic:
        assert (mosaic.width, mosaic.height) == (31, 21)  # 30.5 x 20.5 patches, rounded outwards
