"""Label maps from labelled sample polygons with any patch classifier, and their accuracy report.

The polygons are rasterised onto the patch grid of an embedding raster; every valid patch under a
polygon becomes a training sample with the polygon's class (and, with band statistics, the
per-patch mean/std of the input pixels). A :class:`backend.downstream.classifiers.PatchClassifier`
(kNN, random forest or gradient boosting) is fitted on all of them and labels every valid patch
of the raster, strip by strip. Outputs: the class raster (1..K, nodata 0, paletted ``.qml`` with the
class names), the confidence raster (the largest class probability, NaN nodata, pseudocolour
``.qml``) and optionally one probability band per class (named after the class).

Before the map is made, :mod:`backend.downstream.validation` scores the classifier on the samples
twice: leave-one-polygon-out and spatially blocked cross-validation (the one to trust).

Never below the raw bands: with band statistics at hand, every run also scores the baseline (a
random forest on the band statistics alone, :data:`backend.downstream.classifiers.BASELINE`) under
the same blocked split, so the analyst sees its figure beside the model's. ``classifier="auto"``
weighs the model recipe (a random forest on embeddings + band statistics) against the baseline and
keeps the model recipe only when its blocked accuracy is higher and its macro-F1 at least the
baseline's (:func:`backend.downstream.validation.beats`); else the map is the baseline's. Both
figures, the choice and its reason, and per-class figures are in :class:`ClassifyStats`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.downstream.classifiers import BASELINE, MODEL_RECIPES, Recipe
from backend.downstream.validation import CvAccuracy
from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster
from backend.io.vectors import SampleSet


@dataclass
class Samples:
    """Labelled sample patches: raw vectors, band statistics, class index, polygon, patch position."""

    vectors: np.ndarray
    bands: np.ndarray | None
    classes: np.ndarray
    polygons: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


#: ``classifier`` value that weighs the model recipe against the band-statistics baseline.
AUTO = "auto"


@dataclass
class RecipeScore:
    """One recipe's spatially blocked figures on the samples."""

    recipe: Recipe
    blocked: CvAccuracy

    def beats(self, other: RecipeScore) -> bool:
        """More accurate than ``other`` under the blocked split, and at least as good in macro-F1."""
        from backend.downstream.validation import beats

        mine, theirs = self.blocked, other.blocked
        return beats(mine.accuracy, mine.macro_f1, theirs.accuracy, theirs.macro_f1)

    def as_dict(self, chosen: Recipe) -> dict[str, Any]:
        return {"recipe": self.recipe.name, "classifier": self.recipe.classifier,
                "embeddings": self.recipe.embeddings, "band_stats": self.recipe.band_stats,
                "blocked_cv_accuracy": self.blocked.accuracy, "blocked_cv_macro_f1": self.blocked.macro_f1,
                "chosen": self.recipe == chosen}


@dataclass
class RecipeChoice:
    """The recipe a run uses, why, and every recipe it scored (the baseline among them when it could)."""

    recipe: Recipe
    reason: str
    scores: list[RecipeScore]

    @property
    def chosen(self) -> RecipeScore:
        return next(score for score in self.scores if score.recipe == self.recipe)

    @property
    def baseline(self) -> RecipeScore | None:
        return next((score for score in self.scores if score.recipe == BASELINE), None)


