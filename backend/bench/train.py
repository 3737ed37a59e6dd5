"""Training throughput (samples/s) of a pretraining objective, and model-FLOPs utilisation on CUDA.

Times full optimiser steps (forward, backward, AdamW) of the objective on random chips after
warm-up steps, and, as the in-run reference, the plain encoder forward pass (inference) on the
same batch. FLOPs of one training step are counted with ``torch.utils.flop_counter`` (matrix
multiplications and attention); on CUDA the step runs in bf16 autocast and the utilisation is
achieved FLOP/s over the device's dense bf16 peak (``--peak-tflops``, or known for A100/H100/H200).

Example: ``python -m backend bench train`` (CROMA-base, 120 px, batch 8, CPU).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from backend.errors import UserError
from backend.events import Reporter
from backend.training.model_sizes import MODEL_SIZES

#: Dense bf16 peak TFLOP/s by device-name fragment (without sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def _config(size: str) -> Any:
    from backend.models import ModalityConfig, ModelConfig
    from backend.models.config import S1_BANDS, S2_BANDS, base_config, large_config

    modalities = {"sar": ModalityConfig(list(S1_BANDS), [0.0] * 2, [1.0] * 2),
                  "optical": ModalityConfig(list(S2_BANDS), [0.0] * 12, [1.0] * 12)}
    if size == "base":
        return base_config(modalities=modalities)
    if size == "large":
        return large_config(modalities=modalities)
    dim, heads, depth = MODEL_SIZES[size]
    return ModelConfig(dim=dim, heads=heads, sar_depth=max(1, depth // 2), optical_depth=depth,
                       joint_depth=max(1, depth // 2), modalities=modalities)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from backend.training.engine import parameter_groups
    from backend.training.objectives import build_objective

    if args.crop % 8 or args.crop <= 0:
        raise UserError("--crop must be a positive multiple of 8")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = _config(args.model_size)
    objective = build_objective(args.objective, config, {"mask_ratio": 0.75}).to(device)
    optimizer = torch.optim.AdamW(parameter_groups(objective, 0.05), lr=1e-5, betas=(0.9, 0.95))
    batch = {"sar": torch.rand(args.batch_size, 2, args.crop, args.crop, device=device),
             "optical": torch.rand(args.batch_size, 12, args.crop, args.crop, device=device)}
    bf16 = device.type == "cuda"

    def train_step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = objective(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(objective.parameters(), 1.0)
        optimizer.step()

    reporter.log(f"{args.objective} {args.model_size}: {sum(p.numel() for p in objective.parameters()):,} "
                 f"parameters, {args.crop} px, batch {args.batch_size}, {device}"
                 f"{' bf16' if bf16 else ' fp32'}")
    for _ in reporter.track(range(args.warmup_steps), description="warm-up", unit="step"):
        train_step()
    _sync(device)
    times = []
    for _ in reporter.track(range(args.steps), description="training steps", unit="step"):
        start = time.perf_counter()
        train_step()
        _sync(device)
        times.append(time.perf_counter() - start)
    step_time = sorted(times)[len(times) // 2]

    encoder = objective.export_encoder()
    encoder.eval()
    with torch.no_grad():
        encoder(sar=batch["sar"], optical=batch["optical"])
        _sync(device)
        start = time.perf_counter()
        encoder(sar=batch["sar"], optical=batch["optical"])
        _sync(device)
        forward_time = time.perf_counter() - start
    encoder.train()

    stats: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if bf16 else f"cpu ({torch.get_num_threads()} threads)",
        "precision": "bf16 autocast" if bf16 else "fp32",
        "step_seconds": step_time,
        "train_samples_per_s": args.batch_size / step_time,
        "inference_samples_per_s": args.batch_size / forward_time,
        "train_vs_inference_cost": step_time / forward_time,
    }
    if not args.no_flops:
        counter = FlopCounterMode(display=False)
        with counter:
            train_step()
        flops = counter.get_total_flops()
        stats["train_step_tflop"] = flops / 1e12
        stats["achieved_tflops"] = flops / step_time / 1e12
        if bf16:
            name = torch.cuda.get_device_name(device)
            peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
            if peak:
                stats["peak_bf16_tflops"] = peak
                stats["mfu"] = stats["achieved_tflops"] / peak
            else:
                reporter.warning(f"unknown peak for {name}: pass --peak-tflops for the utilisation")
    for key, value in stats.items():
        reporter.log(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    reporter.result({}, stats)
