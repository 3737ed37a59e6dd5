"""``evaluate`` on a small EuroSAT-MS subset: scores in [0, 1], reproducible with a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.backend.conftest import run_backend, run_json


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    import numpy as np
    import rasterio

    from backend.models import ModalityConfig, ModelConfig, build_model, save_model
    from backend.models.config import S2_BANDS

    sample = sorted((shared_data / "eurosat-ms" / "Forest").glob("*.tif"))[0]
    with rasterio.open(sample) as src:
        pixels = src.read([1, 2, 3, 4, 5, 6, 7, 8, 13, 9, 11, 12]).astype(np.float64)
    config = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1,
                         modalities={"optical": ModalityConfig(
                             list(S2_BANDS), pixels.mean(axis=(1, 2)).tolist(),
                             pixels.std(axis=(1, 2)).tolist())})
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(build_model(config), path)
    return path


def _evaluate(folder: Path, model: Path, out: Path) -> dict:
    proc = run_json("evaluate", folder, "--model", model, "--no-bundled", "--limit-per-class", "6", "--folds",
                    "3", "--neighbors", "5", "--seed", "3", "--out", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(Path(f"{out}.json").read_text())


@pytest.mark.slow
def test_evaluate_scores_are_bounded_and_reproducible(shared_data: Path, tiny_model: Path,
                                                      tmp_path: Path) -> None:
    folder = shared_data / "eurosat-ms"
    first = _evaluate(folder, tiny_model, tmp_path / "a")
    second = _evaluate(folder, tiny_model, tmp_path / "b")
    assert first["rows"] == second["rows"]
    assert set(first["rows"]) == {"band statistics (mean, std)", "random weights (tiny architecture)",
                                  "model: tiny.safetensors"}
    for row in first["rows"].values():
        for metric in ("knn_accuracy", "linear_accuracy", "kmeans_nmi", "kmeans_purity"):
            assert 0.0 <= row[metric]["mean"] <= 1.0
            assert len(row[metric]["folds"]) == 3
        assert -1.0 <= row["kmeans_ari"]["mean"] <= 1.0
    # 10 classes: the raw band statistics already separate them far better than chance.
    assert first["rows"]["band statistics (mean, std)"]["linear_accuracy"]["mean"] > 0.3
    table = Path(tmp_path / "a.md").read_text()
    assert "| band statistics (mean, std) |" in table and "±" in table


def test_evaluate_rejects_a_folder_without_classes(tmp_path: Path) -> None:
    proc = run_backend("evaluate", tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "class sub-folders" in proc.stderr
