"""``segment``: full-resolution class map from a light head on frozen patch embeddings.

    python -m backend segment --optical S2.tif [--model M] (--samples polys --class-field f |
        --label-raster L.tif) --out seg.tif [--head-out head.safetensors]
    python -m backend segment --optical other.tif --head head.safetensors --out seg2.tif
    python -m backend segment --embeddings FIELD.tif [--optical S2.tif] --samples polys --out seg.tif

``--embeddings`` takes any embedding field: with ``--optical``/``--sar`` it is read on the input's
8x8 patch grid (aligned on the fly, nearest cell, when it lies elsewhere: another CRS, resolution or
origin) and the map has the input's pixels; without them the head has no per-pixel band term and the
map is on the field's own grid. A saved head records its form; the other form is refused.

Training with the input raster also scores the head on label blocks it did not train on and the same
head on per-patch band statistics (the raw-band baseline); ``--features auto`` (default) keeps the
head on the embeddings only where it beats that baseline, else the band-statistics head makes the map.

Outputs ``{"segmentation": seg.tif, "style": seg.qml, "head": head.safetensors, "embeddings": ...}``;
stats include ``train_accuracy`` (on the training pixels: optimistic), ``held_out_accuracy`` and
``held_out_macro_f1`` (the figures to trust), ``baseline_held_out_accuracy`` /
``baseline_held_out_macro_f1`` and ``recipe`` (which head made the map).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.events import Reporter
from backend.inference.resolve import InputOptions, open_inputs, resolve_embeddings


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.contract.outputs import default_output
    from backend.downstream.options import check_distinct, output_path, read_samples
    from backend.downstream.segmentation import check_head_form, head_paths, load_head
    from backend.downstream.styles import style_path

    sources = [name for name, value in (("--samples", args.samples), ("--label-raster", args.label_raster),
                                        ("--head", args.head)) if value]
    if len(sources) != 1:
        raise UserError("give exactly one of --samples, --label-raster or --head")
    out = output_path(args.out)
    head_out = None
    if not args.head:
        head_out = head_paths(args.head_out or default_output(out, "head"))[0]
        check_distinct(out, head_out)
    from backend.io.outputs import check_outputs

    check_outputs(args, {"--out": out, "the style": style_path(out), "--head-out": head_out,
                         "the head's JSON": head_paths(head_out)[1] if head_out else None})
    with_pixels = bool(args.optical or args.sar)
    if not with_pixels and not args.embeddings:
        raise UserError("give the raster to segment (--optical and/or --sar), or an embedding field "
                        "(--embeddings) to segment on its own grid")
    if args.head:
        check_head_form(load_head(args.head)[1], with_pixels, args.head)
    if args.label_raster and not Path(args.label_raster).exists():
        raise UserError(f"label raster not found: {args.label_raster}")
    samples = read_samples(args.samples, args.samples_layer, args.class_field) if args.samples else None
    options = InputOptions.from_args(args)
    resolved = resolve_embeddings(options, reporter, start=0.0, end=0.5)
    embeddings = resolved.path
    check_distinct(out, embeddings)
    if with_pixels:
        with open_inputs(options) as inputs:
            stats = _segment(args, embeddings, inputs, samples, out, head_out, reporter)
    else:
        stats = _segment(args, embeddings, None, samples, out, head_out, reporter)
    for message in stats.warnings:
        reporter.warning(message)
    if stats.head_trained:
        reporter.log(f"head trained on {sum(stats.training_pixels.values())} labelled pixels "
                     f"({stats.steps} steps): training accuracy {100 * stats.train_accuracy:.1f} % (on the "
                     "pixels it learnt from: optimistic)")
        _log_held_out(reporter, stats)
    reporter.progress(1.0, "done")
    outputs = {"segmentation": str(out), "style": str(style_path(out)),
               "head": str(head_out if head_out else head_paths(args.head)[0]), "embeddings": str(embeddings)}
    results = stats.as_dict()
    loss = results.get("final_loss")
    if loss is not None and not math.isfinite(loss):  # JSON has no NaN: null, and say why
        results["final_loss"] = None
        results["final_loss_note"] = ("null: the last training step's random crops held no labelled pixel, "
                                      "so that step had no loss")
    reporter.result(outputs, {**resolved.stats, **results})


def _segment(args: argparse.Namespace, embeddings: Path, inputs: Any, samples: Any, out: Path,
             head_out: Path | None, reporter: Reporter) -> Any:
    """Labels on the grid of the map (the inputs' pixels, or the field's own cells) and the run."""
    import tempfile

    from backend.downstream.segmentation import (
        InputSetPixels,
        PolygonLabels,
        RasterLabels,
        load_head,
        segment,
    )

    pixels = InputSetPixels(inputs) if inputs is not None else None
    grid = pixels.grid if pixels is not None else _field_grid(embeddings)
    labels = None
    if samples is not None:
        labels = PolygonLabels(samples.to_crs(grid.crs), grid)
    elif args.label_raster:
        labels = RasterLabels(args.label_raster, grid)
    try:
        with tempfile.TemporaryDirectory(prefix="terraprobe-segment-") as scratch:
            baseline = None
            statistics_head = bool(args.head and load_head(args.head)[1].embedding.get("band_statistics"))
            if inputs is not None and (labels is not None or statistics_head):
                from backend.downstream.band_stats import write_band_statistics

                baseline = Path(scratch) / "band_statistics.tif"
                write_band_statistics(inputs, baseline)
            if statistics_head:  # a head on band statistics reads them, not the embeddings
                embeddings = baseline
            return segment(embeddings, pixels, out, labels=labels, head_path=args.head, head_out=head_out,
                           steps=args.steps, seed=args.seed, device=args.device,
                           reporter=_Offset(reporter, 0.5, 1.0), baseline=baseline, features=args.features)
    finally:
        if isinstance(labels, RasterLabels):
            labels.close()


def _log_held_out(reporter: Reporter, stats: Any) -> None:
    """The held-out figure (label blocks the head did not train on) and the band-statistics head's."""
    if stats.held_out_accuracy is None:
        reporter.log(f"no held-out figure: {stats.held_out_note}")
        return
    reporter.log(f"held-out ({stats.held_out_folds} folds of label blocks, {stats.held_out_pixels} pixels): "
                 f"accuracy {100 * stats.held_out_accuracy:.1f} %, macro-F1 {stats.held_out_macro_f1:.3f} "
                 "(trust this one)")
    if stats.baseline_held_out_accuracy is not None:
        reporter.log(f"held-out, the same head on band statistics (the raw-band baseline): accuracy "
                     f"{100 * stats.baseline_held_out_accuracy:.1f} %, macro-F1 "
                     f"{stats.baseline_held_out_macro_f1:.3f}")


def _field_grid(embeddings: Path) -> Any:
    """The embedding field's own grid."""
    from backend.inference.embedding_raster import EmbeddingRaster

    with EmbeddingRaster(embeddings) as field:
        return field.grid


class _Offset:
    """A reporter view that maps [0, 1] progress of a sub-task onto [start, end] of the job."""

    def __init__(self, reporter: Reporter, start: float, end: float) -> None:
        self._reporter, self._start, self._end = reporter, start, end

    def _map(self, value: float) -> float:
        return self._start + (self._end - self._start) * value

    def track(self, items, total=None, description="", start=0.0, end=1.0, unit="it"):
        return self._reporter.track(items, total=total, description=description, start=self._map(start),
                                    end=self._map(end), unit=unit)

    def progress(self, fraction: float, message: str = "") -> None:
        self._reporter.progress(self._map(fraction), message)

    def log(self, message: str, level: str = "info") -> None:
        self._reporter.log(message, level)
