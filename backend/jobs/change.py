"""``change``: change between two dates, from two embedding fields or two rasters embedded alike.

    python -m backend change --before-embeddings A.tif --after-embeddings B.tif --out change.tif
    python -m backend change --before-optical S2_2020.tif --after-optical S2_2021.tif --out change.tif
    python -m backend change --before-sar S1_before.tif --after-sar S1_after.tif --out flood_change.tif
        [--distance cosine|euclidean] [--normalise auto|l2|none] [--threshold T]
        [--change-clusters K] [--mask-out M.tif] [--types-out T.tif]

Rasters are embedded with one model (the before date's; through the embedding cache); the after
field is aligned onto the before field's grid on the fly. Outputs ``{"magnitude", "style", "mask",
"mask_style", ["types", "types_style"], "before_embeddings", "after_embeddings"}``; stats hold
the threshold (and how it was chosen), changed patch counts and fractions.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from backend.errors import UserError
from backend.events import Reporter
from backend.jobs._inputs import InputOptions, add_input_arguments

DATES = ("before", "after")
SOURCES = ("embeddings", "optical", "sar")


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from backend.downstream.options import add_field_arguments

    parser = subparsers.add_parser("change", parents=[common], conflict_handler="resolve",
                                   help="change magnitude, change mask and change types between two dates")
    add_input_arguments(parser, embeddings=False)
    for option in ("--optical", "--sar"):  # one per date instead (below)
        parser.add_argument(option, help=argparse.SUPPRESS)
    dates = parser.add_argument_group("dates")
    for date in DATES:
        dates.add_argument(f"--{date}-embeddings", metavar="PATH",
                           help=f"embedding field of the {date} date (made by `embed`, or any field)")
        dates.add_argument(f"--{date}-optical", metavar="PATH", help=f"optical raster of the {date} date")
        dates.add_argument(f"--{date}-sar", metavar="PATH", help=f"radar raster of the {date} date")
    add_field_arguments(parser, distance=True)
    parser.add_argument("--threshold", default="otsu", metavar="T",
                        help="change threshold on the magnitude: a number, otsu (default: Otsu's automatic "
                             "threshold, changed or not) or otsu3 (the upper threshold of a three-class "
                             "Otsu: stable, ordinary change, strong change; for dates whose seasons differ)")
    parser.add_argument("--change-clusters", type=int, default=0, metavar="K",
                        help="group the changed patches' change vectors into K types (k-means; "
                             "default 0: off)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the change types")
    parser.add_argument("--out", required=True, metavar="PATH", help="change magnitude GeoTIFF to write")
    parser.add_argument("--mask-out", metavar="PATH", help="change mask GeoTIFF (default: <out>_mask.tif)")
    parser.add_argument("--types-out", metavar="PATH",
                        help="change types GeoTIFF (default: <out>_types.tif; with --change-clusters)")
    parser.set_defaults(run=run)


def _date_inputs(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """``{date: {source: path}}`` of the given per-date inputs, checked for a consistent pairing."""
    if args.optical or args.sar:
        raise UserError("change takes one raster per date: --before-optical/--after-optical and/or "
                        "--before-sar/--after-sar (or --before-embeddings/--after-embeddings)")
    given = {date: {source: getattr(args, f"{date}_{source}") for source in SOURCES
                    if getattr(args, f"{date}_{source}")} for date in DATES}
    if not given["before"] or not given["after"]:
        missing = [date for date in DATES if not given[date]]
        raise UserError(f"give both dates: no input for the {' and '.join(missing)} date (use "
                        "--before-embeddings/--after-embeddings, --before-optical/--after-optical or "
                        "--before-sar/--after-sar)")
    if set(given["before"]) != set(given["after"]):
        raise UserError("both dates need the same kind of input: got "
                        + " and ".join(f"--{d}-{s}" for d in DATES for s in sorted(given[d])))
    if "embeddings" in given["before"] and len(given["before"]) > 1:
        raise UserError("give either embedding fields or rasters to embed for each date, not both")
    return given


def _embed_date(options: InputOptions, inputs: dict[str, str], reporter: Reporter, start: float,
                end: float) -> tuple[Path, dict]:
    """The embedding field of one date: given, or computed (and cached) with the shared model."""
    from backend.jobs._inputs import resolve_embeddings

    date = replace(options, embeddings=inputs.get("embeddings"), optical=inputs.get("optical"),
                   sar=inputs.get("sar"))
    resolved = resolve_embeddings(date, reporter, start=start, end=end)
    return resolved.path, dict(resolved.stats)


def _threshold(value: str) -> float | str:
    """``--threshold``: ``otsu``, ``otsu3`` or a finite number."""
    import math

    if value in ("otsu", "otsu3"):
        return value
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise UserError(f"--threshold must be a number, otsu or otsu3 (got {value!r})")
    return number


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.change import change_map
    from backend.downstream.options import check_distinct, output_path, sibling
    from backend.downstream.styles import style_path
    from backend.io.outputs import check_outputs, same_file

    given = _date_inputs(args)
    threshold = _threshold(args.threshold)
    if args.change_clusters < 0 or args.change_clusters > 254:
        raise UserError(f"--change-clusters must be between 0 and 254 (got {args.change_clusters})")
    out = output_path(args.out)
    mask = output_path(args.mask_out, "--mask-out") if args.mask_out else sibling(out, "_mask")
    types = None
    if args.change_clusters:
        types = output_path(args.types_out, "--types-out") if args.types_out else sibling(out, "_types")
    check_distinct(out, mask, types)
    outputs = {"--out": out, "the style": style_path(out), "--mask-out": mask,
               "the mask style": style_path(mask),
               "--types-out": types, "the types style": style_path(types) if types else None}
    check_outputs(args, outputs)
    for date in DATES:
        for source, value in given[date].items():
            for option, path in outputs.items():
                if path is not None and Path(value).exists() and same_file(path, value):
                    raise UserError(f"{option} {path} is the --{date}-{source} input {value}; writing it "
                                    "would destroy the input: choose another output file")
    options = InputOptions.from_args(args)
    if "embeddings" not in given["before"] and not options.model:
        from backend.jobs._inputs import model_path_for

        before = replace(options, optical=given["before"].get("optical"), sar=given["before"].get("sar"))
        # the after date is embedded with the same model
        options = replace(options, model=str(model_path_for(before, reporter)))
    fields, stats = {}, {}
    for index, date in enumerate(DATES):
        reporter.log(f"{date} date: " + ", ".join(f"{s} {p}" for s, p in given[date].items()))
        fields[date], stats[date] = _embed_date(options, given[date], reporter, 0.3 * index,
                                                0.3 * (index + 1))
    check_distinct(out, mask, types, fields["before"])
    check_distinct(out, mask, types, fields["after"])
    result = change_map(fields["before"], fields["after"], out, mask, types, distance=args.distance,
                        normalise=args.normalise, threshold=threshold, clusters=args.change_clusters,
                        seed=args.seed, reporter=reporter, start=0.6, end=1.0)
    reporter.log(f"change ({result.distance} distance{', L2-normalised' if result.normalised else ''}): "
                 f"{result.minimum:.4g} … {result.maximum:.4g}, threshold {result.threshold:.4g} "
                 f"({result.threshold_how}): {result.changed_patches} of {result.valid_patches} patches "
                 f"changed ({100 * result.changed_fraction:.1f} %)")
    for kind, count in result.type_counts.items():
        reporter.log(f"change type {kind}: {count} patches")
    reporter.progress(1.0, "done")
    files = {"magnitude": str(out), "style": str(style_path(out)), "mask": str(mask),
             "mask_style": str(style_path(mask)), "before_embeddings": str(fields["before"]),
             "after_embeddings": str(fields["after"])}
    if types is not None:
        files.update(types=str(types), types_style=str(style_path(types)))
    reporter.result(files, {**result.as_dict(), "before": stats["before"], "after": stats["after"]})
