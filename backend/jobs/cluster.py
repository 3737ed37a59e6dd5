"""``cluster``: k-means or HDBSCAN cluster map of a raster's patch embeddings.

    python -m backend cluster --optical S2.tif [--model M] --k 8 [--seed 0] --out clusters.tif
    python -m backend cluster --optical S2.tif --method hdbscan [--min-cluster-size 50] --out clusters.tif

Outputs ``{"clusters": clusters.tif, "style": clusters.qml, "embeddings": ...}``. HDBSCAN chooses
the number of clusters itself and marks the patches that belong to none as "noise" (its own class,
the last value); see :mod:`backend.downstream.density_clusters`.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter
from backend.jobs._inputs import add_input_arguments


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("cluster", parents=[common],
                                   help="k-means or HDBSCAN cluster map (uint8 classes + QML style) of "
                                        "patch embeddings")
    add_input_arguments(parser)
    parser.add_argument("--method", choices=("kmeans", "hdbscan"), default="kmeans",
                        help="kmeans: k clusters (needs --k, default); hdbscan: density clusters, no k, "
                             "plus a noise class")
    parser.add_argument("--k", type=int, help="number of clusters (k-means)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (initial centres, HDBSCAN sample)")
    parser.add_argument("--iterations", type=int, default=30, help="maximum Lloyd iterations (k-means)")
    parser.add_argument("--min-cluster-size", type=int, metavar="PATCHES",
                        help="HDBSCAN: smallest cluster in sampled patches (default 1 %% of the sample, "
                             "at least 10)")
    parser.add_argument("--min-samples", type=int, metavar="N",
                        help="HDBSCAN: density smoothing; larger = more noise (default: --min-cluster-size)")
    parser.add_argument("--sample-size", type=int, default=10_000, metavar="PATCHES",
                        help="HDBSCAN: patches it is fitted on (seeded uniform sample; the rest are assigned "
                             "to the nearest cluster within its noise distance; default 10000)")
    parser.add_argument("--pca-dims", type=int, default=32, metavar="N",
                        help="HDBSCAN: cluster the sample in its first N principal components (fast in high "
                             "dimensions; 0 = full vectors; default 32)")
    parser.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine",
                        help="cosine: cluster L2-normalised embeddings (default); euclidean: raw vectors")
    parser.add_argument("--out", required=True, metavar="PATH", help="cluster GeoTIFF to write")
    parser.set_defaults(run=run)


def _check(args: argparse.Namespace) -> None:
    """Options of the chosen method only, each in range."""
    if args.method == "kmeans":
        if args.k is None:
            raise UserError("--k is required with --method kmeans (or use --method hdbscan, which needs "
                            "no k)")
        if args.k < 1:
            raise UserError(f"--k must be at least 1 (got {args.k})")
        if args.iterations < 1:
            raise UserError(f"--iterations must be at least 1 (got {args.iterations})")
        stray = [option for option, value in (("--min-cluster-size", args.min_cluster_size),
                                              ("--min-samples", args.min_samples)) if value is not None]
        if args.pca_dims != 32:
            stray.append("--pca-dims")
        if stray:
            raise UserError(f"{', '.join(stray)} belong(s) to --method hdbscan")
        return
    if args.k is not None:
        raise UserError("--k belongs to --method kmeans: HDBSCAN chooses the number of clusters "
                        "(tune it with --min-cluster-size)")
    if args.min_cluster_size is not None and args.min_cluster_size < 2:
        raise UserError(f"--min-cluster-size must be at least 2 (got {args.min_cluster_size})")
    if args.min_samples is not None and args.min_samples < 1:
        raise UserError(f"--min-samples must be at least 1 (got {args.min_samples})")
    if args.sample_size < 2:
        raise UserError(f"--sample-size must be at least 2 (got {args.sample_size})")
    if args.pca_dims < 0:
        raise UserError(f"--pca-dims must be 0 (off) or more (got {args.pca_dims})")


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.options import output_path
    from backend.downstream.styles import style_path
    from backend.io.outputs import check_outputs
    from backend.jobs._inputs import InputOptions, resolve_embeddings

    _check(args)
    out = output_path(args.out)
    check_outputs(args, {"--out": out, "the style": style_path(out)})
    resolved = resolve_embeddings(InputOptions.from_args(args), reporter, start=0.0, end=0.6)
    embeddings = resolved.path
    if out.resolve() == embeddings.resolve():
        raise UserError("--out must not be the embedding raster itself")
    if args.method == "hdbscan":
        from backend.downstream.density_clusters import hdbscan_embeddings

        stats = hdbscan_embeddings(embeddings, out, args.min_cluster_size, args.min_samples, args.sample_size,
                                   metric=args.metric, seed=args.seed, pca_dims=args.pca_dims,
                                   reporter=reporter, start=0.6, end=1.0)
        reporter.log(f"HDBSCAN: {stats.clusters} clusters (min cluster size {stats.min_cluster_size}) on a "
                     f"sample of {stats.sample_size} of {stats.valid_patches} patches; noise "
                     f"{100 * stats.noise_fraction:.1f} % of the map "
                     f"({100 * stats.sample_noise_fraction:.1f} % of the sample); the nearest-centroid "
                     f"assignment matches HDBSCAN on "
                     f"{100 * stats.sample_agreement:.1f} % of the sample")
    else:
        from backend.downstream.kmeans import cluster_embeddings

        stats = cluster_embeddings(embeddings, out, args.k, seed=args.seed, iterations=args.iterations,
                                   metric=args.metric, device=args.device, reporter=reporter, start=0.6,
                                   end=1.0)
        for message in stats.warnings:
            reporter.warning(message)
        reporter.log(f"{stats.populated_clusters} populated of {stats.k} clusters over "
                     f"{stats.valid_patches} patches ({stats.iterations} iterations, inertia "
                     f"{stats.inertia:.4g}, on {stats.device})")
    reporter.progress(1.0, "done")
    reporter.result({"clusters": str(out), "style": str(style_path(out)), "embeddings": str(embeddings)},
                    {**resolved.stats, **stats.as_dict()})
