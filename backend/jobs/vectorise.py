"""``vectorise``: a class map (classify, cluster, segment, change) to styled polygons in a GeoPackage.

    python -m backend vectorise --raster labels.tif --out labels.gpkg [--min-area 5000] \\
        [--simplify 5] [--confidence labels_confidence.tif]

Outputs ``{"polygons": labels.gpkg, "style": labels.qml}``; stats: ``polygons``, ``classes``,
``polygons_per_class``, ``area_per_class_m2``. See :mod:`backend.downstream.vectorise`.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from pathlib import Path

    from backend.downstream.vectorise import vectorise
    from backend.io.outputs import check_outputs, check_regular, same_file

    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".gpkg":
        raise UserError(f"--out must be a GeoPackage file name ending in .gpkg (got {out.name})")
    inputs = {"--raster": Path(args.raster).expanduser()}
    if args.confidence:
        inputs["--confidence"] = Path(args.confidence).expanduser()
    for option, path in inputs.items():
        if not path.is_file():
            raise UserError(f"{option} file not found: {path}")
        check_regular(path, option)
    style = out.with_suffix(".qml")
    for name, target in (("--out", out), ("the style", style)):
        for option, path in inputs.items():
            if same_file(target, path) or same_file(target, path.with_suffix(".qml")):
                raise UserError(f"{name} {target} is the {option} input or its style; choose another --out "
                                f"such as {out.with_name(out.stem + '_polygons.gpkg')}")
    check_outputs(args, {"--out": out, "the style": style})
    stats = vectorise(inputs["--raster"], out, min_area=args.min_area, simplify=args.simplify,
                      confidence=inputs.get("--confidence"),
                      only=[v for v in args.only.split(",") if v.strip()] if args.only else None,
                      reporter=reporter)
    for message in stats.warnings:
        reporter.warning(message)
    for name, count in stats.polygons_per_class.items():
        reporter.log(f"{name}: {count} polygon(s), {stats.area_per_class_m2[name] / 1e4:.2f} ha")
    reporter.log(f"{stats.polygons} polygons written to {out.name}"
                 + (f" ({stats.sieved_pixels} pixels merged by the {stats.min_area_pixels}-pixel sieve)"
                    if stats.min_area_pixels > 1 else ""))
    reporter.progress(1.0, "done")
    reporter.result({"polygons": str(out), "style": str(style)}, stats.as_dict())
