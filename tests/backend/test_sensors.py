"""Sensors beyond Sentinel-2: presets, detection, wavelength matching, spectral fill, model choice.

Real rasters: the Sen1Floods11 S2 chip, Landsat simulated from it (``backend.io.simulate``), NAIP
(4-band uint8) and rasterio's RGB.byte (3-band uint8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from backend.contract.sensors import PRESETS, SENSOR_NAMES, detect_sensor, match_by_wavelength
from backend.errors import UserError
from backend.inference.inputs import InputSet
from backend.inference.model import DEFAULT_MODEL_NAME, bundled_model_for, bundled_models
from backend.io.rasters import map_bands
from backend.io.sensor_bands import map_optical_bands
from backend.io.simulate import write_landsat_from_s2, write_rgbn_from_s2
from backend.models.config import S2_BANDS, ModalityConfig, ModelConfig
from tests.backend.conftest import run_backend

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
NAIP_FILE = "naip-opengeos/m_4709963_se_14_1_20200831.tif"
RGB_FILE = "rasterio-rgb-byte/RGB.byte.tif"
USGS_OLI = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]


@pytest.fixture(scope="module")
def landsat(shared_data, tmp_path_factory) -> Path:
    """Landsat 8 OLI Collection 2 L2 DN simulated from the Sen1Floods11 S2 chip (30 m, SR_B1..SR_B7)."""
    return write_landsat_from_s2(shared_data / S2_FILE, tmp_path_factory.mktemp("landsat") / "landsat.tif")


def test_landsat_b5_maps_to_b8a_never_b05() -> None:
    plan = match_by_wavelength("landsat-oli", USGS_OLI, S2_BANDS)
    sources = {s.model_band: s for s in plan.sources}
    assert sources["B8A"].weights == ((5, 1.0),) and not sources["B8A"].approximated
    assert sources["B05"].approximated and dict(sources["B05"].weights)[4] > 0.5  # mostly red, not NIR
    assert [sources[b].weights for b in ("B02", "B03", "B04", "B11", "B12")] == \
        [((i, 1.0),) for i in (2, 3, 4, 6, 7)]
    assert plan.approximated == ["B05", "B06", "B07", "B09"]
    # Plain Landsat names once the sensor is known: B5 is NIR too
    plain = match_by_wavelength("landsat-oli", ["B1", "B2", "B3", "B4", "B5", "B6", "B7"], ["B05", "B8A"])
    assert plain.sources[1].weights == ((5, 1.0),) and plain.sources[0].approximated


def test_detection_on_real_rasters_and_usgs_names(shared_data, landsat) -> None:
    with rasterio.open(landsat) as src:
        assert src.descriptions == tuple(USGS_OLI) and src.tags()["SPACECRAFT_ID"] == "LANDSAT_8"
        assert detect_sensor(src.descriptions)[0] == "landsat-oli"  # by the names alone
        assert detect_sensor(src.descriptions, src.tags(), src.count, src.dtypes[0])[0] == "landsat-oli"
    assert detect_sensor(["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"])[0] == "landsat-tm"
    assert detect_sensor([None] * 7, {"SPACECRAFT_ID": "LANDSAT_9"})[0] == "landsat-oli"
    assert detect_sensor(["Band 1", "Band 2", "Band 3", "Band 4"], None, 4, "uint8")[0] == "rgbn"
    expected = {S2_FILE: "sentinel2", NAIP_FILE: "rgbn", RGB_FILE: "rgb"}
    for name, sensor in expected.items():
        with rasterio.open(shared_data / name) as src:
            found, reason = detect_sensor(src.descriptions, src.tags(), src.count, src.dtypes[0])
            assert found == sensor, (name, reason)
    assert set(PRESETS) == set(SENSOR_NAMES) - {"auto"}


def test_spectral_fill_lies_between_neighbours_and_is_flagged(landsat) -> None:
    with InputSet(landsat, None, ModelConfig()) as inputs:
        assert inputs.sensor.sensor == "landsat-oli" and inputs.sensor.filled == ["B05", "B06", "B07", "B09"]
        assert any("B05, B06, B07, B09" in w and "spectral fill" in w for w in inputs.warnings)
        modality = inputs.modalities["optical"]
        raw = modality.view.read(modality.bands, window=inputs._absolute(Window(0, 0, 64, 64)))
        values = modality.prepare(raw)
    assert values.shape == (12, 64, 64)
    band = {name: values[i] for i, name in enumerate(S2_BANDS)}
    for filled, low, high in (("B05", "B04", "B8A"), ("B06", "B04", "B8A"), ("B07", "B04", "B8A"),
                              ("B09", "B8A", "B11")):
        lower, upper = np.minimum(band[low], band[high]), np.maximum(band[low], band[high])
        assert np.all(band[filled] >= lower - 1e-3) and np.all(band[filled] <= upper + 1e-3), filled
        assert not np.allclose(band[filled], band[low])
    assert np.array_equal(band["B08"], band["B8A"])  # both from SR_B5, the only NIR band


def test_sampled_statistics_see_the_filled_bands(landsat) -> None:
    config = ModelConfig(modalities={"optical": ModalityConfig(list(S2_BANDS))})  # no statistics
    with InputSet(landsat, None, config) as inputs:
        modality = inputs.modalities["optical"]
        assert modality.stats_from == "sampled" and len(modality.mean) == 12
        mean = dict(zip(S2_BANDS, modality.mean))
    assert min(mean["B04"], mean["B8A"]) < mean["B05"] < max(mean["B04"], mean["B8A"])


def test_sentinel2_maps_by_name_as_before_and_explicit_bands_win(shared_data, landsat) -> None:
    with rasterio.open(shared_data / S2_FILE) as src:
        mapping = map_optical_bands(src, S2_BANDS)
        assert mapping.sensor == "sentinel2" and mapping.matrix is None
        assert mapping.bands == map_bands(src, S2_BANDS) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    with rasterio.open(landsat) as src:
        explicit = map_optical_bands(src, S2_BANDS, "1,2,3,4,4,4,5,5,5,5,6,7")
        assert explicit.bands == [1, 2, 3, 4, 4, 4, 5, 5, 5, 5, 6, 7] and explicit.matrix is None
        with pytest.raises(UserError, match="B05, B06, B07, B09"):
            map_optical_bands(src, S2_BANDS, spectral_fill="off")
        adapted = map_optical_bands(src, ["B01", "B02", "B03", "B04", "B8A", "B11", "B12"])
        assert adapted.bands == [1, 2, 3, 4, 5, 6, 7] and adapted.matrix is None and not adapted.filled


def test_simulated_landsat_is_collection2_scaled_at_30m(shared_data, landsat, tmp_path) -> None:
    with rasterio.open(shared_data / S2_FILE) as s2, rasterio.open(landsat) as ls:
        assert ls.dtypes[0] == "uint16" and ls.nodata == 0 and ls.crs == s2.crs
        assert ls.res[0] == pytest.approx(3 * s2.res[0], rel=0.02)  # ~10 m -> ~30 m
        red = ls.read(4).astype(float) * 2.75e-5 - 0.2
        s2_red = s2.read(4).astype(float) / 10000
    assert red.mean() == pytest.approx(s2_red.mean(), rel=0.02)
    folder = next((shared_data / "major-tom-core").rglob("B8A.tif")).parent  # one file per band, 10-60 m
    tm = write_landsat_from_s2(folder, tmp_path / "tm.tif", sensor="landsat-tm")
    with rasterio.open(tm) as src:
        assert src.res == pytest.approx((30.0, 30.0)) and src.count == 6
        assert detect_sensor(src.descriptions)[0] == "landsat-tm"
    rgbn = write_rgbn_from_s2(shared_data / S2_FILE, tmp_path / "rgbn.tif")
    with rasterio.open(rgbn) as src:
        assert src.count == 4 and src.dtypes[0] == "uint8"
        assert detect_sensor(src.descriptions, src.tags(), src.count, src.dtypes[0])[0] == "rgbn"


def test_bundled_model_follows_the_sensor() -> None:
    default, why = bundled_model_for("sentinel2")
    assert default.stem == DEFAULT_MODEL_NAME
    if dict((p, s) for p, s, _ in bundled_models()).get(default) == "any":  # galileo-nano: every sensor
        for sensor, radar in (("landsat-oli", False), ("landsat-oli", True), ("rgb", False), (None, True)):
            assert bundled_model_for(sensor, radar) == (default, why) and "no spectral fill" in why
        return
    landsat_models = [p for p, sensor, _ in bundled_models() if sensor == "landsat-oli"]
    chosen, why = bundled_model_for("landsat-oli")
    if landsat_models:
        assert chosen == landsat_models[0] and "adapted to landsat-oli" in why
        assert bundled_model_for("landsat-oli", radar=True)[0] == default  # it has no radar encoder
    else:
        assert chosen == default and "spectral fill" in why
    assert bundled_model_for("rgb")[0] == default
    old = ModelConfig.from_dict({k: v for k, v in ModelConfig().to_dict().items() if k != "sensor"})
    assert old.sensor == "sentinel2"


def test_cli_embed_and_cluster_simulated_landsat_with_defaults(landsat, tmp_path) -> None:
    emb = tmp_path / "emb.tif"
    cache = tmp_path / "cache"
    done = run_backend("embed", "--optical", landsat, "--out", emb, "--cache-dir", cache, "--events", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    text = "\n".join(str(e.get("message", "")) for e in events)
    assert "sensor: landsat-oli" in text and "optical bands by wavelength" in text and "B8A<-SR_B5" in text
    if "galileo groups used: S2_RGB" in text:  # the default galileo-nano: channel groups, no fill
        assert not any(e.get("event") == "warning" and "spectral fill" in e.get("message", "")
                       for e in events)
    elif any(sensor == "landsat-oli" for _, sensor, _ in bundled_models()):
        assert "adapted to landsat-oli" in text  # the X-STARS Landsat model: no bands to fill
    else:
        assert any(e.get("event") == "warning" and "spectral fill" in e.get("message", "") for e in events)
    assert "model: " in text
    clusters = tmp_path / "clusters.tif"
    done = run_backend("cluster", "--optical", landsat, "--k", "4", "--seed", "0", "--out", clusters,
                       "--cache-dir", cache)
    assert done.returncode == 0, done.stderr[-2000:]
    with rasterio.open(landsat) as src, rasterio.open(emb) as e, rasterio.open(clusters) as c:
        assert e.crs == src.crs == c.crs and e.transform.a == pytest.approx(src.transform.a * 8)
        assert c.transform.a == pytest.approx(src.transform.a * 8)
        labels = c.read(1)
        tags = e.tags()
    assert len(np.unique(labels[labels > 0])) > 1
    assert tags["TERRAPROBE_SENSOR"] == "landsat-oli" and tags["TERRAPROBE_OPTICAL_UNITS"] == "landsat-c2"
    assert tags["TERRAPROBE_MODEL"] == bundled_model_for("landsat-oli")[0].stem
    assert len(tags["TERRAPROBE_MODEL_HASH"]) == 64


def test_bad_sensor_options_give_one_error_line_and_write_nothing(landsat, tmp_path) -> None:
    for option, value in (("--sensor", "landsat"), ("--spectral-fill", "maybe")):
        out = tmp_path / "emb.tif"
        done = run_backend("embed", "--optical", landsat, option, value, "--out", out,
                           "--cache-dir", tmp_path)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and option in errors[0]
        assert not out.exists() and not list(tmp_path.glob("*.tif"))


def test_sensors_command_lists_presets_and_plans_a_raster(landsat) -> None:
    done = run_backend("sensors", "--events", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    presets = json.loads(done.stdout.splitlines()[-1])["stats"]["presets"]
    assert set(presets) == set(PRESETS) and presets["landsat-oli"]["optical_units"] == "landsat-c2"
    done = run_backend("sensors", "--optical", landsat, "--events", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    facts = json.loads(done.stdout.splitlines()[-1])["stats"]
    assert facts["sensor"] == "landsat-oli" and "B8A<-SR_B5" in facts["plan"]
