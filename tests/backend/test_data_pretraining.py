"""Pretraining data pipeline on the real shared rasters: layouts, resampling, determinism, bad inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.cli import main
from backend.errors import UserError
from backend.training.data import (
    DataConfig,
    PairedChipDataset,
    canonical_band,
    compute_statistics,
    discover_sources,
    make_loader,
)


def _link_tree(source: Path, target: Path, skip: tuple[str, ...] = ()) -> None:
    """Mirror ``source`` into ``target`` with symlinked files (the shared data is never copied)."""
    for root, _dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if not any(s in str(rel / name) for s in skip):
                (target / rel / name).symlink_to(Path(root) / name)


@pytest.fixture(scope="module")
def ben_sources(shared_data: Path):
    config = DataConfig()
    report = discover_sources([str(shared_data / "bigearthnet-v1")], config, crop=32)
    return config, report


def test_canonical_band_names() -> None:
    assert [canonical_band(b) for b in ("B1", "b01", "B8a", "B8A", "B10", "vv")] == \
        ["B01", "B01", "B8A", "B8A", "B10", "VV"]


def test_three_layouts_are_found_and_paired(shared_data: Path, ben_sources) -> None:
    config, ben = ben_sources
    assert len(ben.sources) == 6 and not ben.skipped
    assert any("without S1" in note for note in ben.notes)  # the 8 extra S2 patches
    ssl = discover_sources([str(shared_data / "ssl4eo-s12")], config, crop=32)
    assert len(ssl.sources) == 2
    # S1 2020-06-07 is paired with S2 2020-06-04, S1 2020-09-03 with 2020-08-23 (nearest dates).
    pairs = {Path(s.bands["sar"][0].path).parent.name[17:25]: Path(s.bands["optical"][0].path).parent.name[:8]
             for s in ssl.sources}
    assert pairs == {"20200607": "20200604", "20200903": "20200823"}
    floods = discover_sources([str(shared_data / "sen1floods11")], config, crop=32)
    (scene,) = floods.sources
    # 13-band S2 file: B10 dropped by name, the 12 model bands picked in model order.
    assert [r.index for r in scene.bands["optical"]] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert scene.chips(32) == 16 * 16


def test_per_band_files_resampled_and_stacked(shared_data: Path) -> None:
    config = DataConfig()
    report = discover_sources([str(shared_data / "ssl4eo-s12")], config, crop=64)
    dataset = PairedChipDataset(report.sources, config, 64, seed=3, normalize=False)
    raw = dataset.read(0)
    values, valid = raw["optical"]
    assert values.shape == (12, 64, 64) and valid.all()
    assert raw["sar"][0].shape == (2, 64, 64)
    # The 60 m band B01 (44 px files) is upsampled smoothly; the 10 m B02 keeps pixel detail.
    b01, b02 = values[0], values[1]
    assert np.abs(np.diff(b01, axis=1)).mean() < np.abs(np.diff(b02, axis=1)).mean()
    assert -40 < raw["sar"][0].mean() < 5  # dB backscatter, warped from the S1 grid
    dataset.close()


def test_stream_is_a_pure_function_of_seed_and_item(ben_sources) -> None:
    config, report = ben_sources
    stats = compute_statistics(PairedChipDataset(report.sources, config, 32, normalize=False), 6)
    for name, values in stats.items():
        config.modalities[name].mean, config.modalities[name].std = values["mean"], values["std"]
    first = PairedChipDataset(report.sources, config, 32, seed=7)
    second = PairedChipDataset(report.sources, config, 32, seed=7)
    other = PairedChipDataset(report.sources, config, 32, seed=8)
    for item in (0, 5, 13):
        a, b = first[item], second[item]
        assert torch.equal(a["optical"], b["optical"]) and torch.equal(a["sar"], b["sar"])
        assert float(a["optical"].min()) >= 0.0 and float(a["optical"].max()) <= 1.0
    assert any(first.locate(i) != other.locate(i) for i in range(6))
    # Each epoch visits every source as often as it holds non-overlapping crops (9 of 32 px in 120 px).
    visits = [first.locate(i)[0] for i in range(first.epoch_length)]
    assert first.epoch_length == 54 and all(visits.count(s) == 9 for s in range(6))
    # Batches with 2 worker processes equal the in-process ones, from any start step.
    plain = list(make_loader(first, 3, start_step=2, stop_step=4))
    workers = list(make_loader(second, 3, start_step=2, stop_step=4, workers=2))
    for x, y in zip(plain, workers):
        assert torch.equal(x["item"], y["item"]) and torch.equal(x["optical"], y["optical"])
    assert plain[0]["item"].tolist() == [6, 7, 8]
    # Ranks of a 2-process job read disjoint items.
    rank0 = next(iter(make_loader(first, 3, 0, 1, rank=0, world_size=2)))["item"].tolist()
    rank1 = next(iter(make_loader(first, 3, 0, 1, rank=1, world_size=2)))["item"].tolist()
    assert rank0 == [0, 1, 2] and rank1 == [3, 4, 5]


def test_flips_are_shared_by_both_modalities(shared_data: Path) -> None:
    config = DataConfig()
    report = discover_sources([str(shared_data / "sen1floods11")], config, crop=32)
    flipped = PairedChipDataset(report.sources, config, 32, seed=1, normalize=False)
    plain = PairedChipDataset(report.sources, config, 32, seed=1, normalize=False, flips=False)
    for item in range(12):
        _, _, flip_h, flip_v = flipped.locate(item)
        if flip_h and flip_v:
            a, b = flipped.read(item), plain.read(item)
            for modality in ("sar", "optical"):
                np.testing.assert_array_equal(a[modality][0], b[modality][0][:, ::-1, ::-1])
            return
    pytest.fail("no item flipped both ways in 12 draws")


def test_stats_command_writes_data_config(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "stats.json"
    assert main(["stats", str(shared_data / "bigearthnet-v1"), "--out", str(out), "--samples", "6",
                 "--crop", "32", "--events", "json"]) == 0
    config = DataConfig.load(out)
    assert config.has_stats and config.modalities["optical"].bands[8] == "B8A"
    assert -25 < config.modalities["sar"].mean[0] < 0 and all(s > 0 for s in config.modalities["sar"].std)
    assert config.data == [str(shared_data / "bigearthnet-v1")]


# -- bad inputs -------------------------------------------------------------------------------
def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_unpaired_folder_is_an_error(shared_data: Path, tmp_path: Path, capsys) -> None:
    _link_tree(shared_data / "ssl4eo-s12" / "s1", tmp_path / "ssl" / "s1")
    (tmp_path / "ssl" / "s2c").mkdir()
    message = _error(capsys, ["stats", str(tmp_path / "ssl"), "--out", str(tmp_path / "s.json")])
    assert "unpaired" in message and "0000200" in message
    assert not (tmp_path / "s.json").exists()
    # A BigEarthNet S1 patch whose S2 partner is missing.
    _link_tree(shared_data / "bigearthnet-v1" / "BigEarthNet-S1-Example", tmp_path / "ben")
    message = _error(capsys, ["stats", str(tmp_path / "ben"), "--out", str(tmp_path / "s.json")])
    assert "unpaired" in message and "corresponding" not in message and "S2A_MSIL2A" in message


def test_misaligned_footprints_are_an_error(shared_data: Path, tmp_path: Path, capsys) -> None:
    # S1 of one place paired with S2 of another: the footprints do not overlap.
    root = tmp_path / "ssl"
    _link_tree(shared_data / "ssl4eo-s12" / "s2c", root / "s2c")
    s1 = root / "s1" / "0000200" / "S1A_IW_GRDH_1SDV_20200607T010800"
    s1.mkdir(parents=True)
    ben_s1 = next((shared_data / "bigearthnet-v1" / "BigEarthNet-S1-Example").iterdir())
    for band in ("VV", "VH"):
        (s1 / f"{band}.tif").symlink_to(next(ben_s1.glob(f"*_{band}.tif")))
    message = _error(capsys, ["stats", str(root), "--out", str(tmp_path / "s.json")])
    assert "misaligned" in message
    pair = f"{shared_data / 'sen1floods11' / 'Spain_7370579_S1Hand.tif'}," \
           f"{shared_data / 'eurosat-ms' / 'Forest' / 'Forest_1.tif'}"
    assert "misaligned" in _error(capsys, ["stats", pair, "--out", str(tmp_path / "s.json")])


def test_missing_band_and_empty_folder(shared_data: Path, tmp_path: Path, capsys) -> None:
    _link_tree(shared_data / "bigearthnet-v1", tmp_path / "ben",
               skip=("S2A_MSIL2A_20170613T101031_87_48_B05",))
    message = _error(capsys, ["stats", str(tmp_path / "ben"), "--out", str(tmp_path / "s.json")])
    assert "B05" in message and "missing" in message
    (tmp_path / "empty").mkdir()
    out = ["--out", str(tmp_path / "s.json")]
    assert "no imagery" in _error(capsys, ["stats", str(tmp_path / "empty"), *out])
    assert "not found" in _error(capsys, ["stats", str(tmp_path / "nowhere"), *out])


def test_corrupt_tiles_are_skipped_and_fatal_only_if_all(shared_data: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "ben"
    _link_tree(shared_data / "bigearthnet-v1", root)
    victims = sorted(root.rglob("*_B04.tif"))
    # A truncated file (half of a real tile) and a garbage file.
    real = victims[0].resolve().read_bytes()
    victims[0].unlink()
    victims[0].write_bytes(real[: len(real) // 2])
    victims[1].unlink()
    victims[1].write_bytes(b"this is not a GeoTIFF" * 50)
    report = discover_sources([str(root)], DataConfig(), crop=32)
    assert len(report.sources) == 4 and len(report.skipped) == 2
    assert all("corrupt tile skipped" in s for s in report.skipped)
    assert main(["stats", str(root), "--out", str(tmp_path / "s.json"), "--samples", "2",
                 "--crop", "32"]) == 0
    assert "2 sample(s) skipped" in capsys.readouterr().err
    for victim in victims:
        victim.unlink()
        victim.write_bytes(b"garbage")
    with pytest.raises(UserError, match="no usable samples"):
        discover_sources([str(root)], DataConfig(), crop=32)
