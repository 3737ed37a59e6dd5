"""Per-patch band statistics for every sensor preset (issue 19: spectral fill crashed ``--band-stats``).

A spectral fill reads fewer file bands than the model has; the statistics are of the model's
bands (what the encoder sees), so their count is twice the model's band count on every sensor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from backend.downstream.band_stats import write_band_statistics
from backend.inference.inputs import InputSet
from backend.inference.model import bundled_model_for, model_config
from backend.io.simulate import write_landsat_from_s2
from tests.backend.conftest import run_json

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
NAIP_FILE = "naip-opengeos/m_4709963_se_14_1_20200831.tif"
RGB_FILE = "rasterio-rgb-byte/RGB.byte.tif"
SEN2 = "rstoolbox-sen2/sen2.tif"
SEN2_POLYGONS = "rstoolbox-sen2/trainingPolygons_sen2.geojson"


def _crop(source: Path, out: Path, window: Window) -> Path:
    """A windowed copy of ``source`` (band names and tags kept)."""
    with rasterio.open(source) as src:
        profile = dict(src.profile, width=window.width, height=window.height,
                       transform=src.window_transform(window), tiled=False)
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions
            dst.update_tags(**src.tags())
    return out


@pytest.fixture(scope="module")
def sensor_crops(shared_data, tmp_path_factory) -> dict[str, Path]:
    """One small real (or Sentinel-2-simulated Landsat) crop per sensor preset."""
    folder = tmp_path_factory.mktemp("crops")
    s2 = _crop(shared_data / S2_FILE, folder / "s2.tif", Window(0, 0, 192, 192))
    return {
        "sentinel2": s2,
        "landsat-oli": write_landsat_from_s2(s2, folder / "oli.tif", "landsat-oli"),
        "landsat-tm": write_landsat_from_s2(s2, folder / "tm.tif", "landsat-tm"),
        "rgbn": _crop(shared_data / NAIP_FILE, folder / "naip.tif", Window(300, 300, 96, 96)),
        "rgb": _crop(shared_data / RGB_FILE, folder / "rgb.tif", Window(300, 300, 96, 96)),
    }


@pytest.mark.parametrize("sensor", ["sentinel2", "landsat-oli", "landsat-tm", "rgbn", "rgb"])
def test_band_statistics_of_every_sensor_are_the_model_bands(sensor_crops, sensor, tmp_path) -> None:
    path = sensor_crops[sensor]
    config = model_config(bundled_model_for(sensor)[0])
    out = tmp_path / "stats.tif"
    with InputSet(path, None, config) as inputs:
        assert inputs.sensor.sensor == sensor
        model_bands = len(inputs.modalities["optical"].band_names)
        dim = write_band_statistics(inputs, out)
        patches = (inputs.patch_height, inputs.patch_width)
    assert dim == 2 * model_bands
    with rasterio.open(out) as src:
        stats = src.read()
    assert stats.shape == (dim, *patches)
    mean, spread = stats[:model_bands], stats[model_bands:]
    valid = np.isfinite(mean).all(axis=0)
    assert valid.mean() > 0.9 and (spread[:, valid] >= 0).all()
    assert np.ptp(mean[:, valid], axis=1).max() > 0.01  # the patches differ: real statistics, not a fill


def test_classify_band_stats_on_naip_runs(shared_data, tmp_path) -> None:
    """The reported crash: ``classify --band-stats`` on an RGBN input (spectral fill) through the CLI.

    NAIP has no labels here: the samples are the crop's west, middle and east thirds (a crash test).
    """
    naip = _crop(shared_data / NAIP_FILE, tmp_path / "naip.tif", Window(0, 0, 256, 256))
    with rasterio.open(naip) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    thirds = [(left + (right - left) * i / 3, left + (right - left) * (i + 1) / 3) for i in range(3)]
    features = [{"type": "Feature", "properties": {"class": name},
                 "geometry": {"type": "Polygon", "coordinates": [[[x0, bottom], [x1, bottom], [x1, top],
                                                                  [x0, top], [x0, bottom]]]}}
                for name, (x0, x1) in zip(("west", "middle", "east"), thirds)]
    samples = tmp_path / "samples.geojson"
    samples.write_text(json.dumps({"type": "FeatureCollection", "features": features,
                                   "crs": {"type": "name", "properties": {"name": crs.to_string()}}}))
    out = tmp_path / "classes.tif"
    done = run_json("classify", "--optical", naip, "--samples", samples, "--band-stats", "--out", out,
                    "--cache-dir", tmp_path / "c")
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["event"] == "result" and out.exists()
    with rasterio.open(out) as src:
        assert len(np.unique(src.read(1))) > 1
