"""Input units on the real shared rasters: detection, declaration, conversion, and the CLI end to end.

The CLI tests embed two copies of the same 256x256 crop in different units with the bundled
model and default options, and require the per-patch cosine of the two embedding rasters >= 0.99.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.windows import Window

from backend.io.units import LINEAR_FLOOR, decide_optical_units, decide_sar_units
from tests.backend.conftest import run_backend

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
S1_FILE = "sen1floods11/Spain_7370579_S1Hand.tif"
S2_BANDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
CROP = Window(128, 128, 256, 256)


def write_crop(source: Path, out: Path, convert=None, dtype: str | None = None,
               tags: dict[str, str] | None = None) -> Path:
    """A 256x256 windowed copy of ``source``, values converted by ``convert`` (band names kept)."""
    with rasterio.open(source) as src:
        data = src.read(window=CROP)
        profile = dict(src.profile, width=CROP.width, height=CROP.height,
                       transform=src.window_transform(CROP))
        descriptions = src.descriptions
    if convert is not None:
        data = convert(data)
    profile.update(dtype=dtype or str(data.dtype), tiled=False, compress="deflate")
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
        dst.descriptions = descriptions
        if tags:
            dst.update_tags(**tags)
    return out


def embed_json(tmp_path: Path, name: str, *args: str | Path) -> tuple[dict, list[dict]]:
    """Run ``embed`` with JSON events; returns the result event and every event."""
    out = tmp_path / f"emb_{name}.tif"
    done = run_backend("embed", *args, "--out", out, "--cache-dir", tmp_path / "cache", "--events", "json")
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "result"
    return events[-1], events


def patch_cosines(a: Path, b: Path) -> np.ndarray:
    with rasterio.open(a) as first, rasterio.open(b) as second:
        x = first.read().reshape(first.count, -1).T.astype(np.float64)
        y = second.read().reshape(second.count, -1).T.astype(np.float64)
    valid = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    assert valid.mean() > 0.9
    x, y = x[valid], y[valid]
    return (x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def _decide_optical(path: Path, bands: list[int], **kwargs):
    with rasterio.open(path) as src:
        return decide_optical_units(src, bands, **kwargs)


def _decide_sar(path: Path, bands: list[int], **kwargs):
    with rasterio.open(path) as src:
        return decide_sar_units(src, bands, **kwargs)


# -- detection on every real product ------------------------------------------------------------
def test_optical_products_are_detected(shared_data) -> None:
    eurosat = sorted((shared_data / "eurosat-ms" / "Forest").glob("*.tif"))[0]
    bigearthnet = sorted((shared_data / "bigearthnet-v1" / "BigEarthNet-S2-Example").glob("*/*_B04.tif"))[0]
    major_tom = sorted((shared_data / "major-tom-core").rglob("B04.tif"))[0]
    ssl4eo_l2a = sorted((shared_data / "ssl4eo-s12" / "s2a").rglob("B4.tif"))[0]
    cases = {
        shared_data / S2_FILE: (S2_BANDS, "dn"),                        # L1C int16 DN
        eurosat: ([1, 2, 3, 4, 5, 6, 7, 8, 13, 9, 11, 12], "dn"),       # L1C uint16 DN
        bigearthnet: ([1], "dn"),                                       # L2A uint16 DN (per-band file)
        major_tom: ([1], "dn"),                                         # L2A uint16 DN (per-band file)
        ssl4eo_l2a: ([1], "dn"),                                        # L2A baseline 02.14
        shared_data / "rstoolbox-sen2/sen2.tif": (list(range(1, 13)), "reflectance"),  # float 0-1
    }
    for path, (bands, expected) in cases.items():
        decision = _decide_optical(path, bands)
        assert decision.units == expected, (path, decision.describe())
        assert not decision.warnings, (path, decision.warnings)
    naip = _decide_optical(shared_data / "naip-opengeos/m_4709963_se_14_1_20200831.tif", [1, 2, 3, 4])
    assert naip.units == "brightness" and "uncalibrated" in naip.warnings[0]
    reflectance = _decide_optical(shared_data / "rstoolbox-sen2/sen2.tif", list(range(1, 13)))
    assert "reflectance (values: float values, p99 0.4" in reflectance.describe()
    assert "-> x 10000" in reflectance.describe()


def test_radar_products_are_detected_and_linear_told_from_amplitude(shared_data) -> None:
    assert _decide_sar(shared_data / S1_FILE, [1, 2]).units == "db"
    for vv in sorted((shared_data / "ssl4eo-s12" / "s1").rglob("VV.tif")):
        assert _decide_sar(vv, [1]).units == "db"
    with rasterio.open(shared_data / S1_FILE) as src:
        db, profile = src.read(), src.profile
    for units, values in (("linear", 10 ** (db / 10)), ("amplitude", 10 ** (db / 20))):
        with MemoryFile() as memory:
            with memory.open(**profile) as dst:
                dst.write(values.astype(np.float32))
            with memory.open() as src:
                decision = decide_sar_units(src, [1, 2])
        assert decision.units == units and not decision.ambiguous, decision.describe()
        back = decision.to_model(values.astype(np.float32))
        finite = np.isfinite(db)
        assert np.allclose(back[finite], db[finite], atol=1e-3)
        assert np.isnan(back[~finite]).all()


def test_metadata_decides_offset_and_scale(shared_data, tmp_path) -> None:
    offset_copy = write_crop(shared_data / S2_FILE, tmp_path / "n0400.tif", lambda d: d + 1000,
                             tags={"BOA_ADD_OFFSET": "-1000"})
    decision = _decide_optical(offset_copy, S2_BANDS)
    assert decision.units == "dn-offset" and "BOA_ADD_OFFSET" in decision.how
    baseline = write_crop(shared_data / S2_FILE, tmp_path / "baseline.tif", lambda d: d + 1000,
                          tags={"PROCESSING_BASELINE": "05.09"})
    assert _decide_optical(baseline, S2_BANDS).units == "dn-offset"
    untagged = write_crop(shared_data / S2_FILE, tmp_path / "untagged.tif", lambda d: d + 1000)
    hinted = _decide_optical(untagged, S2_BANDS)
    assert hinted.units == "dn" and hinted.ambiguous and "--optical-units dn-offset" in hinted.warnings[0]
    scaled = write_crop(shared_data / S2_FILE, tmp_path / "scaled.tif")
    with rasterio.open(scaled, "r+") as dst:
        dst.scales = [1e-4] * dst.count
        dst.offsets = [0.0] * dst.count
    decision = _decide_optical(scaled, S2_BANDS)
    assert decision.units == "scaled" and np.allclose(decision.scale, 1.0)
    with rasterio.open(shared_data / S2_FILE) as src:
        raw = src.read(S2_BANDS, window=Window(0, 0, 32, 32))
    offset = _decide_optical(offset_copy, S2_BANDS)
    assert np.array_equal(offset.to_model(raw + 1000), raw.astype(np.float32))


def test_declared_units_win_with_a_warning_when_the_values_disagree(shared_data) -> None:
    declared = _decide_optical(shared_data / S2_FILE, S2_BANDS, requested="reflectance")
    assert declared.units == "reflectance" and declared.how == "declared"
    assert "not 0-1 reflectance" in declared.warnings[0] and "--optical-units dn" in declared.warnings[0]
    radar = _decide_sar(shared_data / S1_FILE, [1, 2], requested="linear")
    assert radar.units == "linear" and "--sar-units db" in radar.warnings[0]
    values = np.array([[[0.0, -0.01, 0.05, np.nan]], [[1e-9, 0.02, 1.0, 0.5]]], np.float32)
    converted = radar.to_model(values)
    assert converted[0, 0, 0] == pytest.approx(10 * np.log10(LINEAR_FLOOR))
    assert converted[0, 0, 1] == pytest.approx(-50.0) and np.isnan(converted[0, 0, 3])
    assert converted[1, 0, 2] == pytest.approx(0.0) and np.isfinite(converted).sum() == 7


# -- the CLI: same crop, different units, same embeddings ---------------------------------------
def test_dn_reflectance_and_offset_copies_embed_alike(shared_data, tmp_path) -> None:
    dn = write_crop(shared_data / S2_FILE, tmp_path / "dn.tif")
    reflectance = write_crop(shared_data / S2_FILE, tmp_path / "refl.tif", lambda d: d / 10000.0, "float32")
    offset = write_crop(shared_data / S2_FILE, tmp_path / "n0400.tif", lambda d: d + 1000,
                        tags={"BOA_ADD_OFFSET": "-1000"})
    results = {name: embed_json(tmp_path, name, "--optical", path)[0]
               for name, path in (("dn", dn), ("refl", reflectance), ("n0400", offset))}
    assert results["dn"]["stats"]["units"] == {"optical": "dn"}
    assert results["refl"]["stats"]["units"] == {"optical": "reflectance"}
    assert results["n0400"]["stats"]["units"] == {"optical": "dn-offset"}
    for name in ("refl", "n0400"):
        cosines = patch_cosines(tmp_path / "emb_dn.tif", tmp_path / f"emb_{name}.tif")
        assert cosines.min() >= 0.99, (name, cosines.min())
        assert results[name]["stats"]["warnings"] == []
    with rasterio.open(tmp_path / "emb_refl.tif") as src:
        assert src.tags()["TERRAPROBE_OPTICAL_UNITS"] == "reflectance"
        assert "p99" in src.tags()["TERRAPROBE_OPTICAL_UNITS_HOW"]


def test_db_and_linear_copies_embed_alike(shared_data, tmp_path) -> None:
    db = write_crop(shared_data / S1_FILE, tmp_path / "db.tif")
    linear = write_crop(shared_data / S1_FILE, tmp_path / "linear.tif", lambda d: 10 ** (d / 10), "float32")
    first, events = embed_json(tmp_path, "db", "--sar", db)
    second, events = embed_json(tmp_path, "linear", "--sar", linear)
    assert first["stats"]["units"] == {"sar": "db"} and second["stats"]["units"] == {"sar": "linear"}
    logs = [e["message"] for e in events if e["event"] == "log" and "units" in e["message"]]
    assert len(logs) == 1 and logs[0].startswith("radar units: linear (values: non-negative values")
    cosines = patch_cosines(tmp_path / "emb_db.tif", tmp_path / "emb_linear.tif")
    assert cosines.min() >= 0.99, cosines.min()
    with rasterio.open(tmp_path / "emb_linear.tif") as src:
        assert src.tags()["TERRAPROBE_SAR_UNITS"] == "linear"


def test_bad_units_value_is_one_clear_error_and_writes_nothing(shared_data, tmp_path) -> None:
    out = tmp_path / "out" / "emb.tif"
    for option in ("--optical-units", "--sar-units"):
        done = run_backend("embed", "--optical", shared_data / S2_FILE, option, "kelvin", "--out", out,
                           "--cache-dir", tmp_path / "cache")
        assert done.returncode == 2
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith(f"error: {option} must be one of auto,")
        assert "Traceback" not in done.stderr
    assert not out.parent.exists() and not (tmp_path / "cache").exists()