@dataclass
class ClassifyStats:
    """Per-class sample counts, both accuracy estimates and the class legend of a classify run.

    ``recipe`` is what made the map (``recipes``: every recipe scored, the band-statistics baseline
    among them when band statistics were at hand; ``baseline_*`` its figures); ``per_class`` holds
    one row per class: ``class`` (raster value), ``name``, ``samples``, ``polygons``,
    ``blocked_accuracy``, ``f1``, ``lopo_accuracy``, ``baseline_blocked_accuracy``, ``baseline_f1``.
    """

    classes: dict[int, str]
    class_counts: dict[str, int]
    polygon_counts: dict[str, int]
    classifier: str
    band_stats: bool
    recipe: str
    recipe_reason: str
    recipes: list[dict[str, Any]]
    lopo_accuracy: float | None
    lopo_class_accuracy: dict[str, float | None]
    blocked_cv_accuracy: float | None
    blocked_cv_macro_f1: float | None
    blocked_cv_class_accuracy: dict[str, float | None]
    baseline_blocked_cv_accuracy: float | None
    baseline_blocked_cv_macro_f1: float | None
    per_class: list[dict[str, Any]]
    blocked_cv_folds: int
    blocked_cv_block_patches: int
    blocked_cv_note: str
    trust: str
    trust_note: str
    neighbors: int
    reference_patches: int
    valid_patches: int
    mean_confidence: float | None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def candidate_recipes(classifier: str, has_bands: bool, append_band_stats: bool) -> list[Recipe]:
    """The recipes a run scores: the one asked for (or auto's model recipe) first, then the baseline."""
    if classifier == AUTO:
        return [*MODEL_RECIPES, BASELINE] if has_bands else [Recipe("knn")]
    asked = Recipe(classifier, band_stats=has_bands and append_band_stats)
    return [asked, BASELINE] if has_bands else [asked]


def choose_recipe(classifier: str, scores: list[RecipeScore]) -> RecipeChoice:
    """Auto: the model recipe when it beats the baseline under the blocked split, else the baseline."""
    first = scores[0]
    if classifier != AUTO:
        return RecipeChoice(first.recipe, f"--classifier {classifier} as asked", scores)
    if len(scores) == 1:
        return RecipeChoice(first.recipe, "no band statistics (no input raster), so no baseline to weigh: "
                            "the kNN on the embeddings", scores)
    *models, baseline = scores
    if models[0].blocked.accuracy is None:
        return RecipeChoice(models[0].recipe, "no spatially blocked split to weigh the recipes by: the model "
                            "recipe, which holds the baseline's band statistics too", scores)
    winners = [model for model in models if model.beats(baseline)]
    if winners:
        best = max(winners, key=lambda model: (model.blocked.accuracy, model.blocked.macro_f1))
        return RecipeChoice(best.recipe, f"{best.recipe.name} beats the band-statistics baseline under the "
                            "spatially blocked split", scores)
    return RecipeChoice(baseline.recipe, "no model recipe beats the band-statistics baseline under "
                        "the spatially blocked split, so the map is the baseline's", scores)


def per_class_rows(names: list[str], class_counts: dict[str, int], polygon_counts: dict[str, int],
                   choice: RecipeChoice, lopo: CvAccuracy) -> list[dict[str, Any]]:
    """One row per class: samples, the chosen recipe's blocked accuracy and F1, the baseline's."""
    chosen = choice.chosen.blocked
    baseline = choice.baseline.blocked if choice.baseline is not None else CvAccuracy("", None)
    return [{"class": value, "name": name, "samples": class_counts[name], "polygons": polygon_counts[name],
             "blocked_accuracy": chosen.class_accuracy.get(name), "f1": chosen.class_f1.get(name),
             "lopo_accuracy": lopo.class_accuracy.get(name),
             "baseline_blocked_accuracy": baseline.class_accuracy.get(name),
             "baseline_f1": baseline.class_f1.get(name)}
            for value, name in enumerate(names, start=1)]


