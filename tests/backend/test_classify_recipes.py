"""classify never maps below the raw bands: the default weighs its model recipe against a random
forest on band statistics under the spatially blocked split and reports both figures (issue 19).

Real rstoolbox-sen2 scene and its 25 class polygons; the embeddings are its per-patch band features
(``downstream_data``), so no encoder runs, and the band statistics come from the scene itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.downstream.classifiers import BASELINE, MODEL_RECIPE, MODEL_RECIPES, Recipe
from backend.downstream.classify import RecipeScore, choose_recipe
from backend.downstream.validation import CvAccuracy
from tests.backend.conftest import events_of, result_of, run_json
from tests.backend.downstream_data import SEN2, SEN2_POLYGONS, write_embedding_raster


@pytest.fixture(scope="module")
def sen2_embeddings(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_embedding_raster(shared_data / SEN2, tmp_path_factory.mktemp("emb") / "sen2_emb.tif")


def _run(*args: str | Path) -> tuple[dict, list[dict]]:
    """``classify`` in a real process: the result's stats and every event."""
    done = run_json("classify", *args)
    return result_of(done)["stats"], events_of(done)


def test_default_reports_the_baseline_beside_the_model_and_never_maps_below_it(
        shared_data: Path, sen2_embeddings: Path, tmp_path: Path) -> None:
    stats, events = _run("--embeddings", sen2_embeddings, "--optical", shared_data / SEN2,
                         "--samples", shared_data / SEN2_POLYGONS, "--out", tmp_path / "labels.tif")
    recipes = {row["recipe"]: row for row in stats["recipes"]}
    assert set(recipes) == {recipe.name for recipe in (*MODEL_RECIPES, BASELINE)}
    chosen = [row for row in stats["recipes"] if row["chosen"]]
    assert len(chosen) == 1 and chosen[0]["recipe"] == stats["recipe"]
    baseline = recipes[BASELINE.name]
    assert (stats["baseline_blocked_cv_accuracy"], stats["baseline_blocked_cv_macro_f1"]) == (
        baseline["blocked_cv_accuracy"], baseline["blocked_cv_macro_f1"])
    assert 0 < baseline["blocked_cv_accuracy"] <= 1 and 0 < baseline["blocked_cv_macro_f1"] <= 1
    assert stats["blocked_cv_accuracy"] >= stats["baseline_blocked_cv_accuracy"]
    assert stats["blocked_cv_macro_f1"] >= stats["baseline_blocked_cv_macro_f1"]
    assert [row["name"] for row in stats["per_class"]] == ["dryout", "forest", "village", "water"]
    assert [row["class"] for row in stats["per_class"]] == [1, 2, 3, 4]
    assert sum(row["samples"] for row in stats["per_class"]) == stats["reference_patches"]
    forest = stats["per_class"][1]
    assert 0 < forest["blocked_accuracy"] <= 1 and 0 < forest["f1"] <= 1 and forest["baseline_f1"] > 0
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any("band-statistics baseline" in line and "macro-F1" in line for line in logs)
    assert any(line.startswith(f"recipe: {stats['recipe']}") for line in logs)


def test_a_named_classifier_below_the_baseline_is_warned(
        shared_data: Path, sen2_embeddings: Path, tmp_path: Path) -> None:
    """The kNN on these embeddings loses to the baseline under the blocked split: kept (asked for), warned."""
    stats, events = _run("--embeddings", sen2_embeddings, "--optical", shared_data / SEN2,
                         "--samples", shared_data / SEN2_POLYGONS, "--classifier", "knn",
                         "--out", tmp_path / "knn.tif")
    assert stats["recipe"] == Recipe("knn").name and stats["baseline_blocked_cv_accuracy"] is not None
    below = stats["blocked_cv_accuracy"] <= stats["baseline_blocked_cv_accuracy"] and \
        stats["blocked_cv_macro_f1"] <= stats["baseline_blocked_cv_macro_f1"]
    warned = [e["message"] for e in events if e["event"] == "warning" and "below the band-statistics" in
              e["message"]]
    assert below and len(warned) == 1 and "--classifier auto" in warned[0]


def _score(recipe: Recipe, accuracy: float | None, macro_f1: float | None) -> RecipeScore:
    return RecipeScore(recipe, CvAccuracy("spatially blocked", accuracy, macro_f1=macro_f1))


@pytest.mark.parametrize(("model", "expected"), [
    ((0.70, 0.60), MODEL_RECIPE),  # better on both
    ((0.66, 0.60), BASELINE),  # as accurate, better macro-F1 only: noise on a few blocks
    ((0.66, 0.55), BASELINE),  # a tie is the baseline's
    ((0.80, 0.50), BASELINE),  # more accurate but a worse macro-F1: not at least as good
    ((0.60, 0.70), BASELINE),
])
def test_auto_keeps_the_model_recipe_only_where_it_beats_the_baseline(model: tuple[float, float],
                                                                      expected: Recipe) -> None:
    choice = choose_recipe("auto", [_score(MODEL_RECIPE, *model), _score(BASELINE, 0.66, 0.55)])
    assert choice.recipe == expected and choice.baseline is not None
    assert choice.chosen.blocked.accuracy >= 0.66 and choice.chosen.blocked.macro_f1 >= 0.55


def test_auto_keeps_the_best_model_recipe_that_beats_the_baseline() -> None:
    """Both model recipes are weighed: the more accurate of those beating the baseline makes the map."""
    forest, knn = MODEL_RECIPES
    scores = [_score(forest, 0.70, 0.60), _score(knn, 0.75, 0.62), _score(BASELINE, 0.66, 0.55)]
    assert choose_recipe("auto", scores).recipe == knn
    scores = [_score(forest, 0.70, 0.60), _score(knn, 0.75, 0.50), _score(BASELINE, 0.66, 0.55)]
    assert choose_recipe("auto", scores).recipe == forest  # the kNN's macro-F1 is below the baseline's
    scores = [_score(forest, 0.60, 0.60), _score(knn, 0.66, 0.70), _score(BASELINE, 0.66, 0.55)]
    assert choose_recipe("auto", scores).recipe == BASELINE
