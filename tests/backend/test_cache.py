"""The embedding cache verifies what it serves: faults injected into real entries through the real CLI.

Each test runs ``python -m backend`` in a subprocess on 96 px crops of the Sen1Floods11 Sentinel-2 chip
with a tiny optical model, breaks the cache the way a crash, a disk or a user would, and checks the
exit code, the warning, the cache's state and that the rerun's output equals a clean run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from backend.inference.cache import SAMPLE_EDGE, sampled_sha256
from backend.models import ModalityConfig, ModelConfig, build_model, save_model
from tests.backend.conftest import run_events

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
S2_INDEXES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]  # B10 skipped
CROP = 96
WINDOW = ["--window", "64", "--overlap", "16"]


@pytest.fixture(scope="module")
def data(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two uncompressed 96 px crops (``a``, ``b``) and a tiny optical-only model (``model``)."""
    folder = tmp_path_factory.mktemp("cache-data")
    with rasterio.open(shared_data / S2_FILE) as src:
        for name, (col, row) in {"a": (64, 96), "b": (288, 320)}.items():
            window = Window(col, row, CROP, CROP)
            profile = dict(src.profile, width=CROP, height=CROP, transform=src.window_transform(window),
                           compress=None)
            with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
                dst.write(src.read(window=window))
                dst.descriptions = src.descriptions
        sample = src.read(S2_INDEXES, out_shape=(len(S2_INDEXES), 128, 128)).astype(float)
    flat = sample.reshape(len(S2_INDEXES), -1)
    bands = ModelConfig().modalities["optical"].bands
    config = ModelConfig(dim=16, heads=2, sar_depth=1, optical_depth=1, joint_depth=1, modalities={
        "optical": ModalityConfig(bands, flat.mean(axis=1).tolist(), flat.std(axis=1).tolist())})
    torch.manual_seed(0)
    weights, _ = save_model(build_model(config), folder / "tiny")
    return {"a": folder / "a.tif", "b": folder / "b.tif", "model": weights}


def embed(data: dict[str, Path], raster: str | Path, cache: Path, out: Path, *extra: str | Path,
          env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]], str]:
    source = data[raster] if isinstance(raster, str) else raster
    return run_events("embed", "--optical", source, "--model", data["model"], *WINDOW, "--cache-dir", cache,
                      "--out", out, *extra, env=env)


