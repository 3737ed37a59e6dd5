"""Random forest / gradient boosting / kNN classify, band statistics, probabilities, blocked CV, HDBSCAN.

Real rstoolbox-sen2 scene and its 25 class polygons; the embeddings are its per-patch band features
(``downstream_data``), so no encoder runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.downstream.classify import classify_map
from backend.downstream.validation import polygon_blocks
from backend.errors import UserError
from backend.io.vectors import SampleSet, read_sample_polygons
from tests.backend.conftest import run_backend
from tests.backend.downstream_data import SEN2, SEN2_POLYGONS, write_embedding_raster


@pytest.fixture(scope="module")
def sen2_embeddings(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_embedding_raster(shared_data / SEN2, tmp_path_factory.mktemp("emb") / "sen2_emb.tif")


@pytest.fixture(scope="module")
def samples(shared_data: Path, sen2_embeddings: Path) -> SampleSet:
    with rasterio.open(sen2_embeddings) as emb:
        return read_sample_polygons(shared_data / SEN2_POLYGONS, "class", emb.crs)


def _result(stdout: str) -> dict:
    events = [json.loads(line) for line in stdout.splitlines()]
    return next(e for e in events if e["event"] == "result")


@pytest.mark.slow
def test_random_forest_writes_probabilities_and_both_accuracies(shared_data: Path, sen2_embeddings: Path,
                                                                 tmp_path: Path) -> None:
    out, proba = tmp_path / "rf.tif", tmp_path / "rf_proba.tif"
    done = run_backend("classify", "--embeddings", sen2_embeddings, "--samples", shared_data / SEN2_POLYGONS,
                       "--classifier", "random-forest", "--out", out, "--probabilities-out", proba,
                       "--events", "json")
    assert done.returncode == 0, done.stderr
    result = _result(done.stdout)
    stats = result["stats"]
    assert stats["classifier"] == "random-forest" and stats["blocked_cv_folds"] == 4
    assert stats["blocked_cv_block_patches"] == 16 and stats["trust"] == "spatially blocked"
    # Neighbouring polygons vouch for each other: LOPO is optimistic on this scene (91 % vs 67 %).
    assert 0 < stats["blocked_cv_accuracy"] < stats["lopo_accuracy"] <= 1
    logs = " ".join(json.loads(line).get("message", "") for line in done.stdout.splitlines())
    assert "spatially blocked accuracy" in logs and "which to trust" in logs
    with rasterio.open(out) as labels, rasterio.open(result["outputs"]["confidence"]) as conf, \
            rasterio.open(proba) as probabilities:
        p = probabilities.read()
        valid = labels.read(1) > 0
        assert probabilities.count == 4
        assert probabilities.descriptions == ("dryout", "forest", "village", "water")
        assert np.allclose(p[:, valid].sum(axis=0), 1, atol=1e-4)
        assert np.allclose(conf.read(1)[valid], p[:, valid].max(axis=0))
        assert (labels.read(1)[valid] == p[:, valid].argmax(axis=0) + 1).all()
        assert np.isnan(p[:, ~valid]).all()
    assert proba.with_suffix(".qml").exists()


@pytest.mark.slow
def test_gradient_boosting_and_band_statistics_in_process(shared_data: Path, samples: SampleSet,
                                                          sen2_embeddings: Path, tmp_path: Path) -> None:
    from backend.downstream.band_stats import write_band_statistics
    from backend.inference.inputs import InputSet
    from backend.inference.model import model_config
    from backend.paths import bundled_model

    bands = tmp_path / "bands.tif"
    with InputSet(shared_data / SEN2, None, model_config(bundled_model())) as inputs:
        assert write_band_statistics(inputs, bands) == 24
    stats = classify_map(sen2_embeddings, samples, tmp_path / "gb.tif", tmp_path / "gb_conf.tif",
                         classifier="gradient-boosting", band_stats=bands)
    assert stats.band_stats and stats.classifier == "gradient-boosting"
    assert stats.valid_patches == 31 * 30 and 0 < stats.mean_confidence <= 1
    again = classify_map(sen2_embeddings, samples, tmp_path / "gb2.tif", classifier="gradient-boosting",
                         band_stats=bands)
    assert again.blocked_cv_accuracy == stats.blocked_cv_accuracy  # seeded
    with rasterio.open(tmp_path / "gb.tif") as a, rasterio.open(tmp_path / "gb2.tif") as b:
        assert (a.read() == b.read()).all()


@pytest.mark.slow
def test_band_stats_cli_needs_the_optical_raster(shared_data: Path, sen2_embeddings: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "out" / "labels.tif"
    done = run_backend("classify", "--embeddings", sen2_embeddings, "--samples", shared_data / SEN2_POLYGONS,
                       "--band-stats", "--out", out)
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        "error: --band-stats needs the input raster (--optical) to compute per-patch band statistics"]
    assert not out.parent.exists() or not list(out.parent.iterdir())
    done = run_backend("classify", "--embeddings", sen2_embeddings, "--optical", shared_data / SEN2,
                       "--samples", shared_data / SEN2_POLYGONS, "--band-stats", "--out", out,
                       "--events", "json")
    assert done.returncode == 0, done.stderr
    assert _result(done.stdout)["stats"]["band_stats"] is True


def test_one_class_and_samples_outside_are_errors_with_nothing_written(
        samples: SampleSet, sen2_embeddings: Path, tmp_path: Path) -> None:
    water = [p for p in samples.polygons if p.class_name == "water"]
    with pytest.raises(UserError, match="only one class"):
        classify_map(sen2_embeddings, SampleSet(water, ["water"]), tmp_path / "one.tif",
                     classifier="random-forest")
    moved = SampleSet([type(p)(p.index, p.class_name, {"type": "Polygon", "coordinates": [
        [(x + 10, y) for x, y in p.geometry["coordinates"][0]]]}) for p in samples.polygons], samples.classes)
    with pytest.raises(UserError, match="no sample polygon overlaps"):
        classify_map(sen2_embeddings, moved, tmp_path / "far.tif", classifier="gradient-boosting")
    assert list(tmp_path.iterdir()) == []


def test_polygons_fall_in_the_block_holding_most_of_them() -> None:
    polygons = np.array([0, 0, 0, 1, 1, 2])
    rows = np.array([0, 1, 20, 17, 18, 40])
    cols = np.array([0, 0, 0, 3, 3, 40])
    blocks = polygon_blocks(polygons, rows, cols, 16)
    assert blocks[0] == blocks[1] == blocks[2] != blocks[3]
    assert blocks[3] == blocks[4] != blocks[5]


def test_samples_in_one_block_give_no_blocked_accuracy(samples: SampleSet, sen2_embeddings: Path,
                                                       tmp_path: Path) -> None:
    stats = classify_map(sen2_embeddings, samples, tmp_path / "big.tif", cv_block=64)
    assert stats.blocked_cv_accuracy is None and stats.trust == "leave-one-polygon-out"
    assert any("no spatially blocked accuracy" in w for w in stats.warnings)


def test_hdbscan_cluster_map_has_a_noise_class(sen2_embeddings: Path, tmp_path: Path) -> None:
    out = tmp_path / "hdb.tif"
    done = run_backend("cluster", "--embeddings", sen2_embeddings, "--method", "hdbscan",
                       "--min-cluster-size", "15", "--out", out, "--events", "json")
    assert done.returncode == 0, done.stderr
    stats = _result(done.stdout)["stats"]
    clusters = stats["clusters"]
    assert clusters >= 2 and stats["method"] == "hdbscan" and 0 < stats["sample_agreement"] <= 1
    with rasterio.open(out) as src:
        values = set(np.unique(src.read(1)).tolist())
    assert values <= set(range(clusters + 2)) and clusters + 1 in values
    qml = out.with_suffix(".qml").read_text()
    assert f'value="{clusters + 1}" color="#b3b3b3" label="noise"' in qml
    assert sum(stats["cluster_sizes"].values()) + stats["noise_patches"] == stats["valid_patches"] == 930


@pytest.mark.parametrize(("arguments", "message"), [
    (["--method", "hdbscan", "--k", "5"], "--k belongs to --method kmeans"),
    (["--method", "kmeans"], "--k is required with --method kmeans"),
    (["--method", "hdbscan", "--min-cluster-size", "5000"], "larger than the 930 sampled patches"),
])
def test_cluster_option_errors(sen2_embeddings: Path, tmp_path: Path, arguments: list[str],
                               message: str) -> None:
    done = run_backend("cluster", "--embeddings", sen2_embeddings, *arguments, "--out", tmp_path / "c.tif")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert list(tmp_path.iterdir()) == []


def _foreign_field(embeddings: Path, out: Path, dim: int, crs: str | None) -> Path:
    """An AlphaEarth-like (unit-length, NaN nodata) or TESSERA-like (another CRS) field from real features."""
    from rasterio.warp import calculate_default_transform, reproject

    with rasterio.open(embeddings) as src:
        features = src.read().astype(np.float32)
        profile = {"crs": src.crs, "transform": src.transform, "width": src.width, "height": src.height}
        bounds = src.bounds
    projection = np.random.default_rng(0).normal(size=(dim, features.shape[0])).astype(np.float32)
    field = np.einsum("kd,dhw->khw", projection, features)
    field /= np.linalg.norm(field, axis=0, keepdims=True)
    if crs is not None:
        transform, width, height = calculate_default_transform(profile["crs"], crs, profile["width"],
                                                               profile["height"], *bounds)
        warped = np.full((dim, height, width), np.nan, np.float32)
        reproject(field, warped, src_transform=profile["transform"], src_crs=profile["crs"],
                  dst_transform=transform, dst_crs=crs, src_nodata=np.nan, dst_nodata=np.nan)
        field, profile = warped, {"crs": crs, "transform": transform, "width": width, "height": height}
    with rasterio.open(out, "w", driver="GTiff", count=dim, dtype="float32", nodata=float("nan"),
                       **profile) as dst:
        dst.write(field)
        for band in range(dim):
            dst.set_band_description(band + 1, f"A{band:02d}")
    return out


@pytest.mark.parametrize(("dim", "crs", "classifier", "distance"), [
    (64, None, "random-forest", "cosine"), (128, "EPSG:32721", "knn", "euclidean")])
def test_foreign_fields_classify_and_vectorise(shared_data: Path, sen2_embeddings: Path, tmp_path: Path,
                                               dim: int, crs: str | None, classifier: str,
                                               distance: str) -> None:
    field = _foreign_field(sen2_embeddings, tmp_path / "field.tif", dim, crs)
    out = tmp_path / "labels.tif"
    done = run_backend("classify", "--embeddings", field, "--samples", shared_data / SEN2_POLYGONS,
                       "--classifier", classifier, "--distance", distance, "--out", out, "--events", "json")
    assert done.returncode == 0, done.stderr
    stats = _result(done.stdout)["stats"]
    assert stats["reference_patches"] > 40 and stats["lopo_accuracy"] > 0.4
    with rasterio.open(out) as labels, rasterio.open(field) as src:
        assert labels.crs == src.crs and labels.transform == src.transform
    polygons = tmp_path / "labels_polygons.gpkg"
    done = run_backend("vectorise", "--raster", out, "--confidence", tmp_path / "labels_confidence.tif",
                       "--out", polygons, "--min-area", "20000", "--events", "json")
    assert done.returncode == 0, done.stderr
    assert _result(done.stdout)["stats"]["polygons"] > 0


def test_patch_mode_and_scene_tables_carry_the_random_forest() -> None:
    from backend.evaluation.dense import PATCH_CLASSIFIERS, dense_markdown_table
    from backend.evaluation.metrics import cross_validate

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    features = rng.normal(size=(60, 8)) + labels[:, None]
    summary = cross_validate(features, labels, folds=3, seed=0, neighbors=5).summary()
    assert 0.5 < summary["rf_accuracy"]["mean"] <= 1 and len(summary["rf_accuracy"]["folds"]) == 3
    score = {"mean": 0.5, "std": 0.1, "folds": [0.5]}
    metrics = [f"{prefix}_{m}" for prefix in ("segmentation", "knn", "knn_patch", "clf_knn", "clf_forest")
               for m in ("accuracy", "miou")]
    report = {"scene_name": "s.tif", "width": 8, "height": 8, "classes": ["a", "b"], "folds": 2,
              "block": 128, "buffer": 16, "seed": 0, "scored_pixels": 64, "steps": 1, "neighbors": 5,
              "rows": {"band statistics (mean, std)": {"embedding_dim": 4, **dict.fromkeys(metrics, score)}}}
    table = dense_markdown_table(report)
    assert "| kNN acc | kNN + band stats acc | RF acc | RF + band stats acc |" in table
    # No "+ band stats" variant on the band-statistics row: its RF column is the RF-on-band-stats baseline.
    assert "| band statistics (mean, std) | 0.500 ± 0.100 | — | 0.500 ± 0.100 | — |" in table
    assert [key for key, *_ in PATCH_CLASSIFIERS] == ["knn", "knn_bands", "forest", "forest_bands"]


@pytest.mark.parametrize(("arguments", "message"), [
    (["--cv-block", "0"], "--cv-block must be at least 1"),
    (["--probabilities-out", "proba.png"], "--probabilities-out must be a GeoTIFF file name"),
    (["--neighbors", "0"], "--neighbors must be at least 1"),
])
def test_classify_option_errors(shared_data: Path, sen2_embeddings: Path, tmp_path: Path,
                                arguments: list[str], message: str) -> None:
    out = tmp_path / "out" / "labels.tif"
    done = run_backend("classify", "--embeddings", sen2_embeddings, "--samples", shared_data / SEN2_POLYGONS,
                       *arguments, "--out", out)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_samples_outside_bounds_are_outside_the_area(shared_data: Path, tmp_path: Path) -> None:
    """With --bounds, polygons beyond the bounds lie outside the area, not 'outside the raster'."""
    with rasterio.open(shared_data / SEN2) as src:
        left, bottom, right, top = src.bounds
    done = run_backend("classify", "--optical", shared_data / SEN2, "--bounds", left, bottom,
                       (left + right) / 2, top, "--samples", shared_data / SEN2_POLYGONS, "--class-field",
                       "class", "--out", tmp_path / "labels.tif", "--device", "cpu", "--cache-dir",
                       tmp_path / "cache", "--events", "json")
    assert done.returncode == 0, done.stderr
    warnings = [e["message"] for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "warning"]
    assert any(w.endswith("sample polygon(s) lie outside the area (the raster, or its --bounds part) and "
                          "were ignored") for w in warnings), warnings
    assert not any("outside the raster" in w for w in warnings), warnings
