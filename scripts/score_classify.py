"""Score ``classify``'s default recipe against the raw-band baseline on held-out real scenes (issue 19).

For each scene:

1. embed it with ``python -m backend embed`` (the real CLI; ``--model`` as given, else the bundled
   model for the sensor) and write its per-patch band statistics as ``classify`` does;
2. gather the labelled sample patches exactly as ``classify`` does (``collect_samples``);
3. outer spatial split: the sample polygons grouped by 16-patch blocks (the block holding most of
   each polygon; 128 px at 10 m, larger than the encoder's 120 px window), whole blocks held out,
   at most 5 folds (``GroupKFold``);
4. per fold, on the training polygons only: the default recipe as ``classify --classifier auto``
   chooses it (its own blocked split inside the training polygons, so nothing leaks), the
   band-statistics random forest (the baseline) and the former default (cosine kNN on the
   embeddings), each fitted and scored on the held-out patches;
5. pooled over the folds: patch accuracy and macro-F1 (mean F1 over the classes).

Scenes (``--data``, default ``../shared/data``):

* ``rstoolbox-sen2``: Sentinel-2 L2A, its 25 hand-drawn class polygons (4 classes).
* ``sen1floods11``: the Sentinel-2 chip; samples are 8 x 8 px patches of its hand label
  (``LabelHand``: water / not water) with at least half the pixels labelled and one class on at
  least 75 % of them, 400 drawn at random (seed 0), each a square polygon.
* ``landsat-oli``: the same chip simulated as Landsat 8 OLI Collection 2 Level-2 (30 m, ``SR_B1..7``,
  :func:`backend.io.simulate.write_landsat_from_s2`), samples made the same way on its 240 m patches.

Prints a Markdown table (the README's Evaluation section quotes it) and writes ``--json``.

Usage: .venv/bin/python scripts/score_classify.py [--data DIR] [--model NAME] [--work DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.downstream.classifiers import BASELINE, PatchClassifier, Recipe  # noqa: E402
from backend.downstream.classify import (  # noqa: E402
    AUTO,
    Samples,
    collect_samples,
    recipe_features,
    score_recipes,
)
from backend.downstream.validation import class_f1, default_block, polygon_blocks  # noqa: E402
from backend.io.vectors import SamplePolygon, SampleSet, read_sample_polygons  # noqa: E402

#: Outer folds at most (whole 16-patch blocks held out).
OUTER_FOLDS = 5
#: Label-raster samples: how many patches, the labelled share and the class purity each needs.
LABEL_SAMPLES = 400
LABELLED_SHARE = 0.5
PURITY = 0.75
PATCH = 8
FORMER_DEFAULT = Recipe("knn")


@dataclass
class Scene:
    """A scene to score: its optical raster and its sample polygons (made once the raster exists)."""

    name: str
    split: str
    raster: Path
    samples: Callable[[Path], SampleSet]


def label_patch_samples(label_path: Path) -> Callable[[Path], SampleSet]:
    """Samples from a label raster (0/1, -1 = none): pure, mostly labelled patches of the scored raster."""

    def make(raster: Path) -> SampleSet:
        from rasterio.windows import from_bounds

        with rasterio.open(raster) as src:
            transform, rows, cols, crs = src.transform, src.height // PATCH, src.width // PATCH, src.crs
        found = []
        with rasterio.open(label_path) as labels:
            for row in range(rows):
                for col in range(cols):
                    x0, y0 = transform * (col * PATCH, row * PATCH)
                    x1, y1 = transform * ((col + 1) * PATCH, (row + 1) * PATCH)
                    window = from_bounds(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1),
                                         labels.transform).round_offsets().round_lengths()
                    values = labels.read(1, window=window, boundless=True, fill_value=-1)
                    labelled = values[values >= 0]
                    if labelled.size < LABELLED_SHARE * values.size:
                        continue
                    classes, counts = np.unique(labelled, return_counts=True)
                    if counts.max() < PURITY * labelled.size:
                        continue
                    ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
                    geometry = {"type": "Polygon", "coordinates": [ring]}
                    found.append((str(int(classes[counts.argmax()])), geometry))
        picked = np.sort(np.random.default_rng(0).choice(len(found), min(LABEL_SAMPLES, len(found)),
                                                         replace=False))
        polygons = [SamplePolygon(i, *found[j]) for i, j in enumerate(picked)]
        classes = sorted({p.class_name for p in polygons}, key=int)
        return SampleSet(polygons, classes, source_crs=crs.to_wkt())

    return make


def scenes(data: Path, work: Path) -> list[Scene]:
    """The three scenes (the Landsat one is simulated into ``work``)."""
    from backend.io.simulate import write_landsat_from_s2

    floods_s2 = data / "sen1floods11" / "Spain_7370579_S2Hand.tif"
    floods_label = data / "sen1floods11" / "Spain_7370579_LabelHand.tif"
    landsat = work / "Spain_7370579_landsat_oli.tif"
    if not landsat.exists():
        write_landsat_from_s2(floods_s2, landsat, sensor="landsat-oli")
    polygons = data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"
    return [Scene("rstoolbox-sen2", "blocked", data / "rstoolbox-sen2" / "sen2.tif",
                  lambda raster: read_sample_polygons(polygons, "class")),
            Scene("sen1floods11", "spatial", floods_s2, label_patch_samples(floods_label)),
            Scene("landsat-oli (simulated from sen1floods11)", "spatial", landsat,
                  label_patch_samples(floods_label))]


def embed(raster: Path, out: Path, model: str | None) -> None:
    """``python -m backend embed`` through the real CLI."""
    command = [sys.executable, "-m", "backend", "embed", "--optical", str(raster), "--out", str(out)]
    done = subprocess.run(command + (["--model", model] if model else []), cwd=REPO, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"embed exit {done.returncode}: {' '.join(done.stderr.strip().splitlines()[-1:])}")


def band_statistics(raster: Path, out: Path, model: str | None) -> None:
    """The per-patch band statistics ``classify`` computes for this raster and model."""
    from backend.cli import build_parser
    from backend.downstream.band_stats import write_band_statistics
    from backend.inference.resolve import InputOptions, open_inputs

    argv = ["classify", "--optical", str(raster), "--samples", "-", "--out", str(out.with_suffix(".x.tif"))]
    options = InputOptions.from_args(build_parser().parse_args(argv + (["--model", model] if model else [])))
    with open_inputs(options) as inputs:
        write_band_statistics(inputs, out)


def gather(scene: Scene, work: Path, model: str | None) -> tuple[Samples, list[str], bool, str]:
    """The scene's labelled sample patches with embeddings and band statistics, as ``classify`` reads them;
    whether the field reads L2-normalised, and the model that embedded it (its ``TERRAPROBE_MODEL`` tag)."""
    from backend.downstream.band_stats import BandStatistics
    from backend.inference.embedding_raster import EmbeddingRaster

    stem = work / scene.raster.stem
    embeddings, bands = stem.with_name(stem.name + "_emb.tif"), stem.with_name(stem.name + "_bands.tif")
    embed(scene.raster, embeddings, model)
    band_statistics(scene.raster, bands, model)
    with EmbeddingRaster(embeddings, normalise="auto") as reader, BandStatistics(bands, reader.grid) as stats:
        samples = scene.samples(scene.raster).to_crs(reader.grid.crs)
        found, _ = collect_samples(reader, samples, stats)
        normalised = reader.normalised
        model_used = reader.source.tags().get("TERRAPROBE_MODEL", "?")
    return found, list(samples.classes), normalised, model_used


def subset(found: Samples, keep: np.ndarray) -> Samples:
    return Samples(found.vectors[keep], found.bands[keep], found.classes[keep], found.polygons[keep],
                   found.rows[keep], found.cols[keep])


def score_scene(found: Samples, names: list[str], normalised: bool, block: int) -> dict[str, Any]:
    """Outer blocked folds: the default (auto), the baseline and the former default, pooled."""
    from sklearn.model_selection import GroupKFold

    def make(recipe: Recipe) -> PatchClassifier:
        return PatchClassifier(recipe.classifier, len(names), seed=0)

    groups = polygon_blocks(found.polygons, found.rows, found.cols, block)
    folds = min(OUTER_FOLDS, len(np.unique(groups)))
    predicted = {key: np.full(len(found.classes), -1) for key in ("default", "baseline", "former")}
    picks = []
    for train_index, test_index in GroupKFold(n_splits=folds).split(found.classes, found.classes, groups):
        train = subset(found, np.isin(np.arange(len(found.classes)), train_index))
        test = subset(found, np.isin(np.arange(len(found.classes)), test_index))
        choice, builders = score_recipes(train, names, AUTO, make, block, normalised)
        picks.append(choice.recipe.name)
        fitted = {"default": (choice.recipe, builders[choice.recipe])}
        for key, recipe in (("baseline", BASELINE), ("former", FORMER_DEFAULT)):
            fitted[key] = (recipe, recipe_features(recipe, train, normalised, "cosine"))
        for key, (recipe, features_of) in fitted.items():
            model = make(recipe).fit(features_of(train.vectors, train.bands), train.classes, train.polygons)
            proba = model.predict_proba(features_of(test.vectors, test.bands))
            predicted[key][test_index] = proba.argmax(axis=1)
    scores = {key: _figures(found.classes, values, len(names)) for key, values in predicted.items()}
    return {"patches": len(found.classes), "polygons": len(np.unique(found.polygons)), "classes": names,
            "folds": folds, "auto_picks": picks, **scores}


def _figures(truth: np.ndarray, predicted: np.ndarray, class_count: int) -> dict[str, float]:
    f1 = [value for value in class_f1(truth, predicted, class_count) if value is not None]
    return {"accuracy": float((truth == predicted).mean()), "macro_f1": float(np.mean(f1))}


def markdown(model: str, results: dict[str, dict[str, Any]]) -> str:
    """The README table: default and baseline per scene, their difference, and the former default."""
    lines = [f"`--model {model}`; held-out sample patches pooled over the outer folds.", "",
             "| scene | model | split | patches / polygons / classes | default acc | default macro-F1 | "
             "band-stats RF acc | band-stats RF macro-F1 | default - RF (acc / F1) | former default kNN "
             "(acc / F1) | auto's recipe per fold |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in results.items():
        if "error" in row:
            lines.append(f"| {name} | | {row['split']} | not scored: {row['error']} |" + " |" * 7)
            continue
        default, baseline, former = row["default"], row["baseline"], row["former"]
        picks = ", ".join("model" if "embeddings" in pick else "baseline" for pick in row["auto_picks"])
        lines.append(
            f"| {name} | {row['model']} | {row['split']}, {row['folds']} folds | {row['patches']} / "
            f"{row['polygons']} / "
            f"{len(row['classes'])} | {default['accuracy']:.3f} | {default['macro_f1']:.3f} | "
            f"{baseline['accuracy']:.3f} | {baseline['macro_f1']:.3f} | "
            f"{default['accuracy'] - baseline['accuracy']:+.3f} / "
            f"{default['macro_f1'] - baseline['macro_f1']:+.3f} "
            f"| {former['accuracy']:.3f} / {former['macro_f1']:.3f} | {picks} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", help="embed --model (default: the bundled model for each sensor)")
    parser.add_argument("--work", type=Path, help="folder for the embeddings (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="score-classify-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        results = {}
        for scene in scenes(args.data, work):
            try:
                found, names, normalised, model_used = gather(scene, work, args.model)
            except RuntimeError as error:  # e.g. a model without this sensor's bands: a row that says so
                results[scene.name] = {"split": scene.split, "error": str(error)}
                continue
            scored = score_scene(found, names, normalised, default_block(120))
            results[scene.name] = {"split": scene.split, "model": model_used, **scored}
            print(f"{scene.name}: {json.dumps(results[scene.name])}", file=sys.stderr)
    table = markdown(args.model or "(the default for each sensor)", results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "scenes": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
