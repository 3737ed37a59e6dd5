"""The Landsat analyst's natural path: USGS names, product IDs, MTL tags, Level-1 DN (issue 19).

Landsat stacks are simulated from real Sentinel-2 rasters (``backend.io.simulate``): Level-1 DN
(TOA reflectance = DN x 2e-5 - 0.1) from the Sen1Floods11 L1C chip, whose flood water puts the
NIR band's 1st percentile below Collection 2's zero reflectance, as in the real Level-1 stack the
issue reports (red p1 6732).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.contract.sensors import (
    SensorMatchError,
    band_key,
    detect_sensor,
    landsat_level,
    landsat_product,
    match_by_wavelength,
    non_optical_bands,
)
from backend.io.simulate import write_landsat_from_s2
from backend.io.units import decide_optical_units
from backend.models.config import S2_BANDS
from tests.backend.conftest import events_of, run_json

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
LABELS = "sen1floods11/Spain_7370579_LabelHand.tif"
RSTOOLBOX = "rstoolbox-sen2/sen2.tif"
L1_ID = "LC08_L1TP_044034_20210508_20210518_02_T1"
L2_ID = "LC09_L2SP_044034_20220508_20220510_02_T1"
OLI_FOUR = ("B2", "B3", "B4", "B5")


def _level1(shared_data: Path, out: Path, prefix: str, resolution_m: float | None = 30) -> Path:
    """A Landsat 8 Level-1 DN stack of B2..B5 simulated from the flood chip, no metadata tags."""
    return write_landsat_from_s2(shared_data / S2_FILE, out, units="landsat-l1", resolution_m=resolution_m,
                                 bands=OLI_FOUR, prefix=prefix, metadata=False)


def _units(path: Path, sensor: str | None):
    with rasterio.open(path) as src:
        return decide_optical_units(src, list(range(1, src.count + 1)), sensor=sensor)


def test_landsat_band_names_product_ids_and_mtl_tags_are_recognised() -> None:
    assert detect_sensor(["B2", "B3", "B4", "B5"])[0] == "landsat-oli"  # no Sentinel-2 meaning
    assert "Landsat 8/9 OLI" in detect_sensor(["B2", "B3", "B4", "B5"])[1]
    assert detect_sensor(["B1", "B2", "B3", "B4", "B5", "B7"])[0] == "landsat-tm"
    assert detect_sensor([f"B{n}" for n in range(1, 12)])[0] == "landsat-oli"
    assert detect_sensor([f"B{n}" for n in range(1, 8)])[0] == "landsat-oli"
    # Sentinel-2 stacks keep their meaning: B08 with the visible bands, B12 with B11
    assert detect_sensor(["B02", "B03", "B04", "B08"])[0] == "sentinel2"
    assert detect_sensor(["B2", "B3", "B4", "B8"])[0] == "sentinel2"
    assert detect_sensor([*(f"B{n}" for n in range(1, 13)), "B8A"])[0] == "sentinel2"
    # USGS file names as band names, or as the raster's own name; MTL tags without a spacecraft
    files = [f"{L2_ID}_SR_B{n}.TIF" for n in (2, 3, 4, 5)]
    assert [band_key(f) for f in files] == ["SR_B2", "SR_B3", "SR_B4", "SR_B5"]
    assert band_key(f"{L1_ID}_B10.TIF") == "B10" and band_key(f"{L2_ID}_ST_B10.TIF") == "ST_B10"
    assert detect_sensor(files)[0] == "landsat-oli"
    found = detect_sensor([None] * 4, name=f"/data/{L1_ID}_stack.tif")
    assert found == ("landsat-oli", f"USGS product ID {L1_ID}")
    assert detect_sensor([None] * 6, name="LT05_L2SP_044034_19950508_20200910_02_T1.tif")[0] == "landsat-tm"
    assert detect_sensor([None] * 4, {"REFLECTANCE_MULT_BAND_4": "2.0E-05"})[0] == "landsat-oli"
    assert detect_sensor([None] * 4, {"SENSOR_ID": "OLI_TIRS"})[0] == "landsat-oli"
    assert landsat_product([f"{L1_ID}_B4.TIF"]).units == "landsat-l1"
    assert landsat_product(["x", f"{L2_ID}_SR_B4.TIF"]).units == "landsat-c2"
    assert landsat_level(["B4"], {"PROCESSING_LEVEL": "L1TP"})[0] == "landsat-l1"
    assert landsat_level(["B4"], {"REFLECTANCE_ADD_BAND_4": "-0.1", "REFLECTANCE_MULT_BAND_4": "2e-5"}) \
        == ("landsat-l1", "MTL tags (REFLECTANCE_ADD_BAND_4, REFLECTANCE_MULT_BAND_4...)")
    assert landsat_level(["SR_B4"]) is None  # names alone do not decide the level


def test_thermal_bands_are_left_out_and_a_thermal_only_raster_is_refused_clearly() -> None:
    names = ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "ST_B10"]
    plan = match_by_wavelength("landsat-oli", names, S2_BANDS)
    assert 5 not in plan.file_bands and non_optical_bands("landsat-oli", names) == ["ST_B10 (thermal 1)"]
    with pytest.raises(SensorMatchError, match=r"ST_B10 \(thermal 1\) measure\(s\) temperature.*--sensor"):
        match_by_wavelength("landsat-oli", ["ST_B10"], S2_BANDS)


def test_level1_units_from_values_names_and_mtl_tags(shared_data, tmp_path) -> None:
    stack = _level1(shared_data, tmp_path / "l1.tif", "B")
    with rasterio.open(stack) as src:
        lowest = min(np.percentile(src.read(b, masked=True).compressed(), 1) for b in range(1, 5))
    assert 5000 < lowest < 7000  # flood water: below any Collection 2 Level-2 value, as in the issue
    decision = _units(stack, "landsat-oli")
    assert decision.units == "landsat-l1" and decision.how.startswith("values:")
    assert np.allclose(decision.scale, 0.2) and np.allclose(decision.offset, -1000)
    assert _units(stack, None).units == "dn"  # without a Landsat sensor the values alone do not say
    tagged = tmp_path / "tagged.tif"
    with rasterio.open(stack) as src:
        profile, data = src.profile, src.read()
    with rasterio.open(tagged, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = OLI_FOUR
        dst.update_tags(SUN_ELEVATION="30.0", REFLECTANCE_MULT_BAND_4="2.5E-05",
                        REFLECTANCE_ADD_BAND_4="-0.1")
    decision = _units(tagged, None)
    assert decision.units == "landsat-l1" and "MTL tags" in decision.how
    assert decision.scale[2] == pytest.approx(2.5e-5 / 0.5 * 10000)  # sin(30 deg) = 0.5
    assert decision.offset[2] == pytest.approx(-2000)
    assert decision.scale[0] == pytest.approx(2e-5 / 0.5 * 10000)  # untagged band: the usual MTL value
    # A bright scene fits Level-1 and Level-2 alike: plain B# names say Level-1 (warned), SR_B# Level-2
    bright = {prefix: write_landsat_from_s2(shared_data / RSTOOLBOX, tmp_path / f"bright_{prefix}.tif",
                                            units="landsat-l1", resolution_m=None, s2_scale=1.0,
                                            bands=OLI_FOUR, prefix=prefix, metadata=False)
              for prefix in ("B", "SR_B")}
    plain = _units(bright["B"], "landsat-oli")
    assert plain.units == "landsat-l1" and plain.ambiguous
    assert "--optical-units landsat-c2" in plain.warnings[0]
    assert _units(bright["SR_B"], "landsat-oli").units == "landsat-c2"


def _label_boxes(shared_data: Path, out: Path, block: int = 32) -> Path:
    """GeoJSON boxes of ``block`` px label-raster blocks that are >= 90 % water or >= 95 % land."""
    features = []
    with rasterio.open(shared_data / LABELS) as src:
        labels = src.read(1)
        for row in range(0, src.height, block):
            for col in range(0, src.width, block):
                cell = labels[row:row + block, col:col + block]
                name = "water" if (cell == 1).mean() > 0.9 else "land" if (cell == 0).mean() > 0.95 else None
                if name is None:
                    continue
                left, top = src.transform @ (col, row)
                right, bottom = src.transform @ (col + block, row + block)
                ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
                features.append({"type": "Feature", "properties": {"class": name},
                                 "geometry": {"type": "Polygon", "coordinates": [ring]}})
    out.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return out


@pytest.mark.parametrize("prefix", ["B", "SR_B"])
def test_level1_stack_classifies_without_options_or_is_refused(shared_data, tmp_path, prefix) -> None:
    """Acceptance (issue 19): a Level-1 stack named B2..B5 or SR_B2..SR_B5 never gives a one-class map
    with exit 0: either a map from the right units, or exit 2 with the units advice."""
    stack = _level1(shared_data, tmp_path / f"l1_{prefix}.tif", prefix, resolution_m=None)
    out = tmp_path / "classes.tif"
    boxes = _label_boxes(shared_data, tmp_path / "boxes.geojson")
    done = run_json("classify", "--optical", stack, "--samples", boxes, "--out", out, "--cache-dir",
                    tmp_path / "cache")
    events = events_of(done)
    if done.returncode == 2:
        error = next(e["message"] for e in events if e["event"] == "error")
        assert "--optical-units" in error and "--sensor" in error and not out.exists()
        return
    assert done.returncode == 0, done.stderr[-2000:]
    text = "\n".join(str(e.get("message", "")) for e in events)
    assert "sensor: landsat-oli" in text and "optical units: landsat-l1" in text
    with rasterio.open(out) as src:
        classes = src.read(1)
    assert len(np.unique(classes[classes > 0])) == 2


def test_eight_bit_tm_level1_needs_its_mtl_factors(shared_data, tmp_path) -> None:
    """Landsat 7 ETM+ 8-bit DN (rasterio's RGB.byte) under a Level-1 product ID: brightness without MTL tags
    (OLI's 2e-5 would make every value negative reflectance), the MTL's factors with them."""
    with rasterio.open(shared_data / "rasterio-rgb-byte/RGB.byte.tif") as src:
        profile, data = src.profile, src.read()
    stack = tmp_path / "LE07_L1TP_014035_20000506_20200918_02_T1_stack.tif"
    with rasterio.open(stack, "w", **profile) as dst:
        dst.write(data)
    assert detect_sensor([None] * 3, None, 3, "uint8", stack.name)[0] == "landsat-tm"
    assert _units(stack, "landsat-tm").units == "brightness"
    with rasterio.open(stack, "r+") as dst:
        dst.update_tags(**{f"REFLECTANCE_MULT_BAND_{n}": "0.0012" for n in (1, 2, 3)},
                        **{f"REFLECTANCE_ADD_BAND_{n}": "-0.005" for n in (1, 2, 3)})
    decision = _units(stack, "landsat-tm")
    assert decision.units == "landsat-l1" and "LE07_L1TP" in decision.how
    assert np.allclose(decision.scale, 12) and np.allclose(decision.offset, -50)  # x 10000 model DN
