"""``change``: change between two dates, from two embedding fields or two rasters embedded alike.

    python -m backend change --before-embeddings A.tif --after-embeddings B.tif --out change.tif
    python -m backend change --before-optical S2_2020.tif --after-optical S2_2021.tif --out change.tif
    python -m backend change --before-sar S1_before.tif --after-sar S1_after.tif --out flood_change.tif
        [--method auto|fused|spectral|embedding] [--distance cosine|euclidean]
        [--normalise auto|l2|none] [--threshold auto|robust|otsu|otsu3|T] [--change-clusters K]
        [--mask-out M.tif] [--types-out T.tif]

Rasters are embedded with one model (the before date's; through the embedding cache); the after
raster is warped onto the before raster's pixel grid first. With rasters the map is at pixel
resolution: the spectral change of the bands fused with the embedding change
(:mod:`backend.downstream.spectral_change`); with given fields (or ``--method embedding``) it is
the embedding change per patch (:mod:`backend.downstream.change`). Outputs ``{"magnitude", "style", "mask",
"mask_style", ["types", "types_style"], "before_embeddings", "after_embeddings"}``; stats hold
the threshold (and how it was chosen), the valid and changed pixel (or patch) counts and the
changed share of the valid area, which is warned about above :data:`PLAUSIBLE_SHARE`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.events import Reporter
from backend.inference.resolve import InputOptions, model_path_for, open_inputs, resolve_embeddings

DATES = ("before", "after")
SOURCES = ("embeddings", "optical", "sar")
METHOD_CHOICES = ("auto", "fused", "spectral", "embedding")
PLAUSIBLE_SHARE = 0.2
"""A changed share of the valid area above this is warned about (real change between two dates is rarely
that widespread: OSCD's cities changed on 1-4 % of their area)."""
AGREEING_BANDS = 0.5
"""A median per-band correlation of the two dates below this is warned about: OSCD's city pairs, two
years apart, reach 0.82-0.84; June -> August irrigated cropland 0.14; two different cities 0.03."""


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
    date = replace(options, embeddings=inputs.get("embeddings"), optical=inputs.get("optical"),
                   sar=inputs.get("sar"))
    resolved = resolve_embeddings(date, reporter, start=start, end=end)
    return resolved.path, dict(resolved.stats)


def _align_after(given: dict[str, dict[str, str]], cache_dir: str | None,
                 reporter: Reporter) -> dict[str, dict[str, str]]:
    """``given`` with each after raster replaced by a warped VRT on the before raster's pixel grid.

    Patches must cover the same ground on both dates: an after raster shifted by a fraction of a
    patch, or in another CRS, would otherwise be embedded on its own grid and the misregistration
    would show up as change. The VRT (bilinear, warped on the fly) lives in ``<cache>/aligned/`` under
    a name derived from both rasters, so the embedding cache still hits on a rerun.
    """
    import hashlib
    import tempfile

    import rasterio

    from backend.inference.cache import default_cache_dir
    from backend.io.align import same_grid

    aligned = {date: dict(inputs) for date, inputs in given.items()}
    for source, after_path in given["after"].items():
        before_path = given["before"][source]
        # the absolute path: the VRT names its source, and it lives in another folder
        with rasterio.open(before_path) as ref, rasterio.open(Path(after_path).resolve()) as src:
            grid = (ref.crs, ref.transform, ref.width, ref.height)
            if same_grid(src, *grid):
                continue
            stat = Path(after_path).resolve().stat()  # an edited after raster gets a new VRT
            key = hashlib.sha256(f"{Path(before_path).resolve()}|{Path(after_path).resolve()}|"
                                 f"{stat.st_size}|{stat.st_mtime_ns}|"
                                 f"{ref.crs}|{tuple(ref.transform)}|{ref.width}x{ref.height}".encode())
            folder = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "aligned"
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:  # a read-only cache: a private folder (the embeddings are not cached then)
                folder = Path(tempfile.mkdtemp(prefix="terraprobe-aligned-"))
            vrt = folder / f"{Path(after_path).stem}_{key.hexdigest()[:16]}.vrt"
            nodata = src.nodata
            if nodata is None:
                nodata = float("nan") if src.dtypes[0].startswith("float") else 0
            if not vrt.exists():  # written once: a rewrite would change its file key and miss the cache
                _write_aligned_vrt(src, grid, nodata, vrt)
            shift = ~ref.transform * (src.transform.c, src.transform.f)
            how = (f"from {src.crs} " if src.crs != ref.crs else
                   f"offset {shift[0]:.3g}, {shift[1]:.3g} px, ")
        reporter.log(f"after date: {source} {after_path} warped onto the before raster's pixel grid "
                     f"({how}bilinear, on the fly) so that both dates' patches cover the same ground")
        aligned["after"][source] = str(vrt)
    return aligned


def _write_aligned_vrt(src: Any, grid: tuple, nodata: float, vrt: Path) -> None:
    """The warped view of ``src`` on ``grid`` as a VRT with ``src``'s tags, moved into place whole."""
    import rasterio
    import rasterio.shutil

    from backend.io.align import warp_to_grid

    partial = vrt.with_name(f".{vrt.name}.{os.getpid()}.partial.vrt")
    with warp_to_grid(src, *grid, nodata=nodata, src_nodata=src.nodata, init_dest_nodata=True) as view:
        rasterio.shutil.copy(view, partial, driver="VRT")
    with rasterio.open(partial, "r+") as dst:  # keep the tags the unit and sensor detection read
        dst.update_tags(**src.tags())
        for band in range(1, src.count + 1):
            dst.update_tags(band, **src.tags(band))
        dst.scales, dst.offsets = src.scales, src.offsets
    os.replace(partial, vrt)


def _threshold(value: str, method: str) -> float | str:
    """``--threshold``: a rule of :data:`THRESHOLD_RULES` (``auto``: ``otsu`` for the embedding method,
    else ``robust``) or a finite number."""
    import math

    from backend.contract.requests import THRESHOLD_RULES

    if value == "auto":
        return "otsu" if method == "embedding" else "robust"
    if value in THRESHOLD_RULES:
        return value
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise UserError(f"--threshold must be a number or one of {', '.join(THRESHOLD_RULES)} "
                        f"(got {value!r})")
    return number


def _method(value: str, given: dict[str, dict[str, str]]) -> str:
    """``--method`` resolved: ``auto`` is ``fused`` for rasters and ``embedding`` for given fields."""
    fields_given = "embeddings" in given["before"]
    if value == "auto":
        return "embedding" if fields_given else "fused"
    if fields_given and value != "embedding":
        raise UserError(f"--method {value} measures the rasters' spectral change: give the rasters "
                        "(--before-optical/--after-optical or --before-sar/--after-sar), not embedding "
                        "fields")
    return value


def _pixel_change(options: InputOptions, given: dict[str, dict[str, str]], fields: dict[str, Path],
                  outputs: tuple[Path, Path, Path | None], args: argparse.Namespace, method: str,
                  threshold: float | str, reporter: Reporter) -> Any:
    """The pixel-level change of the two dates' rasters (both on the before raster's grid)."""
    from contextlib import ExitStack

    from backend.downstream.spectral_change import fused_change_map

    with ExitStack() as stack:
        inputs = [stack.enter_context(open_inputs(replace(options, optical=given[date].get("optical"),
                                                          sar=given[date].get("sar"))))
                  for date in DATES]
        return fused_change_map(*inputs, fields["before"], fields["after"], *outputs, method=method,
                                distance=args.distance, normalise=args.normalise, threshold=threshold,
                                clusters=args.change_clusters, seed=args.seed, reporter=reporter,
                                start=0.6, end=1.0)


def _report(result: Any, reporter: Reporter) -> None:
    """Log the change figures; warn when the changed share is implausible."""
    cells = result.cells
    what = (f"{result.distance} distance{', L2-normalised' if result.normalised else ''}"
            if result.method == "embedding" else
            f"{result.method}: spectral change{' x embedding change' if result.method == 'fused' else ''}")
    reporter.log(f"change ({what}): {result.minimum:.4g} … {result.maximum:.4g}, threshold "
                 f"{result.threshold:.4g} ({result.threshold_how}): {result.changed} of {result.valid} "
                 f"{cells} changed ({100 * result.changed_fraction:.1f} % of the valid area)")
    for kind, count in result.type_counts.items():
        reporter.log(f"change type {kind}: {count} {cells}")
    correlation = result.details.get("band_correlation")
    if correlation is not None and correlation < AGREEING_BANDS:
        reporter.warning(
            f"the two dates' bands barely agree (median per-band correlation {correlation:.2f} over the "
            f"common valid area; below {AGREEING_BANDS:g}): most of the scene differs (season, clouds, "
            f"another place or a registration error), which no threshold tells apart from the change "
            f"you look for ({100 * result.changed_fraction:.1f} % marked). Check that both rasters show "
            "the same place, cloud-free, in comparable seasons")
    if result.changed_fraction > PLAUSIBLE_SHARE:
        reporter.warning(
            f"{100 * result.changed_fraction:.0f} % of the valid area is marked as changed, more than real "
            f"change between two dates usually covers (above {100 * PLAUSIBLE_SHARE:.0f} %): the dates may "
            "differ in season, clouds, haze or registration. Try --threshold robust (the default for "
            "rasters), otsu3 or a higher number, "
            "dates of the same season, or cloud-free scenes"
            + ("; with rasters, --method fused measures the bands' change" if result.method == "embedding"
               else ""))


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.downstream.change import change_map
    from backend.downstream.options import check_distinct, output_path, sibling
    from backend.downstream.styles import style_path
    from backend.io.outputs import check_outputs, same_file

    given = _date_inputs(args)
    method = _method(args.method, given)
    threshold = _threshold(args.threshold, method)
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
        before = replace(options, optical=given["before"].get("optical"), sar=given["before"].get("sar"))
        # the after date is embedded with the same model
        options = replace(options, model=str(model_path_for(before, reporter)))
    if "embeddings" not in given["before"]:
        given = _align_after(given, options.cache_dir, reporter)
    fields, stats = {}, {}
    for index, date in enumerate(DATES):
        reporter.log(f"{date} date: " + ", ".join(f"{s} {p}" for s, p in given[date].items()))
        fields[date], stats[date] = _embed_date(options, given[date], reporter, 0.3 * index,
                                                0.3 * (index + 1))
    check_distinct(out, mask, types, fields["before"])
    check_distinct(out, mask, types, fields["after"])
    if method == "embedding":
        result = change_map(fields["before"], fields["after"], out, mask, types, distance=args.distance,
                            normalise=args.normalise, threshold=threshold, clusters=args.change_clusters,
                            seed=args.seed, reporter=reporter, start=0.6, end=1.0)
    else:
        result = _pixel_change(options, given, fields, (out, mask, types), args, method, threshold, reporter)
    _report(result, reporter)
    reporter.progress(1.0, "done")
    files = {"magnitude": str(out), "style": str(style_path(out)), "mask": str(mask),
             "mask_style": str(style_path(mask)), "before_embeddings": str(fields["before"]),
             "after_embeddings": str(fields["after"])}
    if types is not None:
        files.update(types=str(types), types_style=str(style_path(types)))
    reporter.result(files, {**result.as_dict(), "before": stats["before"], "after": stats["after"]})