def result(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events and events[-1]["event"] == "result", events[-3:]
    return events[-1]


def warnings(events: list[dict[str, Any]]) -> list[str]:
    """Warning messages (a ``warning`` event, or a ``log`` event of level ``warning``)."""
    return [e["message"] for e in events
            if e["event"] == "warning" or (e["event"] == "log" and e.get("level") == "warning")]


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def outputs_equal(out: Path, reference: dict[str, np.ndarray]) -> bool:
    preview = out.with_name(f"{out.stem}_pca.tif")
    return (np.array_equal(read(out), reference["embeddings"], equal_nan=True)
            and np.array_equal(read(preview), reference["preview"]))


def entry_files(cache: Path, key: str) -> list[Path]:
    return [cache / f"{key}.tif", cache / f"{key}_pca.tif", cache / f"{key}.json"]


@pytest.fixture(scope="module")
def primed(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A cache holding clean entries for crops ``a`` and ``b``, their keys and reference outputs."""
    work = tmp_path_factory.mktemp("primed")
    cache = work / "cache"
    primed: dict[str, Any] = {}
    for name in ("a", "b"):
        code, events, stderr = embed(data, name, cache, work / f"{name}.tif")
        assert code == 0, stderr
        assert result(events)["stats"]["cache_hit"] is False
        primed[f"key_{name}"] = result(events)["stats"]["cache_key"]
        primed[name] = {"embeddings": read(work / f"{name}.tif"), "preview": read(work / f"{name}_pca.tif")}
    primed["cache"] = cache
    return primed


@pytest.fixture()
def cache(primed: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the primed cache (file times preserved)."""
    return Path(shutil.copytree(primed["cache"], tmp_path / "cache"))


def flip(path: Path, offset: int | None = None, count: int = 64) -> None:
    """Invert ``count`` bytes in the middle of ``path`` (size and mtime unchanged)."""
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.seek(stat.st_size // 2 if offset is None else offset)
        chunk = handle.read(count)
        handle.seek(-len(chunk), os.SEEK_CUR)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_byte_flipped_entry_is_discarded_and_recomputed(data, primed, cache, tmp_path) -> None:
    flip(cache / f"{primed['key_a']}.tif")
    code, events, stderr = embed(data, "a", cache, tmp_path / "out.tif")
    assert code == 0, stderr
    assert result(events)["stats"]["cache_hit"] is False
    assert any("discarded the bad cache entry" in w and "checksum" in w for w in warnings(events)), events
    assert outputs_equal(tmp_path / "out.tif", primed["a"])
    code, events, _ = embed(data, "a", cache, tmp_path / "again.tif")  # the recomputed entry is good
    assert code == 0 and result(events)["stats"]["cache_hit"] is True and not warnings(events)
    assert outputs_equal(tmp_path / "again.tif", primed["a"])


@pytest.mark.parametrize("what", ["rasters", "whole entry"])
def test_entry_copied_from_another_raster_is_detected(data, primed, cache, tmp_path, what) -> None:
    a, b = entry_files(cache, primed["key_a"]), entry_files(cache, primed["key_b"])
    for file_a, file_b in list(zip(a, b, strict=True))[: 2 if what == "rasters" else 3]:
        file_a.rename(tmp_path / "swap")
        file_b.rename(file_a)
        (tmp_path / "swap").rename(file_b)
    code, events, stderr = embed(data, "a", cache, tmp_path / "out.tif")
    assert code == 0, stderr
    assert result(events)["stats"]["cache_hit"] is False
    found = warnings(events)
    assert len(found) == 1 and found[0].startswith(f"discarded the bad cache entry {primed['key_a'][:12]}")
    if what == "rasters":  # the size check or the checksum catches the other raster's files
        assert f"{primed['key_a']}.tif" in found[0] and ("checksum" in found[0] or "bytes" in found[0])
    else:
        assert "sidecar belongs to another entry" in found[0]
    assert outputs_equal(tmp_path / "out.tif", primed["a"])


@pytest.mark.parametrize("part", ["embeddings", "sidecar"])
def test_truncated_entry_is_discarded_and_recomputed(data, primed, cache, tmp_path, part) -> None:
    victim = cache / f"{primed['key_a']}{'.tif' if part == 'embeddings' else '.json'}"
    with victim.open("r+b") as handle:
        handle.truncate(victim.stat().st_size // 2)
    code, events, stderr = embed(data, "a", cache, tmp_path / "out.tif")
    assert code == 0, stderr
    assert result(events)["stats"]["cache_hit"] is False
    reason = "bytes" if part == "embeddings" else "sidecar is unreadable"
    assert any("discarded the bad cache entry" in w and reason in w for w in warnings(events))
    assert outputs_equal(tmp_path / "out.tif", primed["a"])
    assert all(p.is_file() for p in entry_files(cache, primed["key_a"]))
    code, events, _ = run_events("cache", "verify", "--cache-dir", cache)
    assert code == 0 and result(events)["stats"]["removed"] == []


def test_input_edited_in_place_with_size_and_mtime_restored_is_not_served_stale(data, primed,
                                                                                tmp_path) -> None:
    raster = tmp_path / "edited.tif"
    shutil.copy2(data["a"], raster)
    cache = tmp_path / "cache"
    code, _, stderr = embed(data, raster, cache, tmp_path / "before.tif")
    assert code == 0, stderr
    stat = raster.stat()
    with raster.open("r+b") as handle:  # move 4 KiB of pixels (even offsets: whole int16 values)
        handle.seek(stat.st_size // 2)
        chunk = handle.read(4096)
        handle.seek(stat.st_size // 2 - 8192)
        handle.write(chunk)
    os.utime(raster, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (raster.stat().st_size, raster.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    code, events, stderr = embed(data, raster, cache, tmp_path / "after.tif")
    assert code == 0, stderr
    assert result(events)["stats"]["cache_hit"] is False
    code, _, stderr = embed(data, raster, tmp_path / "clean-cache", tmp_path / "clean.tif")
    assert code == 0, stderr
    clean = {"embeddings": read(tmp_path / "clean.tif"), "preview": read(tmp_path / "clean_pca.tif")}
    assert outputs_equal(tmp_path / "after.tif", clean)
    assert not np.array_equal(read(tmp_path / "before.tif"), clean["embeddings"])


def test_a_vrt_whose_source_changed_is_not_served_stale(data, primed, tmp_path) -> None:
    source = tmp_path / "source.tif"
    shutil.copy2(data["a"], source)
    vrt = tmp_path / "mosaic.vrt"
    from osgeo import gdal

    gdal.BuildVRT(str(vrt), [str(source)]).FlushCache()
    cache = tmp_path / "cache"
    bands = ["--optical-bands", ",".join(map(str, S2_INDEXES))]  # BuildVRT drops band names
    code, _, stderr = embed(data, vrt, cache, tmp_path / "before.tif", *bands)
    assert code == 0, stderr
    vrt_stat = vrt.stat()
    shutil.copyfile(data["b"], source)  # other pixels behind the same, untouched .vrt file
    assert vrt.stat().st_mtime_ns == vrt_stat.st_mtime_ns
    code, events, stderr = embed(data, vrt, cache, tmp_path / "after.tif", *bands)
    assert code == 0, stderr
    assert result(events)["stats"]["cache_hit"] is False
    assert not np.array_equal(read(tmp_path / "before.tif"), read(tmp_path / "after.tif"))


def test_sampled_hash_sees_edits_in_sampled_blocks_of_big_files(tmp_path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(np.random.default_rng(0).bytes(8 * SAMPLE_EDGE))
    before = sampled_sha256(path, path.stat().st_size)
    flip(path, offset=10, count=1)  # first MiB
    assert sampled_sha256(path, path.stat().st_size) != before
    flip(path, offset=10, count=1)
    assert sampled_sha256(path, path.stat().st_size) == before
    flip(path, offset=path.stat().st_size - 5, count=1)  # last MiB
    assert sampled_sha256(path, path.stat().st_size) != before


def _age(path: Path, seconds: float) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_stale_temporaries_are_swept_and_fresh_or_locked_ones_kept(data, primed, cache, tmp_path) -> None:
    other, locked = "1" * 64, "2" * 64
    key_b = primed["key_b"]
    stale = [cache / f".{key_b}.k3j2h1.part.tif", cache / f".{key_b}_pca.x9.part.tif.aux.xml",
             cache / f"{other}.tif", cache / f".{other}.lock"]   # a killed run's leftovers
    fresh = [cache / f".{other}.abc.part.tif", cache / f".{other}.abc.part.json"]
    held = [cache / f".{locked}.zz.part.tif", cache / f".{locked}.lock"]
    for path in stale + fresh + held:
        path.write_bytes(b"partial")
    for path in [*stale, held[0]]:
        _age(path, 7200)
    with held[1].open("a") as lock:  # a live writer (this process) holds the lock of `locked`
        fcntl.flock(lock, fcntl.LOCK_SH)
        code, events, stderr = embed(data, "a", cache, tmp_path / "out.tif")
    assert code == 0, stderr
    assert result(events)["stats"]["cache_hit"] is True
    assert [p.name for p in stale if p.exists()] == []
    assert all(p.exists() for p in fresh + held)
    assert all(p.is_file() for key in ("key_a", "key_b") for p in entry_files(cache, primed[key]))


def test_lru_eviction_under_a_tiny_limit_keeps_the_newest(data, primed, tmp_path) -> None:
    cache = tmp_path / "cache"
    keys = {}
    for name, raster, window in (("a64", "a", "64"), ("a96", "a", "96")):
        code, events, stderr = embed(data, raster, cache, tmp_path / f"{name}.tif", "--window", window)
        assert code == 0, stderr
        keys[name] = result(events)["stats"]["cache_key"]
    size = max(sum(p.stat().st_size for p in entry_files(cache, key)) for key in keys.values())
    limit_gb = str(2.5 * size / 1e9)  # room for two entries, not three
    code, events, _ = embed(data, "a", cache, tmp_path / "hit.tif", "--window", "64",
                            env={"TERRAPROBE_CACHE_MAX_GB": limit_gb})  # touch a64: now the newest
    assert code == 0 and result(events)["stats"]["cache_hit"] is True
    code, events, stderr = embed(data, "b", cache, tmp_path / "b.tif", "--cache-max-gb", limit_gb)
    assert code == 0, stderr
    keys["b"] = result(events)["stats"]["cache_key"]
    assert any("least recently used" in e.get("message", "") for e in events)
    assert all(p.is_file() for name in ("a64", "b") for p in entry_files(cache, keys[name]))
    assert not any(p.exists() for p in entry_files(cache, keys["a96"]))
    assert outputs_equal(tmp_path / "b.tif", primed["b"])
    code, events, _ = run_events("cache", "info", "--cache-dir", cache,
                                 env={"TERRAPROBE_CACHE_MAX_GB": limit_gb})
    stats = result(events)["stats"]
    assert code == 0 and stats["entries"] == 2 and stats["limit_bytes"] == int(float(limit_gb) * 1e9)
    assert stats["total_bytes"] <= stats["limit_bytes"]


def test_cache_command_info_list_verify_clear(data, primed, cache) -> None:
    code, events, _ = run_events("cache", "list", "--cache-dir", cache)
    entries = result(events)["stats"]["entries"]
    assert code == 0 and sorted(e["key"] for e in entries) == sorted([primed["key_a"], primed["key_b"]])
    assert {e["inputs"]["optical"] for e in entries} == {str(data["a"]), str(data["b"])}
    assert all(e["size_bytes"] > 0 and e["last_used"] > 0 for e in entries)
    code, events, _ = run_events("cache", "info", "--cache-dir", cache, "--cache-max-gb", "3")
    stats = result(events)["stats"]
    assert code == 0 and stats["entries"] == 2 and stats["limit_bytes"] == 3 * 10**9
    assert stats["total_bytes"] == sum(e["size_bytes"] for e in entries)

    flip(cache / f"{primed['key_b']}_pca.tif")
    code, events, _ = run_events("cache", "verify", "--cache-dir", cache)
    stats = result(events)["stats"]
    assert code == 0 and stats["checked"] == 2 and stats["good"] == 1
    assert [r["key"] for r in stats["removed"]] == [primed["key_b"]]
    assert "checksum" in stats["removed"][0]["reason"]
    assert not any(p.exists() for p in entry_files(cache, primed["key_b"]))

    code, events, _ = run_events("cache", "clear", "--cache-dir", cache, "--older-than", "1")
    assert code == 0 and result(events)["stats"]["removed"] == 0
    _age(cache / f"{primed['key_a']}.json", 3 * 86400)
    (cache / f".{primed['key_a']}.q1.part.tif").write_bytes(b"partial")
    code, events, _ = run_events("cache", "clear", "--cache-dir", cache, "--older-than", "2")
    stats = result(events)["stats"]
    assert code == 0 and stats["removed"] == 1 and stats["freed_bytes"] > 0
    code, events, _ = run_events("cache", "clear", "--cache-dir", cache)
    assert code == 0 and result(events)["stats"]["temporaries_removed"] == 1
    assert list(cache.iterdir()) == []


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` bind-mounted read-only onto itself (skips where mounting is not allowed)."""
    if subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", folder], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield folder
    finally:
        subprocess.run(["umount", folder], capture_output=True)


def _unwritable_run(data, primed, cache: Path, tmp_path: Path) -> list[str]:
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    code, events, stderr = embed(data, "a", cache, tmp_path / "out.tif", env={"TMPDIR": str(private_tmp)})
    assert code == 0, stderr
    assert outputs_equal(tmp_path / "out.tif", primed["a"])
    assert list(private_tmp.iterdir()) == []  # the private cache folder is gone
    return warnings(events)


def test_cache_folder_under_a_regular_file_warns_and_computes(data, primed, tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    found = _unwritable_run(data, primed, tmp_path / "file" / "cache", tmp_path)
    assert len(found) == 1 and "is not writable" in found[0] and "without caching" in found[0]


def test_read_only_cache_folder_serves_good_entries_and_computes_the_rest(data, primed, cache,
                                                                          tmp_path) -> None:
    shutil.rmtree(cache)
    cache.mkdir()
    shutil.copy2(primed["cache"] / f"{primed['key_b']}.tif", cache)  # a bad (incomplete) neighbour
    for path in entry_files(primed["cache"], primed["key_a"]):
        shutil.copy2(path, cache)
    flip(cache / f"{primed['key_a']}.tif")
    with read_only(cache):
        found = _unwritable_run(data, primed, cache, tmp_path)
        assert len(found) == 1 and "could not be removed" in found[0] and "without caching" in found[0]
        before = sorted(p.name for p in cache.iterdir())
        shutil.rmtree(tmp_path / "tmpdir")
        code, events, stderr = embed(data, "b", cache, tmp_path / "b.tif")  # miss: not writable
        assert code == 0, stderr
        assert len(warnings(events)) == 1 and "is not writable" in warnings(events)[0]
        assert outputs_equal(tmp_path / "b.tif", primed["b"])
        assert sorted(p.name for p in cache.iterdir()) == before
    shutil.rmtree(cache)
    shutil.copytree(primed["cache"], cache)
    with read_only(cache):
        code, events, stderr = embed(data, "a", cache, tmp_path / "hit.tif")
        assert code == 0, stderr
        assert result(events)["stats"]["cache_hit"] is True and warnings(events) == []
        assert outputs_equal(tmp_path / "hit.tif", primed["a"])


def _pam(bands: int, band_xml: str) -> str:
    """A GDAL ``.aux.xml`` sidecar with ``band_xml`` in each band's element."""
    return "<PAMDataset>" + "".join(f'<PAMRasterBand band="{band}">{band_xml}</PAMRasterBand>'
                                    for band in range(1, bands + 1)) + "</PAMDataset>\n"


def test_a_sidecar_declaring_nodata_is_part_of_the_key_but_statistics_are_not(data, tmp_path) -> None:
    raster = tmp_path / "scene.tif"
    with rasterio.open(data["a"]) as src:
        pixels, profile = src.read(), src.profile
        descriptions = src.descriptions
    pixels[:, :32, :32] = 1234  # a 4 x 4 patch corner of one value, not (yet) declared as nodata
    with rasterio.open(raster, "w", **profile) as dst:
        dst.write(pixels)
        dst.descriptions = descriptions
    cache, sidecar = tmp_path / "cache", Path(f"{raster}.aux.xml")
    before = raster.read_bytes()
    code, events, stderr = embed(data, raster, cache, tmp_path / "first.tif")
    assert code == 0, stderr
    first = result(events)["stats"]
    sidecar.write_text(_pam(len(pixels), '<Metadata><MDI key="STATISTICS_MEAN">812.5</MDI>'
                                         '<MDI key="STATISTICS_STDDEV">70.1</MDI></Metadata>'))
    code, events, stderr = embed(data, raster, cache, tmp_path / "statistics.tif")
    assert code == 0, stderr
    assert result(events)["stats"]["cache_hit"] is True  # QGIS computing statistics does not miss
    sidecar.write_text(_pam(len(pixels), "<NoDataValue>1234</NoDataValue>"))
    code, events, stderr = embed(data, raster, cache, tmp_path / "nodata.tif")
    assert code == 0, stderr
    second = result(events)["stats"]
    assert second["cache_hit"] is False and second["cache_key"] != first["cache_key"]
    assert (first["valid_patches"], second["valid_patches"]) == (144, 128)
    assert np.isnan(read(tmp_path / "nodata.tif")[:, :4, :4]).all()
    assert raster.read_bytes() == before
