"""``evaluate --scene``: spatially cross-validated segmentation / kNN scores on the Sen1Floods11 chip."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.backend.conftest import run_backend, run_json, start_backend

CHIP = "sen1floods11/Spain_7370579"
CROP = 256
METRICS = ("segmentation_accuracy", "segmentation_miou", "knn_accuracy", "knn_miou",
           "knn_patch_accuracy", "knn_patch_miou")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A tiny random radar + optical CROMA whose band statistics come from the chip itself."""
    import numpy as np
    import rasterio

    from backend.models import ModalityConfig, ModelConfig, build_model, save_model
    from backend.models.config import S1_BANDS, S2_BANDS

    def stats(path: Path, bands: list[int]) -> tuple[list[float], list[float]]:
        with rasterio.open(path) as src:
            sample = src.read(bands, out_shape=(len(bands), 128, 128), masked=True).astype(np.float64)
        return sample.mean(axis=(1, 2)).tolist(), sample.std(axis=(1, 2)).tolist()

    # The chip's 13 bands are B1..B8, B8A, B9, B10, B11, B12; the model wants all but B10.
    optical = stats(shared_data / f"{CHIP}_S2Hand.tif", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13])
    radar = stats(shared_data / f"{CHIP}_S1Hand.tif", [1, 2])
    config = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1,
                         modalities={"optical": ModalityConfig(list(S2_BANDS), *optical),
                                     "sar": ModalityConfig(list(S1_BANDS), *radar)})
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(build_model(config), path)
    return path


def _crop_bounds(shared_data: Path) -> list[str]:
    """Bounds of the chip's top-left CROP x CROP pixels (a quarter pixel inside, as the window snaps out)."""
    import rasterio

    with rasterio.open(shared_data / f"{CHIP}_S2Hand.tif") as src:
        a, e = src.transform.a, src.transform.e
        left, top = src.bounds.left, src.bounds.top
    return [str(v) for v in (left + a / 4, top + (CROP - 0.25) * e, left + (CROP - 0.25) * a, top + e / 4)]


def _start(shared_data: Path, model: Path, out: Path) -> subprocess.Popen:
    chip = shared_data / CHIP
    return start_backend("evaluate", "--scene", f"{chip}_S2Hand.tif", "--sar", f"{chip}_S1Hand.tif",
                         "--labels", f"{chip}_LabelHand.tif", "--bounds", *_crop_bounds(shared_data),
                         "--model", model, "--no-bundled", "--block", "64", "--buffer", "8", "--folds", "3",
                         "--steps", "10", "--seed", "5", "--out", out, events=True)


def _finish(proc: subprocess.Popen, out: Path) -> dict:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr + stdout[-3000:]
    return json.loads(Path(f"{out}.json").read_text())


