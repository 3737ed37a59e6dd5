"""``stats``: per-band mean and standard deviation of pretraining data, written as a data config.

``python -m backend stats DATA... --out stats.json`` samples random chips (windowed reads) and
stores the statistics (raw raster units) with the band lists; pass the file to
``pretrain --data-config stats.json``. Every checkpoint then carries them in its model config.
"""

from __future__ import annotations

import argparse

from backend.events import Reporter


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("stats", parents=[common], help="per-band statistics of pretraining data",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="data folders or RADAR.tif,OPTICAL.tif pairs (as for pretrain --data)")
    p.add_argument("--out", required=True, help="data config JSON to write")
    p.add_argument("--data-config", help="start from this data config (bands, modalities)")
    p.add_argument("--modalities", help="comma-separated modalities (default sar,optical)")
    p.add_argument("--sar-bands", help="radar bands in model order")
    p.add_argument("--optical-bands", help="optical bands in model order")
    p.add_argument("--crop", type=int, default=64, help="chip size in pixels (default 64)")
    p.add_argument("--samples", type=int, default=256, help="chips to sample (default 256)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.errors import UserError
    from backend.training.data import (
        PairedChipDataset,
        compute_statistics,
        discover_sources,
        resolve_data_config,
    )

    if args.samples < 1:
        raise UserError("--samples must be at least 1")
    config = resolve_data_config(args.data_config, args.modalities, args.sar_bands, args.optical_bands)
    found = discover_sources(args.data, config, args.crop)
    for note in found.notes:
        reporter.log(note)
    if found.skipped:
        reporter.warning(f"{len(found.skipped)} sample(s) skipped: " + "; ".join(found.skipped[:5]))
    dataset = PairedChipDataset(found.sources, config, args.crop, seed=args.seed, normalize=False)

    def progress(items: range, total: int) -> object:
        return reporter.track(items, total=total, description="sampling chips", unit="chip")

    stats = compute_statistics(dataset, args.samples, progress)
    dataset.close()
    for name, values in stats.items():
        config.modalities[name].mean = values["mean"]
        config.modalities[name].std = values["std"]
    config.data = [str(p) for p in args.data]
    config.save(args.out)
    reporter.result({"data_config": str(args.out)},
                    {"samples": args.samples, "sources": len(found.sources), "skipped": len(found.skipped),
                     "statistics": {name: {"bands": config.modalities[name].bands, **values}
                                    for name, values in stats.items()}})
