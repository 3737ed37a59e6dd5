"""``classify``: label map from labelled sample polygons with kNN, a random forest or gradient boosting.

    python -m backend classify --optical S2.tif --samples polys.gpkg --class-field class \\
        [--classifier knn|random-forest|gradient-boosting] [--band-stats] [--neighbors 10] \\
        --out labels.tif [--confidence-out labels_confidence.tif] [--probabilities-out proba.tif]

Outputs ``{"labels", "style", "confidence", "confidence_style", "embeddings"}`` (+ ``probabilities``,
``probabilities_style``); stats include ``class_counts`` (sample patches per class),
``polygon_counts``, ``lopo_accuracy``, ``blocked_cv_accuracy`` (spatially blocked cross-validation,
the estimate to trust), ``trust``, ``mean_confidence`` and ``classes``.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter
from backend.jobs._inputs import add_input_arguments

CLASSIFIER_CHOICES = ("knn", "random-forest", "gradient-boosting")


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from backend.downstream.options import add_field_arguments, add_samples_arguments

    parser = subparsers.add_parser("classify", parents=[common],
                                   help="label map (+ confidence) from labelled sample polygons: kNN, "
                                        "random forest or gradient boosting")
    add_input_arguments(parser)
    add_samples_arguments(parser, required=True)
    add_field_arguments(parser, distance=True)
    parser.add_argument("--classifier", choices=CLASSIFIER_CHOICES, default="knn",
                        help="knn: cosine kNN vote (default); random-forest / gradient-boosting: "
                             "scikit-learn models (seeded, one core)")
    parser.add_argument("--band-stats", action="store_true",
                        help="add per-patch mean/std of the input bands (standardised) to the embeddings; "
                             "needs --optical")
    parser.add_argument("--neighbors", type=int, default=10, help="k of the kNN vote (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scikit-learn models")
    parser.add_argument("--cv-block", type=int, metavar="PATCHES",
                        help="block side of the spatially blocked accuracy, in patches (default: "
                             "--window / 8 + 1, larger than the encoder's receptive field)")
    parser.add_argument("--out", required=True, metavar="PATH", help="class GeoTIFF to write")
    parser.add_argument("--confidence-out", metavar="PATH",
                        help="confidence GeoTIFF: the largest class probability "
                             "(default: <out>_confidence.tif)")
    parser.add_argument("--probabilities-out", metavar="PATH",
                        help="optional GeoTIFF with one probability band per class")
    parser.set_defaults(run=run)


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
    from backend.jobs._inputs import InputOptions, open_inputs, resolve_embeddings

    if args.neighbors < 1:
        raise UserError(f"--neighbors must be at least 1 (got {args.neighbors})")
    if args.cv_block is not None and args.cv_block < 1:
        raise UserError(f"--cv-block must be at least 1 patch (got {args.cv_block})")
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
        if args.band_stats:
            from backend.downstream.band_stats import write_band_statistics

            band_stats = Path(scratch) / "band_statistics.tif"
            with open_inputs(options) as inputs:
                count = write_band_statistics(inputs, band_stats)
            reporter.log(f"band statistics: {count} per-patch values (mean, std of each band) added")
        stats = classify_map(embeddings, samples, out, confidence, probabilities,
                             classifier=args.classifier, neighbors=args.neighbors, band_stats=band_stats,
                             cv_block=cv_block, seed=args.seed, device=args.device, normalise=args.normalise,
                             distance=args.distance, reporter=reporter, start=0.6, end=1.0)
    for message in stats.warnings:
        reporter.warning(message)
    for name in samples.classes:
        reporter.log(f"class {name}: {stats.class_counts[name]} patches in {stats.polygon_counts[name]} "
                     f"polygon(s), leave-one-polygon-out accuracy "
                     f"{_percent(stats.lopo_class_accuracy[name])}, spatially blocked "
                     f"{_percent(stats.blocked_cv_class_accuracy[name])}")
    what = f"k={stats.neighbors}" if args.classifier == "knn" else args.classifier
    reporter.log(f"leave-one-polygon-out accuracy: {_percent(stats.lopo_accuracy)} "
                 f"({stats.reference_patches} sample patches, {what})")
    reporter.log(f"spatially blocked accuracy ({stats.blocked_cv_folds} folds of {cv_block}x{cv_block}-patch "
                 f"blocks): {_percent(stats.blocked_cv_accuracy)}")
    reporter.log(f"which to trust: {stats.trust_note}")
    reporter.progress(1.0, "done")
    outputs = {"labels": str(out), "style": str(style_path(out)), "confidence": str(confidence),
               "confidence_style": str(style_path(confidence)), "embeddings": str(embeddings)}
    if probabilities is not None:
        outputs.update(probabilities=str(probabilities), probabilities_style=str(style_path(probabilities)))
    reporter.result(outputs, {**resolved.stats, **stats.as_dict()})


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
