"""``pretrain``: self-supervised pretraining of CROMA-style encoders (CROMA, dual, X-STARS, CMID).

Single process: ``python -m backend pretrain --objective croma --data DIR --out RUN``.
Several processes / GPUs / nodes: ``torchrun --nproc_per_node N -m backend pretrain ...``
(``--batch-size`` is per process). ``RUN`` then holds ``model.safetensors`` + ``model.json``
(the latest encoder, usable at once by ``embed``), ``state.pt`` (for ``--resume RUN``),
``metrics.csv``, ``loss.png`` and ``data_config.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.events import Reporter
from backend.training.model_sizes import MODEL_SIZES

OBJECTIVE_NAMES = ("croma", "dual", "xstars", "cmid")

#: Loop settings a resumed run takes from the command line only when given there.
_RESUME_OVERRIDABLE = ("steps", "max_steps", "save_every", "workers", "log_every")
_DEFAULTS: dict[str, Any] = {
    "crop": 64, "batch_size": 8, "steps": 1000, "lr": 1e-4, "min_lr": 0.0, "warmup": 100,
    "weight_decay": 0.05, "clip": 1.0, "save_every": 500, "seed": 0, "workers": 0, "log_every": 1,
    "mask_ratio": 0.75, "contrastive_weight": 1.0, "mae_weight": 1.0, "joint_self_bias": "radar",
    "model_size": "tiny", "stats_samples": 256,
}


def _options_dict(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--objective-option expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        options[key.strip()] = value.strip()
    return options


def _value(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name, None)
    return _DEFAULTS.get(name) if value is None else value


def _model_config(args: argparse.Namespace, data_config: Any) -> Any:
    from backend.models import ModalityConfig, ModelConfig
    from backend.models.config import base_config, large_config

    size = _value(args, "model_size")
    modalities = {name: ModalityConfig(list(m.bands), list(m.mean), list(m.std))
                  for name, m in data_config.modalities.items()}
    unknown = set(modalities) - {"sar", "optical"}
    if unknown:
        raise UserError(f"the encoder takes modalities 'sar' and 'optical'; the data config has "
                        f"{', '.join(sorted(unknown))}")
    if size == "base":
        return base_config(modalities=modalities)
    if size == "large":
        return large_config(modalities=modalities)
    if size == "custom":
        if not (args.dim and args.heads and args.depth):
            raise UserError("--model-size custom needs --dim, --heads and --depth")
        dim, heads, depth = args.dim, args.heads, args.depth
    else:
        dim, heads, depth = MODEL_SIZES[size]
        dim, heads, depth = args.dim or dim, args.heads or heads, args.depth or depth
    half = max(1, depth // 2)
    return ModelConfig(dim=dim, heads=heads, sar_depth=half, optical_depth=depth, joint_depth=half,
                       modalities=modalities, name=f"{_value(args, 'objective') or 'croma'}-{size}")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    names = ("crop", "seed", "mask_ratio", "contrastive_weight", "mae_weight", "joint_self_bias")
    settings = {name: _value(args, name) for name in names}
    settings["init"] = str(Path(args.init).resolve()) if args.init else None
    settings["options"] = _options_dict(args.objective_option)
    if args.xstars_encoder:
        if (args.objective or "croma") != "xstars":
            raise UserError("--xstars-encoder applies to --objective xstars only")
        settings["options"]["encoder"] = args.xstars_encoder
    settings["flips"] = not args.no_flip
    settings["batch_size"] = _value(args, "batch_size")
    settings["steps"] = _value(args, "steps")
    return settings


def _train_options(args: argparse.Namespace, saved: dict[str, Any] | None) -> Any:
    from backend.training.engine import TrainOptions

    if saved is None:
        values = {name: _value(args, name) for name in ("steps", "batch_size", "lr", "min_lr", "warmup",
                                                        "weight_decay", "clip", "save_every", "seed",
                                                        "workers", "log_every")}
    else:
        values = {k: v for k, v in saved.items() if k in TrainOptions.__dataclass_fields__}
        for name in _RESUME_OVERRIDABLE:
            if getattr(args, name, None) is not None:
                values[name] = getattr(args, name)
    values["max_steps"] = args.max_steps
    values["debug_dump_weights"] = bool(args.debug_dump_weights)
    if values.get("clip") == 0:
        values["clip"] = None
    options = TrainOptions(**values)
    if options.lr <= 0:
        raise UserError("--lr must be positive")
    return options


def _device(name: str) -> Any:
    import torch

    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import torch

    from backend import distributed as dist_utils
    from backend.errors import Cancelled
    from backend.training.checkpoint import load_state
    from backend.training.data import (
        DataConfig,
        PairedChipDataset,
        compute_statistics,
        discover_sources,
        resolve_data_config,
    )
    from backend.training.engine import Trainer
    from backend.training.objectives import build_objective, objective_class

    saved: dict[str, Any] | None = None
    if args.resume:
        saved = load_state(args.resume)
        record = saved["run"]
        run_dir = Path(args.out or args.resume)
        objective_name = record["objective"]
        if args.objective and args.objective != objective_name:
            raise UserError(f"{args.resume} was trained with --objective {objective_name}, "
                            f"not {args.objective}")
        settings = record["settings"]
        data_config = DataConfig.from_dict(record["data_config"])
        data_paths = list(args.data or record["data"])
        from backend.models import ModelConfig

        model_config = ModelConfig.from_dict(record["model_config"])
    else:
        if not args.out:
            raise UserError("--out RUN_DIR is required (or --resume RUN_DIR)")
        run_dir = Path(args.out)
        if (run_dir / "state.pt").exists():
            raise UserError(f"{run_dir} already holds a training run; continue it with --resume {run_dir} "
                            f"or choose another --out")
        objective_name = args.objective or "croma"
        settings = _settings(args)
        data_config = resolve_data_config(args.data_config, args.modalities, args.sar_bands,
                                          args.optical_bands)
        needed = getattr(objective_class(objective_name), "required_modalities", ())
        lacking = [m for m in needed if m not in data_config.modalities]
        if lacking:
            raise UserError(f"the {objective_name} objective needs both sar and optical modalities "
                            f"({', '.join(lacking)} not in the data config)")
        data_paths = [_absolute(entry) for entry in (args.data or data_config.data)]
        model_config = None
    options = _train_options(args, saved["options"] if saved else None)
    crop = int(settings["crop"])
    if crop <= 0 or crop % 8:
        raise UserError(f"--crop must be a positive multiple of 8, got {crop}")

    device = _device(args.device)
    dist_info = dist_utils.init_distributed(device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    main = dist_info.is_main
    say = reporter if main else Reporter("json", stream=open(_devnull(), "w"))  # noqa: SIM115
    try:
        found = discover_sources([str(p) for p in data_paths], data_config, crop)
        for note in found.notes:
            say.log(note)
        if found.skipped:
            say.warning(f"{len(found.skipped)} sample(s) skipped: " + "; ".join(found.skipped[:5]))
        say.log(f"{len(found.sources)} paired sample(s), {sum(s.chips(crop) for s in found.sources)} "
                f"chips of {crop} px per epoch")
        if not data_config.has_stats:
            samples = int(_value(args, "stats_samples"))
            say.log(f"no per-band statistics in the data config: sampling {samples} chips")
            raw = PairedChipDataset(found.sources, data_config, crop, seed=int(settings["seed"]),
                                    normalize=False)
            stats = compute_statistics(raw, samples)
            raw.close()
            for name, values in stats.items():
                data_config.modalities[name].mean = values["mean"]
                data_config.modalities[name].std = values["std"]
        if model_config is None:
            model_config = _model_config(args, data_config)
        record = {"objective": objective_name, "settings": settings, "data": [str(p) for p in data_paths],
                  "data_config": data_config.to_dict(), "model_config": model_config.to_dict()}

        torch.manual_seed(int(settings["seed"]))
        objective = build_objective(objective_name, model_config, settings)
        if settings.get("init") and saved is None and not getattr(objective, "handles_init", False):
            _load_initial_weights(objective, settings["init"], say)
        dataset = PairedChipDataset(found.sources, data_config, crop, seed=int(settings["seed"]),
                                    flips=bool(settings.get("flips", True)))
        provenance = {"trained_with": f"python -m backend pretrain --objective {objective_name}",
                      "objective": objective_name, "data": [str(p) for p in data_paths],
                      "crop": crop, "seed": settings["seed"], "init": settings.get("init"),
                      "statistics": "per-band mean/std of the training data"}
        if objective_name == "croma":
            provenance["joint_self_bias"] = settings.get("joint_self_bias")
        if objective_name == "dual":
            provenance["joint_encoder"] = "untrained (dual-encoder objective): embed one modality at a time"
        trainer = Trainer(objective, dataset, options, run_dir, say, device, dist_info, record, provenance)
        if saved is not None:
            trainer.load_state_dict(saved)
            say.log(f"resuming {objective_name} from step {trainer.step} of {options.steps}")
            if trainer.step >= options.steps:
                raise UserError(f"{args.resume} already finished its {options.steps} steps; "
                                f"pass a larger --steps to continue")
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            data_config.save(run_dir / "data_config.json")
        try:
            summary = trainer.train()
        except Cancelled:
            say.warning(f"stopped at step {trainer.step}; the last checkpoint "
                        f"(step {trainer.last_saved_step}) "
                        f"is in {run_dir}: continue with --resume {run_dir}")
            raise
        dataset.close()
        if main:
            outputs = {"model": str(run_dir / "model.safetensors"), "config": str(run_dir / "model.json"),
                       "state": str(run_dir / "state.pt"), "metrics": str(run_dir / "metrics.csv")}
            if summary.get("plot"):
                outputs["plot"] = summary["plot"]
            stats = {k: v for k, v in summary.items() if k != "plot"}
            stats.update({"objective": objective_name, "world_size": dist_info.world_size,
                          "device": str(device)})
            reporter.result(outputs, stats)
    finally:
        dist_utils.shutdown_distributed()


def _absolute(entry: str) -> str:
    """A DATA argument with absolute paths (pairs ``a.tif,b.tif`` and ``name=path`` included)."""
    parts = []
    for part in str(entry).split(","):
        name, sep, value = part.rpartition("=") if "=" in part else ("", "", part)
        parts.append(f"{name}{sep}{Path(value).resolve()}" if value else part)
    return ",".join(parts)


def _devnull() -> str:
    import os

    return os.devnull


def _load_initial_weights(objective: Any, path: str, reporter: Reporter) -> None:
    """Copy an existing encoder's weights into the objective's encoder (same architecture)."""
    from backend.models import load_encoder

    source = load_encoder(path)
    target = objective.export_encoder()
    own = target.state_dict()
    theirs = source.state_dict()
    mismatched = [k for k in own if k not in theirs or theirs[k].shape != own[k].shape]
    if mismatched:
        raise UserError(f"--init {path} does not match the encoder being trained ({len(mismatched)} tensors "
                        f"differ, e.g. {mismatched[0]}); choose the same --model-size and bands")
    target.load_state_dict(theirs, strict=False)
    reporter.log(f"initialised the encoder from {path}")
