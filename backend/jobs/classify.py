"""``classify``: label map by cosine kNN to the patch embeddings of labelled sample polygons.

    python -m backend classify --optical S2.tif --samples polys.gpkg --class-field class \\
        [--neighbors 10] --out labels.tif [--confidence-out labels_confidence.tif]

Outputs ``{"labels", "style", "confidence", "confidence_style", "embeddings"}``; stats include
``class_counts`` (sample patches per class), ``polygon_counts``, ``lopo_accuracy`` and ``classes``.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter
from backend.jobs._inputs import add_input_arguments


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from backend.downstream.options import add_samples_arguments

    parser = subparsers.add_parser("classify", parents=[common],
                                   help="kNN label map (+ confidence) from labelled sample polygons")
    add_input_arguments(parser)
    add_samples_arguments(parser, required=True)
    parser.add_argument("--neighbors", type=int, default=10, help="k of the kNN vote (default 10)")
    parser.add_argument("--out", required=True, metavar="PATH", help="class GeoTIFF to write")
    parser.add_argument("--confidence-out", metavar="PATH",
                        help="confidence GeoTIFF (default: <out>_confidence.tif)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.knn import classify_embeddings
    from backend.downstream.options import check_distinct, output_path, read_samples, sibling
    from backend.downstream.styles import style_path
    from backend.inference.embedding_raster import EmbeddingRaster
    from backend.jobs._inputs import resolve_embeddings

    if args.neighbors < 1:
        raise UserError(f"--neighbors must be at least 1 (got {args.neighbors})")
    out = output_path(args.out)
    confidence = output_path(args.confidence_out, "--confidence-out") if args.confidence_out \
        else sibling(out, "_confidence")
    check_distinct(out, confidence)
    from backend.io.outputs import check_outputs

    check_outputs(args, {"--out": out, "the style": style_path(out), "--confidence-out": confidence,
                         "the confidence style": style_path(confidence)})
    samples = read_samples(args, args.class_field)  # fail fast on a bad layer, before embedding
    for why, count in samples.skipped.items():
        reporter.warning(f"{count} feature(s) of the sample layer skipped: {why}")
    embeddings = resolve_embeddings(args, reporter, start=0.0, end=0.6)
    check_distinct(out, confidence, embeddings)
    with EmbeddingRaster(embeddings) as reader:
        crs = reader.grid.crs
    if not samples.source_crs:
        reporter.warning("the sample layer has no CRS; assuming the raster's CRS")
    samples = samples.to_crs(crs)
    stats = classify_embeddings(embeddings, samples, out, confidence, neighbors=args.neighbors,
                                device=args.device, reporter=reporter, start=0.6, end=1.0)
    for message in stats.warnings:
        reporter.warning(message)
    for name in samples.classes:
        reporter.log(f"class {name}: {stats.class_counts[name]} patches in {stats.polygon_counts[name]} "
                     f"polygon(s), leave-one-polygon-out accuracy "
                     f"{_percent(stats.lopo_class_accuracy[name])}")
    reporter.log(f"leave-one-polygon-out accuracy: {_percent(stats.lopo_accuracy)} "
                 f"({stats.reference_patches} sample patches, k={stats.neighbors})")
    reporter.progress(1.0, "done")
    reporter.result({"labels": str(out), "style": str(style_path(out)), "confidence": str(confidence),
                     "confidence_style": str(style_path(confidence)), "embeddings": str(embeddings)},
                    {**getattr(args, "embedding_stats", {}), **stats.as_dict()})


def _percent(value: float | None) -> str:
    return "n/a (needs two polygons)" if value is None else f"{100 * value:.1f} %"
