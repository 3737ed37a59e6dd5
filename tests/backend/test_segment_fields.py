"""``segment`` on any embedding field, through the real CLI.

* A TESSERA-like 128-band field in UTM with the rstoolbox-sen2 scene (EPSG:4326): the field is read
  aligned onto the scene's 8x8 patch grid; the map is on the scene's pixel grid.
* The same field alone: a head without the per-pixel term; the map is on the field's own grid.
* A TESSERA-like field of the Sen1Floods11 chip in UTM with the chip's label raster, with and
  without the optical raster.
* A saved head records its form; applying it in the other form is one clear error, nothing written;
  so is a field that misses the optical raster.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from backend.downstream.segmentation import PolygonLabels
from backend.inference.embedding_raster import Grid
from backend.io.vectors import read_sample_polygons
from tests.backend.conftest import error_of, events_of, result_of, run_json
from tests.backend.downstream_data import FLOODS_LABEL, FLOODS_S2, SEN2, SEN2_POLYGONS
from tests.backend.fields import UTM, make_fields, projected_features, reprojected_field


@pytest.fixture(scope="module")
def tessera(shared_data, tmp_path_factory) -> Path:
    return make_fields(shared_data / SEN2, tmp_path_factory.mktemp("fields"))["tessera"]


def polygon_accuracy(shared_data: Path, seg: Path) -> float:
    """Share of the pixels (or cells) inside the training polygons that the map labels correctly."""
    with rasterio.open(seg) as src:
        predicted, grid = src.read(1), Grid(src.crs, src.transform, src.width, src.height)
    samples = read_sample_polygons(shared_data / SEN2_POLYGONS, "class", grid.crs)
    truth = PolygonLabels(samples, grid).read(Window(0, 0, grid.width, grid.height))
    inside = truth > 0
    return float((predicted[inside] == truth[inside]).mean())


def logs_of(proc) -> list[str]:
    return [e.get("message", "") for e in events_of(proc) if e.get("event") == "log"]


def test_field_in_another_crs_with_the_optical_raster(shared_data, tessera, tmp_path) -> None:
    out = tmp_path / "seg.tif"
    proc = run_json("segment", "--embeddings", tessera, "--optical", shared_data / SEN2, "--samples",
                    shared_data / SEN2_POLYGONS, "--steps", 60, "--out", out, "--head-out", tmp_path / "head")
    stats = result_of(proc)["stats"]
    assert stats["form"] == "pixels" and stats["train_accuracy"] >= 0.8, stats
    assert any("read aligned onto it on the fly" in line and "nearest cell" in line for line in logs_of(proc))
    with rasterio.open(out) as seg, rasterio.open(shared_data / SEN2) as scene:
        assert seg.shape == scene.shape and seg.crs == scene.crs
        assert seg.transform.almost_equals(scene.transform)
    assert polygon_accuracy(shared_data, out) >= 0.8
    meta = json.loads((tmp_path / "head.json").read_text())
    assert meta["form"] == "pixels" and meta["embedding_dim"] == 128 and len(meta["bands"]) > 0


def test_field_alone_is_segmented_on_its_own_grid(shared_data, tessera, tmp_path) -> None:
    out = tmp_path / "seg.tif"
    proc = run_json("segment", "--embeddings", tessera, "--samples", shared_data / SEN2_POLYGONS,
                    "--steps", 60, "--out", out, "--head-out", tmp_path / "head")
    stats = result_of(proc)["stats"]
    assert stats["form"] == "field" and stats["train_accuracy"] >= 0.8, stats
    assert any("no per-pixel band term" in line and "field's own grid" in line for line in logs_of(proc))
    with rasterio.open(out) as seg, rasterio.open(tessera) as field:
        assert seg.crs.to_string() == UTM and seg.shape == field.shape
        assert seg.transform == field.transform
        classes = seg.read(1)
        nodata = ~np.isfinite(field.read(1))
        assert (classes[nodata] == 0).all() and (classes[~nodata] > 0).all()
    assert polygon_accuracy(shared_data, out) >= 0.8
    meta = json.loads((tmp_path / "head.json").read_text())
    assert meta["form"] == "field" and meta["bands"] == []
    # The saved field head applied again gives the same map.
    again = tmp_path / "again.tif"
    result_of(run_json("segment", "--embeddings", tessera, "--head", tmp_path / "head.safetensors",
                       "--out", again))
    with rasterio.open(out) as first, rasterio.open(again) as second:
        assert (first.read(1) == second.read(1)).all()


def test_label_raster_with_and_without_the_optical_raster(shared_data, tmp_path) -> None:
    data, crs, transform = projected_features(shared_data / FLOODS_S2, 128, seed=3)
    with rasterio.open(shared_data / FLOODS_S2) as src:
        lon = (src.bounds.left + src.bounds.right) / 2
    utm = f"EPSG:{32600 + int((lon + 180) // 6) + 1}"
    field = reprojected_field(tmp_path / "floods_tessera.tif", data, crs, transform, utm)
    with_optical = tmp_path / "water.tif"
    stats = result_of(run_json("segment", "--embeddings", field, "--optical", shared_data / FLOODS_S2,
                               "--label-raster", shared_data / FLOODS_LABEL, "--steps", 60,
                               "--out", with_optical))["stats"]
    assert stats["form"] == "pixels" and stats["classes"] == {"1": "0", "2": "1"}
    with rasterio.open(with_optical) as seg, rasterio.open(shared_data / FLOODS_LABEL) as truth:
        assert seg.shape == truth.shape and seg.transform.almost_equals(truth.transform)
        predicted, label = seg.read(1), truth.read(1)
        known = label >= 0
        assert (predicted[known] - 1 == label[known]).mean() >= 0.85
    alone = tmp_path / "water_field.tif"
    stats = result_of(run_json("segment", "--embeddings", field, "--label-raster", shared_data / FLOODS_LABEL,
                               "--steps", 60, "--out", alone))["stats"]
    assert stats["form"] == "field" and stats["train_accuracy"] >= 0.8, stats
    with rasterio.open(alone) as seg, rasterio.open(field) as source:
        assert seg.crs == source.crs and seg.transform == source.transform


def test_head_of_the_other_form_is_a_clear_error(shared_data, tessera, tmp_path) -> None:
    polygons = shared_data / SEN2_POLYGONS
    result_of(run_json("segment", "--embeddings", tessera, "--samples", polygons, "--steps", 5,
                       "--out", tmp_path / "field.tif", "--head-out", tmp_path / "field_head"))
    result_of(run_json("segment", "--embeddings", tessera, "--optical", shared_data / SEN2, "--samples",
                       polygons, "--steps", 5, "--out", tmp_path / "pixels.tif", "--head-out",
                       tmp_path / "pixels_head"))
    bad = tmp_path / "out" / "bad.tif"
    message = error_of(run_json("segment", "--embeddings", tessera, "--optical", shared_data / SEN2,
                                "--head", tmp_path / "field_head.safetensors", "--out", bad))
    assert "trained on the embedding field alone" in message and "without --optical" in message, message
    message = error_of(run_json("segment", "--embeddings", tessera, "--head",
                                tmp_path / "pixels_head.safetensors", "--out", bad))
    assert "has a per-pixel band term" in message and "--optical" in message, message
    message = error_of(run_json("segment", "--samples", polygons, "--out", bad))
    assert "--embeddings" in message and "--optical" in message, message
    assert not bad.parent.exists() or not any(bad.parent.iterdir())


def test_field_that_misses_the_optical_raster_is_a_clear_error(shared_data, tessera, tmp_path) -> None:
    bad = tmp_path / "out" / "bad.tif"
    message = error_of(run_json("segment", "--embeddings", tessera, "--optical", shared_data / FLOODS_S2,
                                "--label-raster", shared_data / FLOODS_LABEL, "--out", bad))
    assert "does not overlap" in message, message
    assert not bad.parent.exists() or not any(bad.parent.iterdir())
