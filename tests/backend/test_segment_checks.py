"""Inputs ``segment`` and ``classify`` must refuse (or name), through the real CLI on real data.

* A head records the kind of embeddings it was trained on; applying it to another kind (radar-only
  embeddings for a head trained on optical ones) is one clear error, exit 2.
* ``--label-raster`` must be a class raster: a float confidence raster or a 3-band image is refused.
* Class names of a label raster come from its ``.qml`` sidecar or its GDAL category names.
* ``classify --class-field id`` (one value per polygon) is refused, naming the class-like fields.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.backend.conftest import error_of, events_of, result_of, run_json
from tests.backend.downstream_data import FLOODS_LABEL, FLOODS_S2, SEN2, SEN2_POLYGONS, write_embedding_raster


@pytest.fixture(scope="module")
def floods_embeddings(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """embed-like fields of the Sen1Floods11 chip: tagged as made from optical, and from radar, inputs."""
    folder = tmp_path_factory.mktemp("kinds")
    optical = write_embedding_raster(shared_data / FLOODS_S2, folder / "s2_emb.tif")
    radar = shutil.copyfile(optical, folder / "s1_emb.tif")
    for path, prefix in ((optical, "TERRAPROBE_OPTICAL"), (radar, "TERRAPROBE_SAR")):
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(**{f"{prefix}_UNITS": "reflectance" if "OPTICAL" in prefix else "db",
                               f"{prefix}_UNITS_HOW": "test"})
    return optical, Path(radar)


def test_head_applied_to_another_kind_of_embeddings_is_refused(shared_data, floods_embeddings,
                                                                tmp_path) -> None:
    optical, radar = floods_embeddings
    head = tmp_path / "head"
    result_of(run_json("segment", "--embeddings", optical, "--optical", shared_data / FLOODS_S2,
                       "--label-raster", shared_data / FLOODS_LABEL, "--steps", 5, "--features", "embeddings",
                       "--out", tmp_path / "train.tif", "--head-out", head))
    recorded = json.loads((tmp_path / "head.json").read_text())
    assert recorded["embedding"]["own"] and recorded["embedding"]["modalities"] == ["optical"], recorded
    assert recorded["band_count"] == len(recorded["bands"]) > 0, recorded
    result_of(run_json("segment", "--embeddings", optical, "--optical", shared_data / FLOODS_S2, "--head",
                       tmp_path / "head.safetensors", "--out", tmp_path / "same.tif"))
    bad = tmp_path / "out" / "bad.tif"
    message = error_of(run_json("segment", "--embeddings", radar, "--optical", shared_data / FLOODS_S2,
                                "--head", tmp_path / "head.safetensors", "--out", bad))
    assert "trained on embeddings of optical inputs but these are embeddings of sar" in message, message
    assert not bad.exists()


def _label_like(shared_data: Path, path: Path, data: np.ndarray, dtype: str) -> Path:
    with rasterio.open(shared_data / FLOODS_LABEL) as src:
        profile = dict(src.profile, count=data.shape[0], dtype=dtype, nodata=None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype))
    return path


@pytest.mark.parametrize("kind", ["confidence", "three bands"])
def test_label_raster_that_is_not_a_class_raster_is_refused(shared_data, floods_embeddings, tmp_path,
                                                            kind) -> None:
    with rasterio.open(shared_data / FLOODS_LABEL) as src:
        label = src.read(1)
    if kind == "confidence":
        values = 0.5 + 0.5 * np.random.default_rng(0).random((1, *label.shape))
        labels, expected = _label_like(shared_data, tmp_path / "conf.tif", values, "float32"), "whole numbers"
    else:
        stack = np.stack([label, label, label]) + 1
        labels, expected = _label_like(shared_data, tmp_path / "rgb.tif", stack, "uint8"), "it has 3 bands"
    out = tmp_path / "seg.tif"
    message = error_of(run_json("segment", "--embeddings", floods_embeddings[0], "--label-raster", labels,
                                "--steps", 5, "--out", out))
    assert "is not a class raster" in message and expected in message, message
    assert not out.exists()


@pytest.mark.parametrize("source", ["qml", "categories"])
def test_label_raster_class_names_reach_the_legend(shared_data, floods_embeddings, tmp_path, source) -> None:
    labels = shutil.copyfile(shared_data / FLOODS_LABEL, tmp_path / "labels.tif")
    if source == "qml":
        (tmp_path / "labels.qml").write_text(
            '<qgis><pipe><rasterrenderer type="paletted"><colorPalette>'
            '<paletteEntry value="0" label="dry land" color="#a0a000" alpha="255"/>'
            '<paletteEntry value="1" label="water" color="#0000ff" alpha="255"/>'
            "</colorPalette></rasterrenderer></pipe></qgis>", encoding="utf-8")
    else:  # GDAL keeps a GeoTIFF's category names in its .aux.xml sidecar
        (tmp_path / "labels.tif.aux.xml").write_text(
            '<PAMDataset><PAMRasterBand band="1"><CategoryNames><Category>dry land</Category>'
            "<Category>water</Category></CategoryNames></PAMRasterBand></PAMDataset>", encoding="utf-8")
    out = tmp_path / "seg.tif"
    proc = run_json("segment", "--embeddings", floods_embeddings[0], "--label-raster", labels, "--steps", 5,
                    "--out", out)
    assert result_of(proc)["stats"]["classes"] == {"1": "dry land", "2": "water"}, events_of(proc)
    legend = out.with_suffix(".qml").read_text()
    assert 'label="dry land"' in legend and 'label="water"' in legend


def test_identifier_class_field_is_refused(shared_data, tmp_path) -> None:
    embeddings = write_embedding_raster(shared_data / SEN2, tmp_path / "emb.tif")
    out = tmp_path / "classes.tif"
    message = error_of(run_json("classify", "--embeddings", embeddings, "--samples",
                                shared_data / SEN2_POLYGONS, "--class-field", "id", "--out", out))
    assert "--class-field id looks like an identifier" in message, message
    assert "fields that look like classes: class" in message, message
    assert not out.exists()
