"""``cluster``: k-means cluster map of a raster's patch embeddings.

    python -m backend cluster --optical S2.tif [--model M] --k 8 [--seed 0] --out clusters.tif

Outputs ``{"clusters": clusters.tif, "style": clusters.qml, "embeddings": ...}``.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter
from backend.jobs._inputs import add_input_arguments


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("cluster", parents=[common],
                                   help="k-means cluster map (uint8 classes + QML style) of patch embeddings")
    add_input_arguments(parser)
    parser.add_argument("--k", type=int, required=True, help="number of clusters")
    parser.add_argument("--seed", type=int, default=0, help="random seed (initial centres)")
    parser.add_argument("--iterations", type=int, default=30, help="maximum Lloyd iterations")
    parser.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine",
                        help="cosine: cluster L2-normalised embeddings (default); euclidean: raw vectors")
    parser.add_argument("--out", required=True, metavar="PATH", help="cluster GeoTIFF to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.kmeans import cluster_embeddings
    from backend.downstream.options import output_path
    from backend.downstream.styles import style_path
    from backend.jobs._inputs import resolve_embeddings

    if args.k < 1:
        raise UserError(f"--k must be at least 1 (got {args.k})")
    if args.iterations < 1:
        raise UserError(f"--iterations must be at least 1 (got {args.iterations})")
    out = output_path(args.out)
    from backend.io.outputs import check_outputs

    check_outputs(args, {"--out": out, "the style": style_path(out)})
    embeddings = resolve_embeddings(args, reporter, start=0.0, end=0.6)
    if out.resolve() == embeddings.resolve():
        raise UserError("--out must not be the embedding raster itself")
    stats = cluster_embeddings(embeddings, out, args.k, seed=args.seed, iterations=args.iterations,
                               metric=args.metric, device=args.device, reporter=reporter, start=0.6, end=1.0)
    reporter.log(f"{stats.k} clusters over {stats.valid_patches} patches "
                 f"({stats.iterations} iterations, inertia {stats.inertia:.4g}, on {stats.device})")
    reporter.progress(1.0, "done")
    reporter.result({"clusters": str(out), "style": str(style_path(out)), "embeddings": str(embeddings)},
                    {**getattr(args, "embedding_stats", {}), **stats.as_dict()})