def collect_samples(reader: EmbeddingRaster, samples: SampleSet,
                    bands: Any = None) -> tuple[Samples, list[str]]:
    """Rasterise the polygons onto the patch grid and gather the labelled valid patches.

    Returns the samples and warnings (polygons outside the area embedded, the raster or its ``--bounds``
    part, or on nodata only).

    Raises:
        UserError: no polygon overlaps valid patches of the raster.
    """
    from backend.downstream.samples import polygons_window, rasterize_polygons

    window = polygons_window(samples.polygons, reader.grid)
    if window is None:
        raise UserError(f"no sample polygon overlaps the area ({len(samples.polygons)} polygons, "
                        f"reprojected to {reader.grid.crs}); check the layer and the area")
    burnt = rasterize_polygons(samples.polygons, reader.grid, window)
    array, valid = reader.read(window)
    labelled = valid & (burnt > 0)
    warnings: list[str] = []
    outside = len(samples.polygons) - len(np.unique(burnt[burnt > 0]))
    if outside:
        warnings.append(f"{outside} sample polygon(s) lie outside the area (the raster, or its --bounds "
                        "part) and were ignored")
    on_nodata = len(np.unique(burnt[burnt > 0])) - len(np.unique(burnt[labelled]))
    if on_nodata:
        warnings.append(f"{on_nodata} sample polygon(s) cover only nodata patches and were ignored")
    if not labelled.any():
        raise UserError("no sample polygon overlaps valid (non-nodata) patches of the raster")
    positions = burnt[labelled] - 1
    class_index = np.array([samples.classes.index(p.class_name) for p in samples.polygons])[positions]
    rows, cols = np.nonzero(labelled)
    statistics = None if bands is None else np.ascontiguousarray(bands.read(window)[:, labelled].T)
    return Samples(vectors=np.ascontiguousarray(array[:, labelled].T), bands=statistics,
                   classes=class_index.astype(np.int64), polygons=positions.astype(np.int64),
                   rows=rows + int(window.row_off), cols=cols + int(window.col_off)), warnings


def recipe_features(recipe: Recipe, found: Samples, normalised: bool, distance: str) -> Any:
    """The :class:`~backend.downstream.classifiers.FeatureBuilder` of ``recipe``, fitted on ``found``.

    Directions for the cosine kNN (balances the band statistics too); else as ``--normalise`` read them.
    """
    from backend.downstream.classifiers import FeatureBuilder

    cosine_knn = recipe.classifier == "knn" and distance == "cosine"
    return FeatureBuilder.fit(found.bands if recipe.band_stats else None, normalise=normalised or cosine_knn,
                              embeddings=recipe.embeddings)


def score_recipes(found: Samples, names: list[str], classifier: str, make: Any, cv_block: int,
                  normalised: bool, distance: str = "cosine",
                  append_band_stats: bool = True) -> tuple[RecipeChoice, dict[Recipe, Any]]:
    """Score the candidate recipes under the spatially blocked split and choose; with their features.

    ``make(recipe)`` returns an unfitted classifier for a recipe.
    """
    from backend.downstream.validation import blocked_cv

    recipes = candidate_recipes(classifier, found.bands is not None, append_band_stats)
    builders = {recipe: recipe_features(recipe, found, normalised, distance) for recipe in recipes}
    scores = [RecipeScore(recipe, blocked_cv(lambda recipe=recipe: make(recipe),
                                             builders[recipe](found.vectors, found.bands), found.classes,
                                             found.polygons, found.rows, found.cols, cv_block, names))
              for recipe in recipes]
    return choose_recipe(classifier, scores), builders


