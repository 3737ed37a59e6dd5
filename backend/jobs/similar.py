"""``similar``: cosine-similarity map of every patch to a point's or polygons' mean embedding.

    python -m backend similar --optical S2.tif (--point X Y [--point-crs EPSG:4326] | --samples q.gpkg)
        --out similarity.tif

Outputs ``{"similarity": similarity.tif, "style": similarity.qml, "embeddings": ...}``; higher = more
similar (cosine similarity, or with ``--distance euclidean`` the negative euclidean distance). A point
outside the raster is refused before anything is embedded.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter
from backend.inference.resolve import InputOptions, resolve_embeddings


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.options import check_distinct, output_path, read_samples
    from backend.downstream.similarity import SIMILARITY_NAMES, similarity_map
    from backend.downstream.styles import style_path
    from backend.inference.embedding_raster import EmbeddingRaster

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
    if args.point:
        _check_point_inside(args)
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
    what = SIMILARITY_NAMES[args.distance]
    reporter.log(f"{what} to the mean of {stats.query_patches} query patch(es): "
                 f"{stats.minimum:.3f} … {stats.maximum:.3f}")
    reporter.progress(1.0, "done")
    reporter.result({"similarity": str(out), "style": str(style_path(out)), "embeddings": str(embeddings)},
                    {**resolved.stats, **stats.as_dict()})


def _check_point_inside(args: argparse.Namespace) -> None:
    """Refuse ``--point`` outside the input raster's area (in its CRS, after ``--point-crs``) up front."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.warp import transform as transform_points

    path = args.embeddings or args.optical or args.sar
    if not path:
        return  # no input: resolve_embeddings says so
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError:
        return  # not readable: resolve_embeddings says so, in its words
    with src:
        x, y = args.point
        px, py = x, y
        if args.point_crs and src.crs and CRS.from_user_input(args.point_crs) != src.crs:
            (px,), (py,) = transform_points(CRS.from_user_input(args.point_crs), src.crs, [x], [y])
        left, bottom, right, top = src.bounds
        if not (left <= px < right and bottom < py <= top):
            where = f" ({px:.6g}, {py:.6g} in {src.crs})" if (px, py) != (x, y) else ""
            raise UserError(f"the point ({x}, {y}){where} lies outside the raster {path} (bounds "
                            f"{left:.6g} {bottom:.6g} {right:.6g} {top:.6g}); nothing was embedded")
