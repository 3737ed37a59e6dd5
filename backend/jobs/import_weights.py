"""``import-weights``: convert an official or TorchGeo CROMA checkpoint into a Terraprobe model file.

The result is ``FILE.safetensors`` + ``FILE.json``; the JSON records the bands (names, order),
optional fixed per-band statistics and where the weights came from.
"""

from __future__ import annotations

import argparse

from backend.errors import UserError
from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.models import load_encoder, save_model
    from backend.models.preprocessing import raster_band_stats
    from backend.models.weights import is_model_file

    if is_model_file(args.checkpoint):
        raise UserError(f"{args.checkpoint} is already a Terraprobe model file")
    reporter.log(f"reading {args.checkpoint} (weights only)")
    model = load_encoder(args.checkpoint, heads=args.heads)
    config = model.config
    if args.name:
        config.name = args.name
    for name, raster in (("optical", args.optical_stats_from), ("sar", args.sar_stats_from)):
        if raster is None:
            continue
        if name not in config.modalities:
            raise UserError(f"--{name}-stats-from given but the checkpoint has no {name} encoder")
        modality = config.modalities[name]
        modality.mean, modality.std = raster_band_stats(str(raster), modality.bands)
        config.provenance[f"{name}_statistics"] = f"sampled from {raster.resolve()}"
        reporter.log(f"{name} statistics from {raster}: mean {[round(v, 3) for v in modality.mean]}")
    if any(m.has_stats for m in config.modalities.values()):
        config.provenance["statistics"] = "fixed statistics recorded in this file"
    weights, config_path = save_model(model, args.out)
    parameters = sum(p.numel() for p in model.parameters())
    reporter.result({"weights": str(weights), "config": str(config_path)},
                    {"name": config.name, "dim": config.dim, "modalities": sorted(config.modalities),
                     "parameters": parameters})
