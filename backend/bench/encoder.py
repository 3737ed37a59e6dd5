"""CROMA encoder vs the published maths: ALiBi build time, forward tiles/s, peak memory, max difference.

Both sides use the same random base weights and the same inputs. The reference is the published
algorithm written plainly: a dense 2D-ALiBi built once (as the published model does at
construction) and einsum + softmax attention with that bias added. The published Python double
loop is timed on its own; its tensor is bit-identical to our vectorised build (checked in the same
run), so the reference forward uses that tensor rather than waiting minutes for the loop at 504 px.

Each implementation runs in its own fresh subprocess per size, one after the other: peak memory is
the kernel's peak resident set (VmHWM, reset through ``/proc/self/clear_refs``) minus the resident
set once weights and inputs exist, over the bias build and the first forward pass; the time is the
median of ``--repeats`` forwards after that one (one forward, the same, above 256 px).

``--galileo`` instead compares the bundled encoders on the same Sentinel-2 tiles: galileo-nano
(``embed_space_time`` on every 8 x 8 patch alone, as embed runs it: the five S2 groups + NDVI, S1
masked) against croma-small (optical encoder),
each in its own fresh subprocess, with patches/s by wall clock and by process CPU time (robust on a
shared machine), peak memory, and galileo's fast path against ``forward`` + per-patch mean (the
official algorithm's structure: every token kind given, all but space-time masked; max abs diff).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backend.events import Reporter

#: The published loop at this many tokens or fewer is run in full; above, on a subset of rows.
FULL_LOOP_MAX_TOKENS = 900
#: H100 SXM dense bf16 peak, for model-FLOPs utilisation on CUDA.
DEFAULT_PEAK_TFLOPS = 989.0


# -- the published maths, written plainly ---------------------------------------------------------
def _reference_attention(module: Any, x: Any, context: Any, bias: Any) -> Any:
    import torch
    from einops import rearrange

    heads = module.heads
    x = module.input_norm(x)
    if context is None:
        q, k, v = module.to_qkv(x).chunk(3, dim=-1)
    else:
        context = module.input_norm(context)
        q, k, v = module.to_q(x), module.to_k(context), module.to_v(context)
    q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=heads) for t in (q, k, v))
    scores = torch.einsum("b h i d, b h j d -> b h i j", q, k) * q.shape[-1] ** -0.5
    weights = (scores + bias).softmax(dim=-1)
    out = torch.einsum("b h i j, b h j d -> b h i d", weights, v)
    return module.to_out(rearrange(out, "b h n d -> b n (h d)"))


def _reference_vit(encoder: Any, image: Any, bias: Any) -> Any:
    from einops import rearrange

    p = encoder.patch_size
    x = encoder.linear_input(rearrange(image, "b c (h i) (w j) -> b (h w) (c i j)", i=p, j=p))
    for attention, mlp in encoder.transformer.layers:
        x = x + _reference_attention(attention, x, None, bias)
        x = x + mlp.net(mlp.input_norm(x))
    return encoder.transformer.norm_out(x)


def reference_forward(model: Any, bias: Any, sar: Any = None, optical: Any = None) -> dict[str, Any]:
    """The published forward pass with a precomputed dense bias ``[1, H, N, N]``."""
    out = {}
    if sar is not None:
        out["sar_encodings"] = _reference_vit(model.s1_encoder, sar, bias)
        out["sar_pooled"] = model.s1_GAP_FFN(out["sar_encodings"].mean(dim=1))
    if optical is not None:
        out["optical_encodings"] = _reference_vit(model.s2_encoder, optical, bias)
        out["optical_pooled"] = model.s2_GAP_FFN(out["optical_encodings"].mean(dim=1))
    if sar is not None and optical is not None:
        x, context = out["sar_encodings"], out["optical_encodings"]
        for attention, cross, mlp in model.joint_encoder.layers:
            x = x + _reference_attention(attention, x, None, bias)
            x = x + _reference_attention(cross, x, context, bias)
            x = x + mlp.net(mlp.input_norm(x))
        out["joint_encodings"] = model.joint_encoder.norm_out(x)
        out["joint_pooled"] = out["joint_encodings"].mean(dim=1)
    return out


# -- helpers --------------------------------------------------------------------------------------
def _setup(streams: str, size: int, batch: int, device: str) -> tuple[Any, dict[str, Any]]:
    import torch

    from backend.models import base_config, build_model
    from backend.models.config import S1_BANDS, S2_BANDS, ModalityConfig

    torch.manual_seed(0)
    modalities = {"optical": ModalityConfig(list(S2_BANDS))}
    if streams == "both":
        modalities["sar"] = ModalityConfig(list(S1_BANDS))
    model = build_model(base_config(modalities=modalities)).eval().to(device)
    generator = torch.Generator().manual_seed(1)
    inputs = {"optical": torch.rand(batch, 12, size, size, generator=generator).to(device)}
    if streams == "both":
        inputs["sar"] = torch.rand(batch, 2, size, size, generator=generator).to(device)
    return model, inputs


def _forward_flops(streams: str, size: int, batch: int, dim: int = 768) -> float:
    """Multiply-adds x 2 of one base forward (projections, MLPs and attention)."""
    n = (size // 8) ** 2
    per_layer = 2 * n * 12 * dim * dim + 4 * n * n * dim
    flops = 12 * per_layer + 2 * n * 768 * dim
    if streams == "both":
        joint_layer = per_layer + 2 * n * 4 * dim * dim + 4 * n * n * dim
        flops += 6 * per_layer + 2 * n * 128 * dim + 6 * joint_layer
    return float(batch * flops)


def _time(fn: Any, repeats: int, device: str) -> float:
    import torch

    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_child(impl: str, size: int, streams: str, batch: int, repeats: int, device: str,
                  outputs: str) -> dict[str, float]:
    """Run one implementation in this fresh process: peak extra memory, median forward seconds.

    The first forward runs right after the peak-RSS mark is reset, so its peak counts the dense
    bias (built in that window, outside the timed part, for both implementations), activations
    and attention temporaries. Outputs are saved to ``outputs`` for the parent to compare.
    """
    import torch

    from backend.models.alibi import alibi_bias

    model, inputs = _setup(streams, size, batch, device)
    side = size // 8
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    result: dict[str, Any] = {}

    def forward() -> None:
        if impl == "reference":
            with autocast:
                result.update(reference_forward(model, alibi_bias(side, side, 16, device), **inputs))
        else:
            result.update(model(**inputs))

    with torch.no_grad():
        cpu = device == "cpu"
        if cpu:
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS high-water mark
            before = _rss_kib("VmRSS")
        else:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated() // 1024
        if impl == "reference" or device == "cpu":  # (CUDA "auto" never builds it for large grids)
            alibi_bias(side, side, 16, device)  # the published model builds it at construction
        times = [_time(forward, 1, device)]
        peak = _rss_kib("VmHWM") if cpu else torch.cuda.max_memory_allocated() // 1024
        if repeats > 1:
            times = [_time(forward, 1, device) for _ in range(repeats)]  # the first was a warm-up
    torch.save({k: v.float().cpu() for k, v in result.items()}, outputs)
    return {"seconds": statistics.median(times), "peak_extra_mib": (peak - before) / 1024}


def _run_child(impl: str, size: int, args: argparse.Namespace, outputs: Path) -> dict[str, float]:
    return _spawn_child({"impl": impl, "size": size, "streams": args.streams, "batch": args.batch,
                         "repeats": args.repeats if size <= 256 else 1, "device": args.device,
                         "outputs": str(outputs), "threads": args.threads or 0})


def _spawn_child(options: dict[str, Any]) -> dict[str, float]:
    command = [sys.executable, "-m", "backend.bench.encoder", "--child", json.dumps(options)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the benchmark --------------------------------------------------------------------------------
def _bias_build(size: int, loop_rows: int, repeats: int) -> dict[str, Any]:
    import torch

    from backend.models.alibi import alibi_bias, clear_alibi_cache, reference_alibi_loop

    side = size // 8
    tokens = side * side

    def ours() -> Any:
        clear_alibi_cache()
        return alibi_bias(side, side, 16)

    ours_s = _time(ours, repeats, "cpu")
    rows = tokens if tokens <= FULL_LOOP_MAX_TOKENS else min(loop_rows, tokens)
    start = time.perf_counter()
    loop = reference_alibi_loop(side, side, 16, max_query_rows=rows)
    loop_s = (time.perf_counter() - start) * tokens / rows
    identical = torch.equal(alibi_bias(side, side, 16)[:, :, :rows], loop)
    return {"ours_s": ours_s, "loop_s": loop_s, "loop_extrapolated": rows < tokens,
            "loop_rows": rows, "bit_identical": identical}


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import torch

    from backend.errors import UserError

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if any(s % 8 or s <= 0 for s in args.sizes):
        raise UserError("--sizes must be positive multiples of 8")
    if args.galileo:
        run_galileo(args, reporter)
        return
    device = args.device
    rows_out = []
    reporter.log(f"base model, random weights, streams={args.streams}, batch {args.batch}, device {device}, "
                 f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for size in args.sizes:
        side = size // 8
        build = _bias_build(size, args.loop_rows, args.repeats)
        with tempfile.TemporaryDirectory() as tmp:
            ours = _run_child("ours", size, args, Path(tmp) / "ours.pt")
            ref = _run_child("reference", size, args, Path(tmp) / "reference.pt")
            ours_out = torch.load(Path(tmp) / "ours.pt", weights_only=True)
            ref_out = torch.load(Path(tmp) / "reference.pt", weights_only=True)
        max_diff = max((ours_out[k] - ref_out[k]).abs().max().item() for k in ours_out)
        row: dict[str, Any] = {
            "size": size, "tokens": side * side, **{f"bias_{k}": v for k, v in build.items()},
            "ours_tiles_per_s": args.batch / ours["seconds"],
            "reference_tiles_per_s": args.batch / ref["seconds"],
            "speedup": ref["seconds"] / ours["seconds"], "max_abs_diff": max_diff,
            "ours_peak_mib": ours["peak_extra_mib"], "reference_peak_mib": ref["peak_extra_mib"],
        }
        if device == "cuda":
            flops = _forward_flops(args.streams, size, args.batch)
            row["ours_mfu"] = flops / ours["seconds"] / (args.peak_tflops * 1e12)
        rows_out.append(row)
        reporter.log(_format_row(row))
    reporter.log("\n" + markdown_table(rows_out))
    reporter.result({}, {"rows": rows_out, "streams": args.streams, "batch": args.batch, "device": device})


def _format_row(row: dict[str, Any]) -> str:
    mem = ""
    if row.get("ours_peak_mib") is not None and row.get("reference_peak_mib") is not None:
        mem = f", peak {row['ours_peak_mib']:.0f} vs {row['reference_peak_mib']:.0f} MiB"
    return (f"{row['size']} px: bias {row['bias_ours_s'] * 1e3:.1f} ms vs loop {row['bias_loop_s']:.2f} s"
            f"{' (extrapolated)' if row['bias_loop_extrapolated'] else ''}, forward "
            f"{row['ours_tiles_per_s']:.3f} vs {row['reference_tiles_per_s']:.3f} tiles/s "
            f"({row['speedup']:.2f}x){mem}, max diff {row['max_abs_diff']:.2e}")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table for docs/benchmarks.md."""
    lines = ["| px | tokens | ALiBi build ours | published loop | build speed-up | forward ours (tiles/s) "
             "| reference (tiles/s) | forward speed-up | peak MiB ours | peak MiB reference | memory ratio "
             "| max abs diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        loop = f"{r['bias_loop_s']:.2f} s" + (f" (extrapolated from {r['bias_loop_rows']} of {r['tokens']} "
                                               "query rows)" if r["bias_loop_extrapolated"] else "")
        ours_mem, ref_mem = r.get("ours_peak_mib"), r.get("reference_peak_mib")
        measured = ours_mem is not None and ref_mem is not None
        memory = (f"{ours_mem:.0f} | {ref_mem:.0f} | {ours_mem / max(ref_mem, 1e-9):.2f}" if measured
                  else "- | - | -")
        lines.append(f"| {r['size']} | {r['tokens']} | {r['bias_ours_s'] * 1e3:.1f} ms | {loop} "
                     f"| {r['bias_loop_s'] / r['bias_ours_s']:.0f}x | {r['ours_tiles_per_s']:.3f} "
                     f"| {r['reference_tiles_per_s']:.3f} | {r['speedup']:.2f}x | {memory} "
                     f"| {r['max_abs_diff']:.1e} |")
    return "\n".join(lines)


# -- galileo-nano against croma-small -------------------------------------------------------------
#: What ``--galileo`` times: croma-small's optical encoder, galileo-nano's fast path, its general path.
GALILEO_IMPLS = ("croma-small", "galileo-nano", "galileo-nano-forward")


def _s2_tiles(size: int, batch: int) -> Any:
    """``[B, 12, size, size]`` Sentinel-2 L1C-like DN (CROMA's band order), the same for every child."""
    import torch

    generator = torch.Generator().manual_seed(1)
    return 200 + 3800 * torch.rand(batch, 12, size, size, generator=generator)


def _galileo_inputs(tiles: Any) -> tuple[Any, Any, Any]:
    """Normalised ``s_t_x``, masks (S1 hidden) and months of ``tiles`` for galileo-nano."""
    import torch

    from backend.models.config import S2_BANDS
    from backend.models.galileo import (
        GALILEO_SPACE_TIME_BANDS,
        GALILEO_SPACE_TIME_GROUPS,
        galileo_ndvi,
        normalise_space_time,
    )

    batch, _, height, width = tiles.shape
    raw = torch.zeros(batch, height, width, 1, len(GALILEO_SPACE_TIME_BANDS))
    for channel, band in enumerate(GALILEO_SPACE_TIME_BANDS):
        if band in S2_BANDS:
            raw[..., 0, channel] = tiles[:, S2_BANDS.index(band)]
    red, nir = (tiles[:, S2_BANDS.index(b)] for b in ("B04", "B08"))
    raw[..., 0, -1] = galileo_ndvi(red, nir)
    masks = torch.zeros(batch, height, width, 1, len(GALILEO_SPACE_TIME_GROUPS))
    masks[..., 0] = 1  # no Sentinel-1
    return normalise_space_time(raw), masks, torch.full((batch, 1), 5)


def _galileo_forward_pooled(model: Any, s_t_x: Any, masks: Any, months: Any) -> Any:
    """The general path: every token kind given (all but space-time masked), then the per-patch mean."""
    import torch

    from backend.models.galileo import per_patch_visible_mean

    batch, height, width = s_t_x.shape[:3]
    t = s_t_x.shape[3]
    absent = {"device": s_t_x.device}
    out = model(s_t_x, s_t_x.new_zeros(batch, height, width, 16), s_t_x.new_zeros(batch, t, 6),
                s_t_x.new_zeros(batch, 18), masks, torch.ones(batch, height, width, 3, **absent),
                torch.ones(batch, t, 3, **absent), torch.ones(batch, 4, **absent), months)
    return per_patch_visible_mean(*out[:8])


def measure_galileo_child(impl: str, size: int, batch: int, repeats: int, device: str,
                          outputs: str) -> dict[str, float]:
    """One bundled encoder in this fresh process: peak extra memory, median wall and CPU seconds."""
    import torch

    from backend.inference.galileo_inputs import patches_alone
    from backend.models.galileo import load_galileo
    from backend.models.weights import load_encoder
    from backend.paths import MODELS_DIR

    tiles = _s2_tiles(size, batch)
    if impl == "croma-small":
        model = load_encoder(MODELS_DIR / "terraprobe-croma-small.safetensors", device)
        optical = (tiles / 10000).to(device)

        def forward() -> Any:
            return model(optical=optical)["optical_encodings"]
    else:
        model = load_galileo(MODELS_DIR / "galileo-nano.safetensors", device)
        # as embed runs it: every 8 x 8 patch alone (backend.inference.galileo_inputs.GALILEO_TILING)
        s_t_x, masks, months = patches_alone(*(t.to(device) for t in _galileo_inputs(tiles)), 8)

        def forward() -> Any:
            if impl == "galileo-nano":
                return model.embed_space_time(s_t_x, masks, months).flatten(1, 2)
            return _galileo_forward_pooled(model, s_t_x, masks, months)
    cpu = device == "cpu"
    with torch.inference_mode():
        if cpu:
            Path("/proc/self/clear_refs").write_text("5")
            before = _rss_kib("VmRSS")
        else:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated() // 1024
        result = forward()
        peak = _rss_kib("VmHWM") if cpu else torch.cuda.max_memory_allocated() // 1024
        walls, cpus = [], []
        for _ in range(max(1, repeats)):
            start_cpu = time.process_time()
            walls.append(_time(forward, 1, device))
            cpus.append(time.process_time() - start_cpu)
    torch.save({"vectors": result.float().cpu()}, outputs)
    return {"seconds": statistics.median(walls), "cpu_seconds": statistics.median(cpus),
            "peak_extra_mib": (peak - before) / 1024}


def run_galileo(args: argparse.Namespace, reporter: Any) -> None:
    """``bench encoder --galileo``: one row per tile size."""
    import torch

    rows = []
    reporter.log(f"bundled galileo-nano vs croma-small, batch {args.batch}, device {args.device}, "
                 f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            measured = {impl: _spawn_child({"impl": impl, "size": size, "batch": args.batch,
                                            "repeats": args.repeats, "device": args.device,
                                            "outputs": str(Path(tmp) / f"{impl}.pt"),
                                            "threads": args.threads or 0}) for impl in GALILEO_IMPLS}
            fast, general = (torch.load(Path(tmp) / f"{impl}.pt", weights_only=True)["vectors"]
                             for impl in GALILEO_IMPLS[1:])
        patches = args.batch * (size // 8) ** 2
        row: dict[str, Any] = {"size": size, "patches": patches,
                               "fast_vs_forward_max_abs_diff": float((fast - general).abs().max())}
        for impl, m in measured.items():
            row[f"{impl}_patches_per_s"] = patches / m["seconds"]
            row[f"{impl}_patches_per_cpu_s"] = patches / m["cpu_seconds"]
            row[f"{impl}_peak_mib"] = m["peak_extra_mib"]
        row["ratio"] = row["galileo-nano_patches_per_s"] / row["croma-small_patches_per_s"]
        row["ratio_cpu"] = row["galileo-nano_patches_per_cpu_s"] / row["croma-small_patches_per_cpu_s"]
        rows.append(row)
        reporter.log(f"{size} px: galileo-nano {row['galileo-nano_patches_per_s']:.0f} patches/s, "
                     f"croma-small {row['croma-small_patches_per_s']:.0f} ({row['ratio']:.2f}x; by CPU time "
                     f"{row['ratio_cpu']:.2f}x), fast vs forward {row['fast_vs_forward_max_abs_diff']:.1e}")
    reporter.log("\n" + galileo_markdown_table(rows))
    reporter.result({}, {"rows": rows, "batch": args.batch, "device": args.device})


def galileo_markdown_table(rows: list[dict[str, Any]]) -> str:
    """The ``--galileo`` results as a Markdown table for docs/benchmarks.md."""
    headers = ("tile px", "patches", *(f"{impl} patches/s (CPU-s)" for impl in GALILEO_IMPLS),
               "galileo / croma (CPU-s)", f"peak MiB {' / '.join(GALILEO_IMPLS)}",
               "fast vs forward max abs diff")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        speeds = " | ".join(f"{r[f'{i}_patches_per_s']:.0f} ({r[f'{i}_patches_per_cpu_s']:.0f})"
                            for i in GALILEO_IMPLS)
        peaks = " / ".join(f"{r[f'{i}_peak_mib']:.0f}" for i in GALILEO_IMPLS)
        lines.append(f"| {r['size']} | {r['patches']} | {speeds} | {r['ratio']:.2f}x ({r['ratio_cpu']:.2f}x) "
                     f"| {peaks} | {r['fast_vs_forward_max_abs_diff']:.1e} |")
    return "\n".join(lines)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--child":
    import torch

    _options = json.loads(sys.argv[2])
    _threads = _options.pop("threads")
    if _threads:
        torch.set_num_threads(_threads)
    _measure = measure_galileo_child if _options["impl"] in GALILEO_IMPLS else measure_child
    print(json.dumps(_measure(**_options)))