def classify_map(embeddings: str | os.PathLike[str], samples: SampleSet, out: str | os.PathLike[str],
                 confidence_out: str | os.PathLike[str] | None = None,
                 probabilities_out: str | os.PathLike[str] | None = None, classifier: str = "knn",
                 neighbors: int = 10, band_stats: str | os.PathLike[str] | None = None,
                 append_band_stats: bool = True, cv_block: int = 16, seed: int = 0, device: str = "auto",
                 normalise: str = "auto", distance: str = "cosine", reporter: Any = None, start: float = 0.0,
                 end: float = 1.0) -> ClassifyStats:
    """Label every valid patch with ``classifier`` trained on the sample polygons' patches.

    Args:
        embeddings: the embedding raster.
        samples: the polygons, in the raster's CRS.
        out: class raster to write (1..K in ``samples.classes`` order, nodata 0) + its ``.qml``.
        confidence_out: largest class probability (float32, NaN nodata) + ``.qml``.
        probabilities_out: one float32 band per class (described by the class name).
        classifier: ``auto`` (the better of the model recipe and the band-statistics baseline),
            ``knn``, ``random-forest`` or ``gradient-boosting``.
        neighbors: k of the kNN.
        band_stats: a band-statistics raster (:mod:`backend.downstream.band_stats`): the baseline's
            features, and (``append_band_stats``) added to the named classifier's features.
        append_band_stats: with a named classifier, add the band statistics to its features.
        cv_block: block side in patches of the spatially blocked cross-validation.
        seed: seeds the scikit-learn models.
        normalise: ``--normalise`` of the field (``auto``: L2 for ``embed``'s and unit-length fields).
        distance: ``cosine`` or ``euclidean`` (the kNN's neighbours; trees ignore it).

    Raises:
        UserError: no usable samples on the raster, or fewer than two classes among them.
    """
    from backend.downstream.band_stats import BandStatistics
    from backend.downstream.classifiers import PatchClassifier
    from backend.downstream.raster import RasterOutput, class_dtype, pick_device, result_rasters, tracker
    from backend.downstream.validation import TRUST_NOTE, leave_one_polygon_out, polygon_blocks

    if cv_block < 1:
        raise UserError(f"--cv-block must be at least 1 patch (got {cv_block})")
    torch_device = pick_device(device)
    class_count = len(samples.classes)
    names = list(samples.classes)
    track = tracker(reporter)
    span = end - start

    def make(recipe: Recipe) -> PatchClassifier:
        return PatchClassifier(recipe.classifier, class_count, neighbors, seed, torch_device, distance)

    with EmbeddingRaster(embeddings, normalise=normalise) as reader:
        bands = BandStatistics(band_stats, reader.grid) if band_stats is not None else None
        try:
            found, warnings = collect_samples(reader, samples, bands)
            present = np.unique(found.classes).tolist()
            if len(present) < 2:
                raise UserError(f"the samples on this raster have only one class ('{names[present[0]]}'); "
                                "a classifier needs at least two classes")
            class_counts = {name: int((found.classes == i).sum()) for i, name in enumerate(names)}
            polygon_counts = {name: len(np.unique(found.polygons[found.classes == i]))
                              for i, name in enumerate(names)}
            warnings += [f"class '{name}' has no valid sample patch on this raster"
                         for name, count in class_counts.items() if not count]
            choice, builders = score_recipes(found, names, classifier, make, cv_block, reader.normalised,
                                             distance, append_band_stats)
            recipe = choice.recipe
            if recipe.classifier == "knn" and neighbors > len(found.classes):
                warnings.append(f"--neighbors {neighbors} is more than the {len(found.classes)} sample "
                                f"patches; using {len(found.classes)}")
            features_of = builders[recipe]
            features = features_of(found.vectors, found.bands)
            lopo = leave_one_polygon_out(lambda: make(recipe), features, found.classes, found.polygons, names,
                                         knn=recipe.classifier == "knn" and distance == "cosine")
            blocked = choice.chosen.blocked
            warnings += _comparison_warnings(choice)
            if blocked.why:
                warnings.append(f"no spatially blocked accuracy: {blocked.why}")
            else:
                blocks = polygon_blocks(found.polygons, found.rows, found.cols, cv_block)
                single = [name for index, name in enumerate(names)
                          if len(np.unique(blocks[found.classes == index])) == 1]
                if single:
                    warnings.append(f"class(es) {', '.join(single)} lie in one {cv_block}-patch block only: "
                                    "held out, they have no training samples, so the blocked accuracy is "
                                    "pessimistic for them; draw such classes in more places")
            if reporter is not None:
                reporter.progress(start + 0.2 * span, "accuracy estimated")
            model = make(recipe).fit(features, found.classes, found.polygons)

            dtype = class_dtype(class_count)
            outputs = {"labels": RasterOutput(out, dtype, 0, ("class",))}
            if confidence_out is not None:
                outputs["confidence"] = RasterOutput(confidence_out, "float32", float("nan"), ("confidence",))
            if probabilities_out is not None:
                outputs["probabilities"] = RasterOutput(probabilities_out, "float32", float("nan"),
                                                        tuple(names))
            valid_total, confidence_sum = 0, 0.0
            low, high = np.inf, -np.inf
            with result_rasters(reader.grid, *outputs.values()) as written, contextlib.ExitStack() as stack:
                results = dict(zip(outputs, written))
                datasets = {kind: stack.enter_context(result.open()) for kind, result in results.items()}
                labels_dst = datasets["labels"]
                confidence_dst = datasets.get("confidence")
                probability_dst = datasets.get("probabilities")
                for window in track(reader.windows(), f"classifying patches ({recipe.name})",
                                    start + 0.2 * span, end):
                    vectors, rows, cols = reader.read_vectors(window)
                    shape = (int(window.height), int(window.width))
                    labels = np.zeros(shape, dtype=dtype)
                    confidence = np.full(shape, np.nan, dtype=np.float32)
                    probabilities = np.full((class_count, *shape), np.nan, np.float32) \
                        if probability_dst is not None else None
                    if len(vectors):
                        statistics = bands.read(window)[:, rows, cols].T if features_of.uses_bands else None
                        proba = model.predict_proba(features_of(vectors, statistics))
                        labels[rows, cols] = (proba.argmax(axis=1) + 1).astype(dtype)
                        scores = proba.max(axis=1)
                        confidence[rows, cols] = scores
                        if probabilities is not None:
                            probabilities[:, rows, cols] = proba.T
                        low, high = min(low, float(scores.min())), max(high, float(scores.max()))
                        confidence_sum += float(scores.sum(dtype=np.float64))
                    valid_total += len(vectors)
                    labels_dst.write(labels[np.newaxis], window=window)
                    if confidence_dst is not None:
                        confidence_dst.write(confidence[np.newaxis], window=window)
                    if probability_dst is not None:
                        probability_dst.write(probabilities, window=window)
                stack.close()  # every raster complete before the styles and the rename
                results["labels"].style_classes(samples.class_values)
                if "confidence" in results:
                    results["confidence"].style_range(low if np.isfinite(low) else 0.0,
                                                      high if np.isfinite(high) else 1.0)
                if "probabilities" in results:
                    results["probabilities"].style_range(0.0, 1.0)
        finally:
            if bands is not None:
                bands.close()
    baseline = choice.baseline
    return ClassifyStats(
        classes=samples.class_values, class_counts=class_counts, polygon_counts=polygon_counts,
        classifier=recipe.classifier, band_stats=recipe.band_stats, recipe=recipe.name,
        recipe_reason=choice.reason, recipes=[score.as_dict(recipe) for score in choice.scores],
        lopo_accuracy=lopo.accuracy, lopo_class_accuracy=lopo.class_accuracy or dict.fromkeys(names),
        blocked_cv_accuracy=blocked.accuracy, blocked_cv_macro_f1=blocked.macro_f1,
        blocked_cv_class_accuracy=blocked.class_accuracy or dict.fromkeys(names),
        baseline_blocked_cv_accuracy=baseline.blocked.accuracy if baseline else None,
        baseline_blocked_cv_macro_f1=baseline.blocked.macro_f1 if baseline else None,
        per_class=per_class_rows(names, class_counts, polygon_counts, choice, lopo),
        blocked_cv_folds=blocked.folds, blocked_cv_block_patches=cv_block, blocked_cv_note=blocked.why,
        trust="spatially blocked" if blocked.accuracy is not None else "leave-one-polygon-out",
        trust_note=TRUST_NOTE if blocked.accuracy is not None else
        f"leave-one-polygon-out, the only estimate here ({blocked.why}); it is optimistic",
        neighbors=model.effective_neighbors if recipe.classifier == "knn" else neighbors,
        reference_patches=len(found.classes), valid_patches=valid_total,
        mean_confidence=confidence_sum / valid_total if valid_total else None,
        warnings=warnings)


def _comparison_warnings(choice: RecipeChoice) -> list[str]:
    """A named recipe below the band-statistics baseline under the blocked split is never silent."""
    baseline = choice.baseline
    chosen = choice.chosen
    if baseline is None or chosen is baseline or baseline.blocked.accuracy is None:
        return []
    if baseline.beats(chosen):
        return [f"{chosen.recipe.name} scores below the band-statistics baseline ({baseline.recipe.name}) "
                f"under the spatially blocked split: accuracy {chosen.blocked.accuracy:.3f} vs "
                f"{baseline.blocked.accuracy:.3f}, macro-F1 {chosen.blocked.macro_f1:.3f} vs "
                f"{baseline.blocked.macro_f1:.3f}; --classifier auto keeps the better of the two"]
    return []
