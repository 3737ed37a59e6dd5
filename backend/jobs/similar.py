"""``similar``: cosine-similarity map of every patch to a point's or polygons' mean embedding.

    python -m backend similar --optical S2.tif (--point X Y [--point-crs EPSG:4326] | --samples q.gpkg)
        --out similarity.tif

Outputs ``{"similarity": similarity.tif, "style": similarity.qml, "embeddings": ...}``.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter
from backend.jobs._inputs import add_input_arguments


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from backend.downstream.options import add_field_arguments, add_samples_arguments

    parser = subparsers.add_parser("similar", parents=[common],
                                   help="cosine-similarity map to a point or polygons (float32 + QML)")
    add_input_arguments(parser)
    parser.add_argument("--point", nargs=2, type=float, metavar=("X", "Y"), help="query point")
    parser.add_argument("--point-crs", metavar="CRS", help="CRS of --point (default: the raster's)")
    add_samples_arguments(parser, class_field=False)
    add_field_arguments(parser, distance=True)
    parser.add_argument("--out", required=True, metavar="PATH", help="similarity GeoTIFF to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.options import check_distinct, output_path, read_samples
    from backend.downstream.similarity import similarity_map
    from backend.downstream.styles import style_path
    from backend.inference.embedding_raster import EmbeddingRaster
    from backend.jobs._inputs import InputOptions, resolve_embeddings

    if (args.point is None) == (args.samples is None):
        raise UserError("give either --point X Y or --samples (query polygons)")
    out = output_path(args.out)
    from backend.io.outputs import check_outputs

    check_outputs(args, {"--out": out, "the style": style_path(out)})
    samples = read_samples(args.samples, args.samples_layer, None) if args.samples else None
    if args.point_crs:
        from rasterio.crs import CRS

        try:
            CRS.from_user_input(args.point_crs)
        except Exception:
            raise UserError(f"--point-crs {args.point_crs!r} is not a CRS (try EPSG:4326)") from None
    resolved = resolve_embeddings(InputOptions.from_args(args), reporter, start=0.0, end=0.7)
    embeddings = resolved.path
    check_distinct(out, embeddings)
    if samples is not None:
        with EmbeddingRaster(embeddings) as reader:
            samples = samples.to_crs(reader.grid.crs)
    stats = similarity_map(embeddings, out, point=tuple(args.point) if args.point else None,
                           point_crs=args.point_crs, samples=samples, device=args.device,
                           reporter=reporter, start=0.7, end=1.0, distance=args.distance,
                           normalise=args.normalise)
    what = "euclidean distance" if args.distance == "euclidean" else "similarity"
    reporter.log(f"{what} to the mean of {stats.query_patches} query patch(es): "
                 f"{stats.minimum:.3f} … {stats.maximum:.3f}")
    reporter.progress(1.0, "done")
    reporter.result({"similarity": str(out), "style": str(style_path(out)), "embeddings": str(embeddings)},
                    {**resolved.stats, **stats.as_dict()})
