"""``embed --model galileo-nano`` on real rasters of every sensor: channel groups, no spectral fill.

Galileo takes channel groups (S1, S2_RGB, S2_Red_Edge, S2_NIR_10m, S2_NIR_20m, S2_SWIR, NDVI) and
masks the ones a raster does not fill. Each case embeds a small crop of a real raster with the
bundled weights and checks the groups the log names, that nothing was spectrally filled, and the
embedding raster (128 finite bands, the model recorded).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window, bounds

from backend.cli import main
from backend.inference.galileo_inputs import DEFAULT_MONTH, GalileoChannels, acquisition_month
from backend.io.simulate import write_landsat_from_s2

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
S1_FILE = "sen1floods11/Spain_7370579_S1Hand.tif"
NAIP_FILE = "naip-opengeos/m_4709963_se_14_1_20200831.tif"
RGB_FILE = "rasterio-rgb-byte/RGB.byte.tif"
#: A 64 x 64 px crop (one 64 px tile) of a raster: keeps every case to a few seconds.
CROP = Window(192, 192, 64, 64)
ALL_GROUPS = ("S1", "S2_RGB", "S2_Red_Edge", "S2_NIR_10m", "S2_NIR_20m", "S2_SWIR", "NDVI")


def _crop_bounds(path: Path, window: Window = CROP) -> list[str]:
    with rasterio.open(path) as src:
        return [repr(v) for v in bounds(window, src.transform)]


def _embed(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str | Path,
           name: str = "emb") -> tuple[dict, list[str], Path]:
    """Run ``embed`` with galileo-nano; returns the result stats, the log lines and the output."""
    capsys.readouterr()
    out = tmp_path / f"{name}.tif"
    code = main(["embed", *[str(a) for a in args], "--model", "galileo-nano", "--window", "64",
                 "--overlap", "0", "--dtype", "float32", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(out), "--events", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    logs = [e["message"] for e in events if e["event"] in ("log", "warning")]
    return events[-1]["stats"], logs, out


def _groups_line(logs: list[str]) -> str:
    return next(line for line in logs if line.startswith("galileo groups used:"))


def _check_embedding(out: Path, used: tuple[str, ...]) -> np.ndarray:
    with rasterio.open(out) as src:
        values, tags = src.read(), src.tags()
    assert values.shape[0] == 128 and np.isfinite(values).all()
    assert tags["TERRAPROBE_MODEL"] == "galileo-nano"
    assert tags["TERRAPROBE_GALILEO_GROUPS"] == ",".join(used)
    assert tags.get("TERRAPROBE_SPECTRAL_FILL", "none") == "none"
    return values


def _expect_groups(logs: list[str], used: tuple[str, ...]) -> None:
    masked = ", ".join(g for g in ALL_GROUPS if g not in used) or "none"
    assert _groups_line(logs).startswith(f"galileo groups used: {', '.join(used)}; masked: {masked};")
    assert not any(line.startswith("spectral fill:") for line in logs), logs


@pytest.fixture(scope="module")
def landsat_oli_4band(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Landsat 8 OLI B2-B5 (blue, green, red, NIR), Collection 2 DN, simulated from Sentinel-2."""
    folder = tmp_path_factory.mktemp("landsat")
    full = write_landsat_from_s2(shared_data / S2_FILE, folder / "oli.tif")
    with rasterio.open(full) as src:
        profile = dict(src.profile, count=4)
        keep = [src.descriptions.index(f"SR_B{n}") + 1 for n in (2, 3, 4, 5)]
        with rasterio.open(folder / "oli_b2_b5.tif", "w", **profile) as dst:
            dst.write(src.read(keep))
            dst.descriptions = tuple(src.descriptions[i - 1] for i in keep)
            dst.update_tags(**src.tags())
    return folder / "oli_b2_b5.tif"


def test_landsat_oli_4band_embeds_without_band_filling(landsat_oli_4band, tmp_path, capsys) -> None:
    area = _crop_bounds(landsat_oli_4band, Window(64, 64, 64, 64))
    stats, logs, out = _embed(tmp_path, capsys, "--optical", landsat_oli_4band, "--bounds", *area)
    used = ("S2_RGB", "S2_NIR_10m", "S2_NIR_20m", "NDVI")  # OLI B5 (865 nm) is both B08 and B8A
    _expect_groups(logs, used)
    assert any(line.startswith("sensor: landsat-oli") for line in logs)
    assert stats["embedding"] == "galileo_encodings" and stats["embedding_dim"] == 128
    _check_embedding(out, used)


