"""kNN label maps from the rstoolbox-sen2 class polygons: acceptance, statistics, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from backend.cli import main
from backend.downstream.classify import classify_map
from backend.downstream.samples import polygons_window, rasterize_polygons
from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster
from backend.io.vectors import read_sample_polygons
from tests.backend.conftest import run_backend
from tests.backend.downstream_data import SEN2, SEN2_POLYGONS, write_embedding_raster


@pytest.fixture(scope="module")
def sen2_embeddings(shared_data, tmp_path_factory):
    return write_embedding_raster(shared_data / SEN2, tmp_path_factory.mktemp("emb") / "sen2_emb.tif")


@pytest.fixture(scope="module")
def samples(shared_data, sen2_embeddings):
    with rasterio.open(sen2_embeddings) as emb:
        return read_sample_polygons(shared_data / SEN2_POLYGONS, "class", emb.crs)


def test_every_polygon_reaches_the_patch_grid(samples, sen2_embeddings) -> None:
    """Village polygons are about one patch big: the all_touched fallback keeps each of them."""
    with EmbeddingRaster(sen2_embeddings) as reader:
        window = polygons_window(samples.polygons, reader.grid)
        burnt = rasterize_polygons(samples.polygons, reader.grid, window)
    assert set(np.unique(burnt[burnt > 0])) == set(range(1, 26))


def test_knn_reproduces_the_polygon_classes_at_the_polygons(samples, sen2_embeddings, tmp_path) -> None:
    out, confidence = tmp_path / "labels.tif", tmp_path / "labels_confidence.tif"
    stats = classify_map(sen2_embeddings, samples, out, confidence, neighbors=10)
    with EmbeddingRaster(sen2_embeddings) as reader, rasterio.open(out) as labels, \
            rasterio.open(confidence) as conf:
        window = polygons_window(samples.polygons, reader.grid)
        burnt = rasterize_polygons(samples.polygons, reader.grid, window)
        truth = np.array([samples.value_of(p.class_name) for p in samples.polygons])[burnt[burnt > 0] - 1]
        predicted = labels.read(1, window=window)[burnt > 0]
        assert (predicted == truth).mean() >= 0.9
        assert (labels.crs, labels.transform) == (reader.grid.crs, reader.grid.transform)
        scores = conf.read(1)
        assert conf.dtypes[0] == "float32" and np.isnan(conf.nodata)
        assert np.nanmin(scores) > 0 and np.nanmax(scores) <= 1
    assert stats.classes == {1: "dryout", 2: "forest", 3: "village", 4: "water"}
    assert stats.polygon_counts == {"dryout": 4, "forest": 8, "village": 9, "water": 4}
    assert sum(stats.class_counts.values()) == stats.reference_patches
    assert 0 < stats.lopo_accuracy < 1
    assert 'label="village"' in out.with_suffix(".qml").read_text()


def test_lopo_excludes_the_own_polygon(samples, sen2_embeddings, tmp_path) -> None:
    """With k=1 a patch's own polygon would always win; LOPO must score strictly less than that."""
    stats = classify_map(sen2_embeddings, samples, tmp_path / "k1.tif", neighbors=1)
    with rasterio.open(tmp_path / "k1.tif") as labels, EmbeddingRaster(sen2_embeddings) as reader:
        window = polygons_window(samples.polygons, reader.grid)
        burnt = rasterize_polygons(samples.polygons, reader.grid, window)
        truth = np.array([samples.value_of(p.class_name) for p in samples.polygons])[burnt[burnt > 0] - 1]
        resubstitution = (labels.read(1, window=window)[burnt > 0] == truth).mean()
    assert resubstitution == 1.0
    assert stats.lopo_accuracy < resubstitution


def test_single_class_and_outside_polygons_are_errors(samples, sen2_embeddings, tmp_path) -> None:
    from backend.io.vectors import SampleSet

    forest = [p for p in samples.polygons if p.class_name == "forest"]
    with pytest.raises(UserError, match="only one class"):
        classify_map(sen2_embeddings, SampleSet(forest, ["forest"]), tmp_path / "one.tif")
    far = samples.to_crs("EPSG:4326")
    moved = SampleSet([type(p)(p.index, p.class_name, {"type": "Polygon", "coordinates": [
        [(x + 10, y) for x, y in p.geometry["coordinates"][0]]]}) for p in far.polygons], far.classes)
    with pytest.raises(UserError, match="no sample polygon overlaps"):
        classify_map(sen2_embeddings, moved, tmp_path / "far.tif")
    assert list(tmp_path.iterdir()) == []


def test_classify_cli_reports_counts_and_lopo(shared_data, sen2_embeddings, tmp_path, capsys) -> None:
    out = tmp_path / "labels.tif"
    code = main(["classify", "--embeddings", str(sen2_embeddings),
                 "--samples", str(shared_data / SEN2_POLYGONS), "--class-field", "class", "--out", str(out),
                 "--events", "json"])
    assert code == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    assert set(result["outputs"]) >= {"labels", "style", "confidence", "confidence_style"}
    assert result["stats"]["classes"] == {"1": "dryout", "2": "forest", "3": "village", "4": "water"}
    assert result["stats"]["class_counts"]["forest"] > 0 and "lopo_accuracy" in result["stats"]
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "leave-one-polygon-out accuracy" in logs and "class water:" in logs
    for key in ("labels", "style", "confidence", "confidence_style"):
        assert (tmp_path / result["outputs"][key].split("/")[-1]).exists()


def test_missing_class_field_is_one_clear_error_from_a_real_process(shared_data, sen2_embeddings,
                                                                     tmp_path) -> None:
    out = tmp_path / "labels.tif"
    done = run_backend("classify", "--embeddings", sen2_embeddings, "--samples", shared_data / SEN2_POLYGONS,
                       "--class-field", "landcover", "--out", out)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: sample layer trainingPolygons_sen2.geojson has no field 'landcover' "
                      "(fields: id, class); choose one with --class-field"]
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
