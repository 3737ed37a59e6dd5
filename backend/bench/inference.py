"""inference: embed major-tom-core end to end (patches/s, peak RSS) and a 2x2 mosaic of it (streaming).

Builds a random-init model (base size by default, optical only), stacks the 12 major-tom-core band
files onto the 10 m grid (cropped to ``--crop`` px), mosaics the crop 2x2 into a raster 4x larger,
and runs ``python -m backend embed`` on each in a fresh process, measuring that process's peak
RSS (``os.wait4``). Flat peak RSS on the 4x raster shows the pipeline streams.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backend.events import Reporter

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "major-tom-core"


def _crop(source: Path, out: Path, side: int) -> None:
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(source) as src:
        window = Window(0, 0, min(side, src.width), min(side, src.height))
        profile = dict(src.profile, width=int(window.width), height=int(window.height),
                       transform=src.window_transform(window))
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions


def _run_embed(raster: Path, model: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "backend", "embed", "--optical", str(raster), "--model", str(model),
               "--window", str(args.window), "--overlap", str(args.overlap), "--batch-size",
               str(args.batch_size), "--device", args.device, "--cache-dir", str(out.parent / "cache"),
               "--out", str(out), "--events", "json"]
    began = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not events or events[-1]["event"] != "result":
        raise RuntimeError(f"embed failed ({proc.returncode}): {events[-1] if events else stdout[-500:]}")
    stats = events[-1]["stats"]
    return {"pixels": f"{stats['patch_width'] * 8}x{stats['patch_height'] * 8}", "patches": stats["patches"],
            "encoder_seconds": stats["seconds"], "wall_seconds": round(wall, 1),
            "patches_per_second": stats["patches_per_second"], "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import torch

    from backend.io.stack import mosaic_tiles, stack_band_files
    from backend.models import S2_BANDS, ModalityConfig, ModelConfig, base_config, build_model, save_model

    folder = next((args.data or SHARED).glob("S2L2A/*/*/*/"))
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        work = Path(tmp)
        optical_only = {"optical": ModalityConfig(list(S2_BANDS))}
        config = (base_config(modalities=optical_only) if args.size == "base" else
                  ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1,
                              modalities=optical_only))
        torch.manual_seed(0)
        model_path, _ = save_model(build_model(config), work / f"{args.size}")
        reporter.log("stacking major-tom-core bands")
        stack_band_files([folder / f"{b}.tif" for b in S2_BANDS], work / "scene_full.tif")
        _crop(work / "scene_full.tif", work / "scene.tif", args.crop)
        mosaic_tiles(work / "scene.tif", work / "mosaic.tif", (2, 2))
        rows = []
        for name in reporter.track(["scene", "mosaic"], description="embedding"):
            row = _run_embed(work / f"{name}.tif", model_path, work / f"{name}_emb.tif", args)
            rows.append({"raster": name, **row})
            reporter.log(f"{name}: {row}")
        ratio = rows[1]["peak_rss_mib"] / max(rows[0]["peak_rss_mib"], 1)
        header = "| raster | pixels | patches | encoder s | patches/s | peak RSS MiB |"
        lines = [header, "|---|---|---|---|---|---|"]
        lines += [f"| {r['raster']} | {r['pixels']} | {r['patches']} | {r['encoder_seconds']} | "
                  f"{r['patches_per_second']} | {r['peak_rss_mib']} |" for r in rows]
        print("\n".join(lines), file=sys.stderr)
        reporter.result({}, {"model": args.size, "crop": args.crop, "window": args.window,
                             "overlap": args.overlap, "runs": rows, "peak_rss_ratio_4x": round(ratio, 3)})
