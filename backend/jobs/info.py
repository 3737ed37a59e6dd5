"""``info``: print what a model file or CROMA checkpoint contains (size, depths, bands, statistics).

The weights are loaded through the strict loader, so a model whose weights are missing, unreadable,
mis-shaped or non-finite is an error (exit 2) naming the file and the tensors, not a description.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from backend.events import Reporter


def describe(path: Path) -> dict[str, Any]:
    """The facts ``info`` reports, as a JSON-friendly dict (after verifying the weights).

    ``path`` may also be a bare model name (``galileo-nano``: bundled or installed).
    """
    from backend.inference.model import model_config, resolve_model_path
    from backend.models.weights import is_model_file, load_encoder

    path = resolve_model_path(path)
    model = load_encoder(path)
    config = model_config(path) if is_model_file(path) else model.config
    if config.is_galileo:
        return _describe_galileo(path, config, model)
    return {
        "name": config.name,
        "format": "terraprobe model" if is_model_file(path) else "torch checkpoint",
        "architecture": config.architecture,
        "dim": config.dim,
        "heads": config.heads,
        "sar_depth": config.sar_depth if "sar" in config.modalities else 0,
        "optical_depth": config.optical_depth if "optical" in config.modalities else 0,
        "joint_depth": config.joint_depth if config.has_joint else 0,
        "patch_size": config.patch_size,
        "mlp_ratio": config.mlp_ratio,
        "modalities": {name: {"bands": m.bands, "mean": m.mean, "std": m.std}
                       for name, m in config.modalities.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights": "verified: every tensor present, of the right shape and finite",
        "provenance": config.provenance,
    }


def _describe_galileo(path: Path, config: Any, model: Any) -> dict[str, Any]:
    """The facts of a Galileo encoder: one transformer over channel-group tokens."""
    from backend.io.atomic import read_json
    from backend.models.files import model_paths

    extra = read_json(model_paths(path)[1], "model config")
    return {
        "name": config.name, "format": "terraprobe model", "architecture": config.architecture,
        "dim": config.dim, "heads": config.heads, "depth": len(model.blocks), "sar_depth": 0,
        "optical_depth": 0, "joint_depth": 0, "patch_size": config.patch_size, "mlp_ratio": config.mlp_ratio,
        "modalities": {name: {"bands": m.bands, "mean": m.mean, "std": m.std}
                       for name, m in config.modalities.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights": "verified: every tensor present, of the right shape and finite",
        "licence": extra.get("licence", ""), "citation": extra.get("citation", ""),
        "provenance": config.provenance,
    }


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    info = describe(args.model)
    if reporter.mode == "human":
        lines = [f"model: {args.model}", f"name: {info['name']} ({info['format']})",
                 f"width {info['dim']}, {info['heads']} heads, patch {info['patch_size']}, "
                 f"MLP ratio {info['mlp_ratio']}",
                 (f"layers: {info['depth']} over channel-group tokens (Galileo)" if "depth" in info else
                  f"layers: sar {info['sar_depth']}, optical {info['optical_depth']}, "
                  f"joint {info['joint_depth']}"),
                 f"parameters: {info['parameters']:,}", f"weights: {info['weights']}"]
        for name, modality in info["modalities"].items():
            lines.append(f"{name} bands: {', '.join(modality['bands'])}")
            if modality["mean"] is None:
                lines.append(f"{name} statistics: none (sampled from the input raster at inference)")
            else:
                lines.append(f"{name} mean: {', '.join(f'{v:.4g}' for v in modality['mean'])}")
                lines.append(f"{name} std:  {', '.join(f'{v:.4g}' for v in modality['std'])}")
        for key in ("licence", "citation"):
            if info.get(key):
                lines.append(f"{key}: {info[key]}")
        for key, value in info["provenance"].items():
            lines.append(f"provenance {key}: {value}")
        for line in lines:
            reporter.log(line)
        reporter.result({}, {})
    else:
        reporter.result({}, info)