def test_rgbn_and_rgb_embed_with_their_groups_only(shared_data, tmp_path, capsys) -> None:
    naip = shared_data / NAIP_FILE
    _, logs, out = _embed(tmp_path, capsys, "--optical", naip, "--bounds", *_crop_bounds(naip), name="naip")
    rgbn = ("S2_RGB", "S2_NIR_10m", "S2_NIR_20m", "NDVI")
    _expect_groups(logs, rgbn)
    assert "month August (date in the name m_4709963_se_14_1_20200831.tif)" in _groups_line(logs)
    _check_embedding(out, rgbn)
    rgb = shared_data / RGB_FILE
    _, logs, out = _embed(tmp_path, capsys, "--optical", rgb, "--bounds", *_crop_bounds(rgb), name="rgb")
    _expect_groups(logs, ("S2_RGB",))
    assert "month July (no date" in _groups_line(logs)
    _check_embedding(out, ("S2_RGB",))


def test_sentinel1_alone_and_with_sentinel2(shared_data, tmp_path, capsys) -> None:
    s1, s2 = shared_data / S1_FILE, shared_data / S2_FILE
    area = _crop_bounds(s2)
    _, logs, out = _embed(tmp_path, capsys, "--sar", s1, "--bounds", *area, name="s1")
    _expect_groups(logs, ("S1",))
    radar = _check_embedding(out, ("S1",))
    _, logs, out = _embed(tmp_path, capsys, "--sar", s1, "--optical", s2, "--bounds", *area, name="s1s2")
    _expect_groups(logs, ALL_GROUPS)
    both = _check_embedding(out, ALL_GROUPS)
    assert not np.allclose(radar, both, atol=1e-2)  # the optical groups take part


def test_linear_power_radar_gives_the_same_embeddings_as_db(shared_data, tmp_path, capsys) -> None:
    s1 = shared_data / S1_FILE
    power = tmp_path / "s1_power.tif"
    with rasterio.open(s1) as src, rasterio.open(power, "w", **src.profile) as dst:
        dst.write((10.0 ** (src.read().astype(np.float64) / 10.0)).astype(np.float32))
        dst.descriptions = src.descriptions
    area = _crop_bounds(s1)
    _, logs_db, out_db = _embed(tmp_path, capsys, "--sar", s1, "--bounds", *area, name="db")
    _, logs_power, out_power = _embed(tmp_path, capsys, "--sar", power, "--bounds", *area, name="power")
    assert any(line.startswith("radar units: linear") for line in logs_power), logs_power
    assert any(line.startswith("radar units: db") for line in logs_db), logs_db
    np.testing.assert_allclose(_check_embedding(out_power, ("S1",)), _check_embedding(out_db, ("S1",)),
                               atol=2e-4)


def test_pipeline_equals_the_encoder_on_the_same_pixels(shared_data, tmp_path, capsys) -> None:
    """One 64 px tile through ``embed`` equals the encoder called by hand (DN, NDVI, 2-std rule)."""
    from backend.models.galileo import (
        GALILEO_SPACE_TIME_BANDS,
        galileo_ndvi,
        load_galileo,
        normalise_space_time,
    )
    from backend.paths import MODELS_DIR

    s2 = shared_data / S2_FILE
    _, _, out = _embed(tmp_path, capsys, "--optical", s2, "--bounds", *_crop_bounds(s2), "--month", "3")
    with rasterio.open(s2) as src:
        names = [d.replace("B", "B0") if len(d) == 2 else d for d in src.descriptions]
        raw = np.zeros((64, 64, len(GALILEO_SPACE_TIME_BANDS)), np.float32)
        for channel, band in enumerate(GALILEO_SPACE_TIME_BANDS):
            if band in names:
                raw[..., channel] = src.read(names.index(band) + 1, window=CROP)
    red, nir = (GALILEO_SPACE_TIME_BANDS.index(b) for b in ("B04", "B08"))
    raw[..., -1] = galileo_ndvi(raw[..., red], raw[..., nir])
    mask = torch.zeros(64, 8, 8, 1, 7)
    mask[..., 0] = 1  # S1 absent
    encoder = load_galileo(MODELS_DIR / "galileo-nano.safetensors")
    # each 8 x 8 patch on its own (galileo_inputs.GALILEO_TILING): 64 one-token windows
    pixels = torch.from_numpy(normalise_space_time(raw)).reshape(8, 8, 8, 8, -1).transpose(1, 2)
    with torch.inference_mode():
        expected = encoder.embed_space_time(pixels.reshape(64, 8, 8, 1, -1), mask,
                                            torch.full((64, 1), 2))
    expected = expected.reshape(8, 8, -1).permute(2, 0, 1).numpy()
    np.testing.assert_allclose(_check_embedding(out, ALL_GROUPS[1:]), expected, atol=1e-4)


