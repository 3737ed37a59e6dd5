"""segment reports a held-out figure and never maps below the same head on band statistics (issue 19).

Real Sen1Floods11 chip and its hand label; the embeddings are its per-patch band features
(``downstream_data``) or the band statistics themselves, so no encoder runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio

from backend.downstream.segmentation import BASELINE_RECIPE, MODEL_RECIPE, load_head
from tests.backend.conftest import events_of, result_of, run_json
from tests.backend.downstream_data import FLOODS_LABEL, FLOODS_S2, write_embedding_raster

STEPS = "20"


@pytest.fixture(scope="module")
def floods_embeddings(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_embedding_raster(shared_data / FLOODS_S2, tmp_path_factory.mktemp("floods") / "emb.tif")


def _segment(*args: str | Path) -> tuple[dict, list[dict]]:
    """``segment`` in a real process (few steps): the result's stats and every event."""
    done = run_json("segment", *args, "--steps", STEPS)
    return result_of(done)["stats"], events_of(done)


def test_held_out_figure_beside_the_baseline_and_never_below_it(
        shared_data: Path, floods_embeddings: Path, tmp_path: Path) -> None:
    stats, events = _segment("--embeddings", floods_embeddings, "--optical", shared_data / FLOODS_S2,
                             "--label-raster", shared_data / FLOODS_LABEL, "--out", tmp_path / "water.tif")
    assert stats["held_out_folds"] == 3 and stats["held_out_pixels"] > 100_000
    assert 0.5 < stats["held_out_accuracy"] <= 1 and 0 < stats["held_out_macro_f1"] <= 1
    assert 0.5 < stats["baseline_held_out_accuracy"] <= 1 and 0 < stats["baseline_held_out_macro_f1"] <= 1
    if stats["recipe"] == MODEL_RECIPE:
        assert stats["held_out_accuracy"] >= stats["baseline_held_out_accuracy"]
        assert stats["held_out_macro_f1"] >= stats["baseline_held_out_macro_f1"]
    else:
        assert stats["recipe"] == BASELINE_RECIPE
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any(line.startswith("held-out (3 folds") for line in logs)
    assert any("the raw-band baseline" in line for line in logs)


def test_a_tie_gives_the_baseline_head_which_applies_again(
        shared_data: Path, floods_embeddings: Path, tmp_path: Path) -> None:
    """Embeddings that are the band statistics themselves tie the baseline exactly: its head maps."""
    from backend.downstream.band_stats import write_band_statistics
    from backend.inference.inputs import InputSet
    from backend.inference.model import model_config
    from backend.paths import bundled_model

    statistics = tmp_path / "statistics.tif"
    with InputSet(shared_data / FLOODS_S2, None, model_config(bundled_model())) as inputs:
        write_band_statistics(inputs, statistics)
    head = tmp_path / "head.safetensors"
    inputs = ("--optical", shared_data / FLOODS_S2, "--model", bundled_model())
    stats, events = _segment("--embeddings", statistics, *inputs, "--label-raster",
                             shared_data / FLOODS_LABEL, "--out", tmp_path / "water.tif", "--head-out", head)
    assert stats["recipe"] == BASELINE_RECIPE
    assert (stats["held_out_accuracy"], stats["held_out_macro_f1"]) == (
        stats["baseline_held_out_accuracy"], stats["baseline_held_out_macro_f1"])
    warned = [e["message"] for e in events if e["event"] == "warning"]
    assert any("the map and the head are the band-statistics head's" in message for message in warned)
    _, info = load_head(head)
    assert info.embedding == {"band_statistics": True} and info.embedding_dim == 2 * len(info.bands)
    applied, _ = _segment("--embeddings", floods_embeddings, *inputs, "--head", head,
                          "--out", tmp_path / "again.tif")
    assert applied["recipe"] == BASELINE_RECIPE and not applied["head_trained"]
    with rasterio.open(tmp_path / "water.tif") as first, rasterio.open(tmp_path / "again.tif") as second:
        assert (first.read() == second.read()).all()
