"""Segmentation head: full-resolution water map from the Sen1Floods11 label, head reuse, polygons."""

from __future__ import annotations

import pytest
import rasterio
from rasterio.windows import Window

from backend.downstream.segmentation import PolygonLabels, RasterLabels, RasterPixels, load_head, segment
from backend.errors import UserError
from backend.io.vectors import read_sample_polygons
from tests.backend.downstream_data import (
    FLOODS_LABEL,
    FLOODS_S2,
    SEN2,
    SEN2_POLYGONS,
    write_embedding_raster,
)


@pytest.fixture(scope="module")
def floods(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("floods")
    return write_embedding_raster(shared_data / FLOODS_S2, folder / "emb.tif"), folder


def test_label_raster_head_segments_water_at_full_resolution(shared_data, floods, tmp_path) -> None:
    embeddings, _ = floods
    pixels = RasterPixels(shared_data / FLOODS_S2)
    labels = RasterLabels(shared_data / FLOODS_LABEL, pixels.grid)
    assert labels.classes == ["0", "1"]
    out = tmp_path / "water.tif"
    stats = segment(embeddings, pixels, out, labels=labels, head_out=tmp_path / "head", steps=80, seed=0)
    with rasterio.open(out) as result, rasterio.open(shared_data / FLOODS_LABEL) as truth:
        predicted, label = result.read(1), truth.read(1)
        assert result.shape == truth.shape and result.crs == truth.crs
        assert result.transform.almost_equals(truth.transform)
        known = label >= 0
        assert (predicted[known] - 1 == label[known]).mean() >= 0.85
    assert stats.train_accuracy >= 0.85 and stats.training_pixels["1"] > 0
    _, info = load_head(tmp_path / "head.safetensors")
    assert info.classes == ["0", "1"] and info.embedding_dim == 26 and len(info.bands) == 13
    assert 'label="1"' in out.with_suffix(".qml").read_text()


def test_saved_head_segments_another_raster(shared_data, floods, tmp_path) -> None:
    embeddings, _ = floods
    pixels = RasterPixels(shared_data / FLOODS_S2)
    labels = RasterLabels(shared_data / FLOODS_LABEL, pixels.grid)
    segment(embeddings, pixels, tmp_path / "full.tif", labels=labels, head_out=tmp_path / "head.safetensors",
            steps=40)
    # Another raster: a 256x256 crop (offset by 128 px) of the scene, written as its own GeoTIFF.
    crop = tmp_path / "crop.tif"
    with rasterio.open(shared_data / FLOODS_S2) as src:
        window = Window(128, 128, 256, 256)
        profile = dict(src.profile, width=256, height=256, transform=src.window_transform(window))
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions
    crop_embeddings = write_embedding_raster(crop, tmp_path / "crop_emb.tif")
    stats = segment(crop_embeddings, RasterPixels(crop), tmp_path / "crop_seg.tif",
                    head_path=tmp_path / "head.safetensors")
    assert not stats.head_trained
    with rasterio.open(tmp_path / "crop_seg.tif") as seg, rasterio.open(shared_data / FLOODS_LABEL) as truth:
        label = truth.read(1, window=Window(128, 128, 256, 256))
        predicted = seg.read(1)
        known = label >= 0
        assert seg.shape == (256, 256)
        assert (predicted[known] - 1 == label[known]).mean() >= 0.8


def test_polygon_labels_on_rstoolbox_sen2(shared_data, tmp_path) -> None:
    embeddings = write_embedding_raster(shared_data / SEN2, tmp_path / "emb.tif")
    pixels = RasterPixels(shared_data / SEN2)
    samples = read_sample_polygons(shared_data / SEN2_POLYGONS, "class", pixels.grid.crs)
    labels = PolygonLabels(samples, pixels.grid)
    out = tmp_path / "seg.tif"
    stats = segment(embeddings, pixels, out, labels=labels, steps=80)
    with rasterio.open(out) as result:
        predicted = result.read(1)
        assert result.shape == (237, 247)  # the input's pixel grid, not the padded patch grid
        truth = labels.read(Window(0, 0, 247, 237))
        inside = truth > 0
        assert (predicted[inside] == truth[inside]).mean() >= 0.9
    assert stats.classes == {1: "dryout", 2: "forest", 3: "village", 4: "water"}


def test_mismatched_head_is_a_clear_error(shared_data, floods, tmp_path) -> None:
    embeddings, _ = floods
    pixels = RasterPixels(shared_data / FLOODS_S2)
    labels = RasterLabels(shared_data / FLOODS_LABEL, pixels.grid)
    segment(embeddings, pixels, tmp_path / "a.tif", labels=labels, head_out=tmp_path / "head", steps=5)
    sen2_embeddings = write_embedding_raster(shared_data / SEN2, tmp_path / "sen2_emb.tif")
    with pytest.raises(UserError, match=r"expects 26-d embeddings|expects 13 bands"):
        segment(sen2_embeddings, RasterPixels(shared_data / SEN2), tmp_path / "b.tif",
                head_path=tmp_path / "head.safetensors")
    assert not (tmp_path / "b.tif").exists()
