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
from backend.inference.resolve import InputOptions, resolve_embeddings


def _check(args: argparse.Namespace) -> None:
    """Options of the chosen method only (ranges are declared and checked before the run)."""
    if args.method == "kmeans":
        if args.k is None:
            raise UserError("--k is required with --method kmeans (or use --method hdbscan, which needs "
                            "no k)")
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


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.options import output_path
    from backend.downstream.styles import style_path
    from backend.io.outputs import check_outputs

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
                                   metric=args.distance, seed=args.seed, pca_dims=args.pca_dims,
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
                                   metric=args.distance, device=args.device, reporter=reporter, start=0.6,
                                   end=1.0)
        for message in stats.warnings:
            reporter.warning(message)
        reporter.log(f"{stats.populated_clusters} populated of {stats.k} clusters over "
                     f"{stats.valid_patches} patches ({stats.iterations} iterations, inertia "
                     f"{stats.inertia:.4g}, on {stats.device})")
    reporter.progress(1.0, "done")
    reporter.result({"clusters": str(out), "style": str(style_path(out)), "embeddings": str(embeddings)},
                    {**resolved.stats, **stats.as_dict()})
