"""``stats``: per-band mean and standard deviation of pretraining data, written as a data config.

``python -m backend stats DATA... --out stats.json`` samples random chips (windowed reads) and
stores the statistics (raw raster units) with the band lists; pass the file to
``pretrain --data-config stats.json``. Every checkpoint then carries them in its model config.
"""

from __future__ import annotations

import argparse

from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.training.data import (
        PairedChipDataset,
        compute_statistics,
        discover_sources,
        resolve_data_config,
    )

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
