"""``classify``: label map from labelled sample polygons, never below a random forest on the raw bands.

    python -m backend classify --optical S2.tif --samples polys.gpkg --class-field class \\
        [--classifier auto|knn|random-forest|gradient-boosting] [--band-stats] [--neighbors 10] \\
        --out labels.tif [--confidence-out labels_confidence.tif] [--probabilities-out proba.tif]

With the input raster (``--optical``) every run computes per-patch band statistics and scores the
band-statistics baseline (a random forest on them) under the same spatially blocked split as the
classifier. ``--classifier auto`` (the default) keeps a random forest on embeddings + band
statistics only where it beats that baseline (blocked accuracy and macro-F1), else maps with the
baseline; without the input raster it is the kNN on the embeddings (no baseline to weigh).

Outputs ``{"labels", "style", "confidence", "confidence_style", "embeddings"}`` (+ ``probabilities``,
``probabilities_style``); stats include ``recipe`` (what made the map), ``recipe_reason``,
``recipes`` (each recipe scored: ``recipe``, ``classifier``, ``embeddings``, ``band_stats``,
``blocked_cv_accuracy``, ``blocked_cv_macro_f1``, ``chosen``), ``blocked_cv_accuracy`` and
``blocked_cv_macro_f1`` (spatially blocked cross-validation, the estimate to trust),
``baseline_blocked_cv_accuracy`` / ``baseline_blocked_cv_macro_f1``, ``per_class`` (``class``,
``name``, ``samples``, ``polygons``, ``blocked_accuracy``, ``f1``, ``lopo_accuracy``,
``baseline_blocked_accuracy``, ``baseline_f1``), ``class_counts``, ``polygon_counts``,
``lopo_accuracy``, ``trust``, ``mean_confidence`` and ``classes``.
"""

from __future__ import annotations

import argparse
from typing import Any

from backend.errors import UserError
from backend.events import Reporter
from backend.inference.resolve import InputOptions, open_inputs, resolve_embeddings


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import tempfile
    from pathlib import Path

    from backend.contract.outputs import default_output
    from backend.downstream.classify import classify_map
    from backend.downstream.options import check_distinct, output_path, read_samples
    from backend.downstream.styles import style_path
    from backend.downstream.validation import default_block
    from backend.inference.embedding_raster import EmbeddingRaster
    from backend.io.outputs import check_outputs

    if args.band_stats and not args.optical:
        raise UserError("--band-stats needs the input raster (--optical) to compute per-patch band "
                        "statistics")
    out = output_path(args.out)
    confidence = output_path(args.confidence_out, "--confidence-out") if args.confidence_out \
        else default_output(out, "confidence")
    probabilities = output_path(args.probabilities_out, "--probabilities-out") if args.probabilities_out \
        else None
    check_distinct(out, confidence, probabilities)
    named = {"--out": out, "the style": style_path(out), "--confidence-out": confidence,
             "the confidence style": style_path(confidence)}
    if probabilities is not None:
        named.update({"--probabilities-out": probabilities,
                      "the probabilities style": style_path(probabilities)})
    check_outputs(args, named)
    # fail fast on a bad layer, before embedding
    samples = read_samples(args.samples, args.samples_layer, args.class_field)
    for why, count in samples.skipped.items():
        reporter.warning(f"{count} feature(s) of the sample layer skipped: {why}")
    options = InputOptions.from_args(args)
    resolved = resolve_embeddings(options, reporter, start=0.0, end=0.6)
    embeddings = resolved.path
    check_distinct(out, confidence, probabilities, embeddings)
    with EmbeddingRaster(embeddings) as reader:
        crs = reader.grid.crs
    if not samples.source_crs:
        reporter.warning("the sample layer has no CRS; assuming the raster's CRS")
    samples = samples.to_crs(crs)
    cv_block = args.cv_block or default_block(args.window)
    with tempfile.TemporaryDirectory(prefix="terraprobe-classify-") as scratch:
        band_stats = None
        if args.optical:
            from backend.downstream.band_stats import write_band_statistics

            band_stats = Path(scratch) / "band_statistics.tif"
            with open_inputs(options) as inputs:
                count = write_band_statistics(inputs, band_stats)
            reporter.log(f"band statistics: {count} per-patch values (mean, std of each band) for the "
                         "raw-band baseline")
        stats = classify_map(embeddings, samples, out, confidence, probabilities,
                             classifier=args.classifier, neighbors=args.neighbors, band_stats=band_stats,
                             append_band_stats=args.band_stats, cv_block=cv_block, seed=args.seed,
                             device=args.device, normalise=args.normalise, distance=args.distance,
                             reporter=reporter, start=0.6, end=1.0)
    for message in stats.warnings:
        reporter.warning(message)
    _log_accuracy(reporter, stats, cv_block)
    reporter.progress(1.0, "done")
    outputs = {"labels": str(out), "style": str(style_path(out)), "confidence": str(confidence),
               "confidence_style": str(style_path(confidence)), "embeddings": str(embeddings)}
    if probabilities is not None:
        outputs.update(probabilities=str(probabilities), probabilities_style=str(style_path(probabilities)))
    reporter.result(outputs, {**resolved.stats, **stats.as_dict()})


def _log_accuracy(reporter: Reporter, stats: Any, cv_block: int) -> None:
    """Per-class figures, both estimates, and every recipe's blocked figures beside the chosen one's."""
    for row in stats.per_class:
        reporter.log(f"class {row['name']}: {row['samples']} patches in {row['polygons']} polygon(s), "
                     f"leave-one-polygon-out accuracy {_percent(row['lopo_accuracy'])}, spatially blocked "
                     f"{_percent(row['blocked_accuracy'])} (F1 {_fraction(row['f1'])})")
    what = f"k={stats.neighbors}" if stats.classifier == "knn" else stats.classifier
    reporter.log(f"leave-one-polygon-out accuracy: {_percent(stats.lopo_accuracy)} "
                 f"({stats.reference_patches} sample patches, {what})")
    for scored in stats.recipes:
        role = " (band-statistics baseline)" if not scored["embeddings"] else ""
        mark = ", made the map" if scored["chosen"] else ""
        reporter.log(f"spatially blocked ({stats.blocked_cv_folds} folds of {cv_block}x{cv_block}-patch "
                     f"blocks), {scored['recipe']}{role}: accuracy "
                     f"{_percent(scored['blocked_cv_accuracy'])}, macro-F1 "
                     f"{_fraction(scored['blocked_cv_macro_f1'])}{mark}")
    reporter.log(f"recipe: {stats.recipe} ({stats.recipe_reason})")
    reporter.log(f"which to trust: {stats.trust_note}")


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
