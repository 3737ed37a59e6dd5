"""The memory guard's estimate (``backend.inference.memory``) against the measured peak of one batch.

On CUDA the measure is ``torch.cuda.max_memory_allocated`` over loading the weights and one encoder
forward (the guard's device-side terms: weights, ALiBi bias, scores, activations, inputs); on the
CPU it is the growth of the peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``).
Each case runs in a fresh subprocess so peaks do not carry over.

    python scripts/memory_guard_check.py --device cuda --size base --windows 120 248 504 --batch 4

Prints one Markdown table (estimate, measured, ratio) and a JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def _config(size: str) -> object:
    from backend.models import S2_BANDS, ModalityConfig, ModelConfig, base_config

    optical = {"optical": ModalityConfig(list(S2_BANDS))}
    if size == "base":
        return base_config(modalities=optical)
    return ModelConfig(dim=64, heads=4, sar_depth=1, optical_depth=2, joint_depth=1, modalities=optical)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(size: str, window: int, batch: int, device: str) -> dict[str, float]:
    """One case in this process: the estimate's parts and the measured peak, in MiB."""
    import torch

    from backend.inference.memory import estimate_memory
    from backend.models import build_model

    config = _config(size)
    side = window // 8
    estimate = estimate_memory(config, side, side, batch, ["optical"], int(config.dim), side, side, device)
    torch.manual_seed(0)
    cuda = device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")
        before = _rss_kib("VmRSS") * 1024
    model = build_model(config).eval().to(device)
    tiles = torch.rand(batch, len(config.modalities["optical"].bands), window, window, device=device)
    with torch.inference_mode():
        out = model(optical=tiles)
        if cuda:
            torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() if cuda else _rss_kib("VmHWM") * 1024) - before
    del out
    device_terms = estimate.weights + estimate.bias + estimate.scores + estimate.activations + estimate.inputs
    return {"window": window, "batch": batch, "tokens": side * side,
            "estimate_total_mib": round(estimate.total / MIB, 1),
            "estimate_device_terms_mib": round(device_terms / MIB, 1),
            "bias_mib": round(estimate.bias / MIB, 1),
            "activations_mib": round(estimate.activations / MIB, 1),
            "measured_peak_mib": round(peak / MIB, 1),
            "estimate_over_measured": round(estimate.total / max(peak, 1), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--size", choices=("base", "tiny"), default="base")
    parser.add_argument("--windows", type=int, nargs="+", default=[120, 248, 504])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case = json.loads(args.child)
        print(json.dumps(measure(args.size, case["window"], case["batch"], args.device)))
        return 0
    rows = []
    for window in args.windows:
        command = [sys.executable, str(Path(__file__).resolve()), "--device", args.device,
                   "--size", args.size, "--child", json.dumps({"window": window, "batch": args.batch})]
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            print(f"window {window}: failed: {proc.stderr.strip()[-400:]}", file=sys.stderr)
            rows.append({"window": window, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    keys = ["window", "batch", "tokens", "estimate_total_mib", "estimate_device_terms_mib", "bias_mib",
            "activations_mib", "measured_peak_mib", "estimate_over_measured"]
    print(f"memory guard, {args.size} model, optical, {args.device}:")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "failed")) for k in keys) + " |")
    print(json.dumps({"memory_guard": rows, "device": args.device, "size": args.size}))
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
