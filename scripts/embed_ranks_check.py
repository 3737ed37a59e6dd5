"""``torchrun -m backend embed`` on a large raster vs one process: throughput and equality of the results.

Builds a large Sentinel-2-like raster (the real Sen1Floods11 scene repeated when ``--data`` has it,
else smooth synthetic reflectances) and a random model, embeds it once with ``python -m backend
embed`` and once with ``torchrun --nproc-per-node RANKS`` (NCCL on CUDA, gloo on the CPU; fresh caches), and
prints a Markdown table and one JSON ``result`` line: patches/s of both, the speed-up, the max
absolute difference of the embeddings and whether they and the PCA previews are bitwise equal.

    python scripts/embed_ranks_check.py --work /tmp/w --device cuda --ranks 8 --side 2048 --size base
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
S2_FILE = Path("sen1floods11") / "Spain_7370579_S2Hand.tif"


def make_raster(path: Path, side: int, data: Path | None) -> None:
    """A ``side`` x ``side`` 12-band uint16 raster with Sentinel-2 band names."""
    import rasterio
    from rasterio.transform import from_origin

    from backend.models import S2_BANDS

    profile = {"driver": "GTiff", "width": side, "height": side, "count": 12, "dtype": "uint16",
               "crs": "EPSG:32630", "transform": from_origin(500000, 4200000, 10, 10), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    real = data / S2_FILE if data is not None else None
    with rasterio.open(path, "w", **profile) as dst:
        if real is not None and real.exists():
            with rasterio.open(real) as src:
                scene = src.read([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13])  # B10 skipped
            reps = -(-side // min(scene.shape[1:]))
            dst.write(np.tile(scene, (1, reps, reps))[:, :side, :side].astype("uint16"))
        else:
            y, x = np.mgrid[0:side, 0:side] / side
            for band in range(12):
                field = 1500 + 900 * np.sin(6 * x + band) * np.cos(5 * y - band) + 80 * band
                dst.write(field.astype("uint16"), band + 1)
        dst.descriptions = tuple(S2_BANDS)


def make_model(folder: Path, size: str) -> Path:
    import torch

    from backend.models import S2_BANDS, ModalityConfig, ModelConfig, base_config, build_model, save_model

    optical = {"optical": ModalityConfig(list(S2_BANDS))}
    if size == "base":
        config = base_config(modalities=optical)
    else:  # small: the bundled model's architecture
        dim, heads, depth = (192, 8, 4) if size == "small" else (32, 4, 2)
        config = ModelConfig(dim=dim, heads=heads, sar_depth=1, optical_depth=depth, joint_depth=1,
                             modalities=optical)
    torch.manual_seed(0)
    weights, _ = save_model(build_model(config), folder / f"embed_{size}")
    return weights


def _run(command: list[str], what: str) -> dict:
    """Run one embed; its result stats plus ``wall_s`` (process start to exit)."""
    began = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = round(time.perf_counter() - began, 2)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    stats = next(json.loads(line)["stats"] for line in proc.stdout.splitlines() if '"result"' in line)
    return {**stats, "wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--side", type=int, default=2048, help="raster side in pixels")
    parser.add_argument("--size", choices=("base", "small", "tiny"), default="base")
    parser.add_argument("--window", type=int, default=248)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data", type=Path, help="shared data folder (for the real scene)")
    args = parser.parse_args()
    import rasterio

    args.work.mkdir(parents=True, exist_ok=True)
    raster = args.work / "large_s2.tif"
    make_raster(raster, args.side, args.data)
    model = make_model(args.work, args.size)
    common = ["embed", "--optical", str(raster), "--model", str(model), "--window", str(args.window),
              "--overlap", "32", "--batch-size", str(args.batch_size), "--device", args.device,
              "--dtype", "float32", "--events", "json"]
    python = sys.executable
    torchrun = Path(python).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [python, "-m", "torch.distributed.run"]
    for name in ("single", "ranks"):
        shutil.rmtree(args.work / f"cache_{name}", ignore_errors=True)
    one = _run([python, "-m", "backend", *common, "--out", str(args.work / "single.tif"),
                "--cache-dir", str(args.work / "cache_single")], "one process")
    many = _run([*launcher, "--standalone", "--nproc-per-node", str(args.ranks), "-m", "backend", *common,
                 "--out", str(args.work / "ranks.tif"), "--cache-dir", str(args.work / "cache_ranks")],
                "torchrun")
    with rasterio.open(args.work / "single.tif") as a, rasterio.open(args.work / "ranks.tif") as b:
        x, y = a.read(), b.read()
    with rasterio.open(args.work / "single_pca.tif") as a, rasterio.open(args.work / "ranks_pca.tif") as b:
        preview_equal = bool(np.array_equal(a.read(), b.read()))
    valid = ~np.isnan(x)
    rows = [{"run": name, "ranks": ranks, "patches": s["patches"], "encode_s": s["seconds"],
             "total_s": s["total_seconds"], "wall_s": s["wall_s"], "patches_per_s": s["patches_per_second"]}
            for name, ranks, s in (("one process", 1, one), ("torchrun", args.ranks, many))]
    stats = {"runs": rows, "device": one.get("device"), "raster_px": args.side, "model": args.size,
             "window": args.window, "batch_size": args.batch_size,
             "nan_masks_equal": bool(np.array_equal(valid, ~np.isnan(y))),
             "max_abs_diff": float(np.abs(x[valid].astype(np.float64) - y[valid]).max(initial=0)),
             "bitwise_equal": bool(np.array_equal(x, y, equal_nan=True)), "preview_equal": preview_equal,
             "speedup_total": round(one["total_seconds"] / max(many["total_seconds"], 1e-9), 2),
             "speedup_wall": round(one["wall_s"] / max(many["wall_s"], 1e-9), 2)}
    print("| run | ranks | patches | encode s | total s | wall s | patches/s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    print(json.dumps({"event": "result", "outputs": {}, "stats": stats}))
    return 0 if stats["nan_masks_equal"] and stats["max_abs_diff"] <= 1e-6 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