@pytest.mark.slow
def test_dense_scores_are_bounded_and_reproducible(shared_data: Path, tiny_model: Path,
                                                   tmp_path: Path) -> None:
    # Two independent processes with the same seed (run side by side to halve the wall time).
    runs = [(_start(shared_data, tiny_model, tmp_path / name), tmp_path / name) for name in ("a", "b")]
    first, second = (_finish(proc, out) for proc, out in runs)
    assert first["rows"] == second["rows"]
    assert (first["width"], first["height"]) == (CROP, CROP)
    assert first["classes"] == ["0", "1"]
    assert list(first["rows"]) == ["majority class of the training blocks", "band statistics (mean, std)",
                                   "random weights (tiny architecture)", "model: tiny.safetensors"]
    assert len(first["blocks_per_fold"]) == 3 and sum(first["blocks_per_fold"]) <= (CROP // 64) ** 2
    assert 0 < first["scored_pixels"] <= CROP * CROP
    assert len(first["scored_pixels_per_fold"]) == 3 and min(first["scored_pixels_per_fold"]) > 0
    for row in first["rows"].values():
        for metric in METRICS:
            assert 0.0 <= row[metric]["mean"] <= 1.0, (metric, row[metric])
            assert len(row[metric]["folds"]) == 3
    rows = first["rows"]
    assert rows["band statistics (mean, std)"]["embedding_dim"] == 28
    # Water is spectrally distinct: even raw band statistics beat always answering the majority class.
    majority = rows["majority class of the training blocks"]
    assert rows["band statistics (mean, std)"]["knn_accuracy"]["mean"] > majority["knn_accuracy"]["mean"]
    table = Path(tmp_path / "a.md").read_text()
    assert "| band statistics (mean, std) |" in table and "±" in table and "seg head mIoU" in table


@pytest.mark.slow
def test_dense_mode_with_sample_polygons(shared_data: Path, tmp_path: Path) -> None:
    """Polygon labels (RStoolbox's 25 hand-drawn polygons, 4 classes); raw-bands row only, so no model."""
    folder = shared_data / "rstoolbox-sen2"
    out = tmp_path / "polygons"
    proc = run_json("evaluate", "--scene", folder / "sen2.tif", "--samples",
                    folder / "trainingPolygons_sen2.geojson", "--class-field", "class", "--no-bundled",
                    "--block", "64", "--buffer", "8", "--folds", "3", "--steps", "10", "--neighbors", "5",
                    "--out", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout[-3000:]
    report = json.loads(Path(f"{out}.json").read_text())
    assert report["classes"] == ["dryout", "forest", "village", "water"]
    assert report["samples"] and report["class_field"] == "class"
    rows = report["rows"]
    assert list(rows) == ["majority class of the training blocks", "band statistics (mean, std)"]
    assert all(n > 0 for n in report["reference_patches_per_fold"])
    for row in rows.values():
        for metric in METRICS:
            assert 0.0 <= row[metric]["mean"] <= 1.0 and len(row[metric]["folds"]) == 3
    # Forest, water and bare ground differ in their spectra: kNN on band statistics beats the majority.
    majority = rows["majority class of the training blocks"]["knn_accuracy"]["mean"]
    assert rows["band statistics (mean, std)"]["knn_accuracy"]["mean"] > majority + 0.2


@pytest.mark.parametrize("arguments, message", [
    (["FOLDER", "--scene", "SCENE", "--labels", "LABELS"], "not both"),
    ([], "patch FOLDER"),
    (["--scene", "SCENE"], "exactly one of --labels"),
    (["FOLDER", "--sensor", "rgb"], "--sensor belong(s) to scene mode"),
])
def test_evaluate_needs_exactly_one_mode(shared_data: Path, tmp_path: Path, arguments: list[str],
                                         message: str) -> None:
    names = {"FOLDER": str(shared_data / "eurosat-ms"), "SCENE": str(shared_data / f"{CHIP}_S2Hand.tif"),
             "LABELS": str(shared_data / f"{CHIP}_LabelHand.tif")}
    out = tmp_path / "never"
    proc = run_backend("evaluate", *[names.get(a, a) for a in arguments], "--out", out, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr
    assert not list(tmp_path.iterdir())


def _rgb_from(rgbn: Path, out: Path) -> Path:
    """The red, green and blue bands of a 4-band uint8 raster: a plain RGB image."""
    import rasterio

    with rasterio.open(rgbn) as src:
        profile = dict(src.profile, count=3)
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read([1, 2, 3]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sensor, options", [
    ("rgbn", []),
    ("rgb", ["--sensor", "rgb"]),
    ("landsat-oli", ["--sensor", "landsat-oli", "--optical-units", "landsat-c2", "--spectral-fill", "auto"]),
])
def test_dense_mode_on_other_sensors_with_the_embed_input_options(shared_data: Path, tmp_path: Path,
                                                                   sensor: str, options: list[str]) -> None:
    """NAIP-like, RGB and Landsat-like scenes (simulated from the chip's S2 bands, its real water labels):
    the band statistics of a spectrally filled input no longer crash, and evaluate takes embed's options."""
    from backend.io.simulate import write_landsat_from_s2, write_rgbn_from_s2

    s2 = shared_data / f"{CHIP}_S2Hand.tif"
    if sensor == "landsat-oli":
        scene = write_landsat_from_s2(s2, tmp_path / "landsat.tif", resolution_m=None)
    else:
        scene = write_rgbn_from_s2(s2, tmp_path / "rgbn.tif")
        if sensor == "rgb":
            scene = _rgb_from(scene, tmp_path / "rgb.tif")
    out = tmp_path / "scores"
    proc = run_json("evaluate", "--scene", scene, *options, "--labels", shared_data / f"{CHIP}_LabelHand.tif",
                    "--bounds", *_crop_bounds(shared_data), "--no-bundled", "--block", "64", "--buffer", "8",
                    "--folds", "3", "--steps", "10", "--out", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout[-3000:]
    rows = json.loads(Path(f"{out}.json").read_text())["rows"]
    bands = rows["band statistics (mean, std)"]
    assert bands["embedding_dim"] == 24  # mean and std of the model's 12 bands, filled ones included
    majority = rows["majority class of the training blocks"]["knn_accuracy"]["mean"]
    assert bands["knn_accuracy"]["mean"] > majority  # water is distinct in the simulated bands too