def test_a_patch_vector_does_not_depend_on_where_the_tile_starts(shared_data, tmp_path, capsys) -> None:
    """The same ground embedded from two tile origins one patch apart gives the same vectors.

    (In one shared window Galileo's vectors carried the patch's position: cluster maps showed stripes.)
    """
    s2 = shared_data / S2_FILE
    moved = Window(CROP.col_off + 8, CROP.row_off, CROP.width, CROP.height)
    _, _, first = _embed(tmp_path, capsys, "--optical", s2, "--bounds", *_crop_bounds(s2), name="a")
    _, _, shifted = _embed(tmp_path, capsys, "--optical", s2, "--bounds", *_crop_bounds(s2, moved), name="b")
    a, b = _check_embedding(first, ALL_GROUPS[1:]), _check_embedding(shifted, ALL_GROUPS[1:])
    np.testing.assert_allclose(a[:, :, 1:], b[:, :, :-1], atol=1e-4)


def test_month_from_metadata_name_option_or_default(tmp_path) -> None:
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint8"}
    tagged = tmp_path / "scene.tif"
    with rasterio.open(tagged, "w", **profile) as dst:
        dst.update_tags(ACQUISITION_DATE="2021-03-14T10:20:00Z", TIFFTAG_DATETIME="2024:12:01 10:00:00")
    named = tmp_path / "S2B_MSIL2A_20200223T032739_N9999" / "B04.tif"
    named.parent.mkdir()
    with rasterio.open(named, "w", **profile):
        pass
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", **profile):
        pass
    with rasterio.open(tagged) as a, rasterio.open(named) as b, rasterio.open(plain) as c:
        assert acquisition_month(a) == (2, "metadata ACQUISITION_DATE=2021-03-14T10:20:00Z")
        assert acquisition_month(b) == (1, "date in the name S2B_MSIL2A_20200223T032739_N9999")
        assert acquisition_month(c)[0] == DEFAULT_MONTH == 6
        assert acquisition_month(c, 11) == (10, "declared with --month")
        with pytest.raises(Exception, match="--month must be 1"):
            acquisition_month(c, 13)


def test_groups_need_all_their_bands() -> None:
    tm_like = GalileoChannels(("B02", "B03", "B04", "B07", "B08", "B8A", "B11", "B12"), False, 6, "x")
    assert tm_like.used == ["S2_RGB", "S2_NIR_10m", "S2_NIR_20m", "S2_SWIR", "NDVI"]
    assert tm_like.masked == ["S1", "S2_Red_Edge"]
    assert GalileoChannels(("B02", "B03", "B04"), True, 0, "x").used == ["S1", "S2_RGB"]
    assert GalileoChannels((), True, 0, "x").key() == {"groups": ["S1"], "month": 0, "patches": "alone"}


def test_a_bad_band_option_is_one_clear_error(shared_data, tmp_path, capsys) -> None:
    s2 = shared_data / S2_FILE
    code = main(["embed", "--optical", str(s2), "--optical-bands", "1", "--model", "galileo-nano",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "emb.tif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: --optical-bands lists 1 bands"), err
    assert not (tmp_path / "emb.tif").exists()


def test_the_model_file_carries_the_pretraining_statistics() -> None:
    """The pipeline normalises with the model file's statistics: they are Galileo's own."""
    from backend.inference.model import model_config
    from backend.models.galileo import GALILEO_SPACE_TIME_STATS
    from backend.paths import MODELS_DIR

    config = model_config(MODELS_DIR / "galileo-nano.safetensors")
    assert config.is_galileo
    for modality in config.modalities.values():
        for band, mean, std in zip(modality.bands, modality.mean, modality.std, strict=True):
            assert (mean, std) == GALILEO_SPACE_TIME_STATS[band]
