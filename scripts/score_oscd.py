"""Score ``python -m backend change`` on the OSCD development cities against the raw-band baseline.

For each city of ``shared/data/oscd-change`` (Sentinel-2 Level-1C, 13 single-band files per date):

1. stack the bands on the date's 10 m grid (20 m and 60 m bands resampled bilinearly), named
   ``B01`` ... ``B12``; the after date's stack keeps its own grid (2-4 px smaller in two cities) and
   ``change`` warps it onto the before grid;
2. run ``python -m backend change`` through the real CLI with ``--method`` fused (the default for
   rasters), embedding and spectral, and read its magnitude and mask;
3. score against ``<city>-cm.tif`` (2 = change): pixel precision / recall / F1 of the mask, average
   precision (AP) of the magnitude, and the same at patch level (8 x 8 px: truth = at least half of
   the patch changed; score = the patch's mean magnitude; predicted = at least half of its pixels
   in the mask); the changed share of the valid area;
4. the raw-band baseline from the data folder's ``raw_band_baseline.py`` (imported, not copied);
5. leave-one-city-out: the fused magnitude recomputed from the spectral and embedding runs for
   each embedding weight of ``WEIGHTS`` and threshold rule of ``RULES``; the pair with the best mean
   F1 on three cities is scored on the fourth.

Prints a Markdown table (``docs/change_detection.md`` quotes it) and writes ``--json``.

Usage: .venv/bin/python scripts/score_oscd.py [--data DIR] [--model NAME] [--work DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "oscd-change"
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
METHODS = ("fused", "embedding", "spectral")
WEIGHTS = (0.0, 0.125, 0.25, 0.5, 1.0)
RULES = ("otsu", 4, 5, 6, 7)
"""Threshold rules of the leave-one-city-out sweep: Otsu, or that many robust sd above the median."""
PATCH = 8
LABELS = {"raw bands (baseline)": "raw bands, Otsu (baseline)", "fused": "**Terraprobe default** (fused)",
          "embedding": "embedding only", "spectral": "spectral only (CVA of the model's bands)"}


def baseline_module(data: Path) -> Any:
    """The data folder's ``raw_band_baseline.py`` as a module (its Otsu, P/R/F1, AP and city scores)."""
    spec = importlib.util.spec_from_file_location("raw_band_baseline", data / "raw_band_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stack_city(city_dir: Path, date_dir: str, out: Path, window: Window | None = None) -> Path:
    """The 13 bands of one date on its 10 m grid (``window`` of it, optional) as a named GeoTIFF stack."""
    (reference,) = glob.glob(str(city_dir / date_dir / "*_B02.tif"))
    with rasterio.open(reference) as ref:
        window = window or Window(0, 0, ref.width, ref.height)
        full = (ref.height, ref.width)
        profile = dict(ref.profile, count=len(BANDS), width=int(window.width), height=int(window.height),
                       transform=ref.window_transform(window), compress="deflate")
    rows = slice(int(window.row_off), int(window.row_off + window.height))
    cols = slice(int(window.col_off), int(window.col_off + window.width))
    with rasterio.open(out, "w", **profile) as dst:
        for index, band in enumerate(BANDS, 1):
            (path,) = glob.glob(str(city_dir / date_dir / f"*_{band}.tif"))
            with rasterio.open(path) as src:  # coarser bands: bilinear onto the 10 m grid
                data = src.read(1, out_shape=full, resampling=Resampling.bilinear)
            dst.write(data[rows, cols], index)
            dst.set_band_description(index, band)
    return out


def change_map_truth(city_dir: Path, window: Window | None = None) -> np.ndarray:
    """The city's reference change (``cm == 2``) on the date-1 10 m grid (``window`` of it)."""
    with warnings.catch_warnings():  # the change map has no georeference
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(city_dir / f"{city_dir.name}-cm.tif") as src:
            return src.read(1, window=window) == 2


def run_change(before: Path, after: Path, out: Path, method: str, model: str | None,
               cache: Path) -> dict[str, Any]:
    """``python -m backend change`` through the CLI; the result event (outputs, stats) and warnings."""
    command = [sys.executable, "-m", "backend", "change", "--before-optical", str(before),
               "--after-optical", str(after), "--method", method, "--out", str(out), "--events", "json",
               "--cache-dir", str(cache)]
    if model:
        command += ["--model", model]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        raise SystemExit(f"error: change failed ({proc.returncode}): "
                         f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    result = next(e for e in events if e.get("event") == "result")
    result["warnings"] = [e["message"] for e in events if e.get("event") == "warning"]
    return result


def on_pixels(path: str, shape: tuple[int, int]) -> np.ndarray:
    """A result raster on the pixel grid of ``shape`` (patch-level rasters repeated onto their pixels)."""
    with rasterio.open(path) as src:
        data = src.read(1)
    if data.shape != shape:
        data = np.repeat(np.repeat(data, PATCH, axis=0), PATCH, axis=1)[:shape[0], :shape[1]]
    return data


def pooled(values: np.ndarray) -> np.ndarray:
    """Mean over 8 x 8 px patches (edge patches over their pixels inside the raster; NaN ignored)."""
    rows, cols = -(-values.shape[0] // PATCH), -(-values.shape[1] // PATCH)
    padded = np.full((rows * PATCH, cols * PATCH), np.nan)
    padded[:values.shape[0], :values.shape[1]] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(padded.reshape(rows, PATCH, cols, PATCH), axis=(1, 3))


def figures(base: Any, score: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pixel and patch P/R/F1 of ``predicted``, AP of ``score`` (NaN = lowest), changed share."""
    score = np.where(np.isfinite(score), score, -np.inf)
    p, r, f = base.prf(predicted.ravel(), truth.ravel())
    _, _, ap = base.curve_stats(score.ravel(), truth.ravel())
    patch_truth = pooled(truth.astype(float)) >= 0.5
    patch_score = pooled(np.where(np.isfinite(score), score, np.nan))
    patch_score = np.where(np.isfinite(patch_score), patch_score, -np.inf)
    _, _, patch_f1 = base.prf((pooled(predicted.astype(float)) >= 0.5).ravel(), patch_truth.ravel())
    _, _, patch_ap = base.curve_stats(patch_score.ravel(), patch_truth.ravel())
    return {"precision": p, "recall": r, "f1": f, "ap": ap, "patch_f1": patch_f1, "patch_ap": patch_ap,
            "changed_share": float(predicted.mean())}


def baseline_figures(base: Any, city_dir: Path) -> dict[str, float]:
    """The raw-band baseline of the data folder (Otsu on |z-scored B02 B03 B04 B08 difference|)."""
    _, score, truth = base.city_scores(str(city_dir))
    shape = change_map_truth(city_dir).shape
    score = score.reshape(shape)
    return figures(base, score, score > base.otsu_threshold(score.ravel()), truth.reshape(shape))


def raw_band_score(base: Any, before: Path, after: Path) -> np.ndarray:
    """The baseline's score on two stacks of :func:`stack_city` (one grid): the norm of the difference
    of B02 B03 B04 B08, each z-scored per date over the stack."""
    with rasterio.open(before) as first, rasterio.open(after) as second:
        bands = [BANDS.index(band) + 1 for band in base.BANDS]
        differences = [base.zscore(second.read(b).astype(np.float64))
                       - base.zscore(first.read(b).astype(np.float64)) for b in bands]
    return np.sqrt(np.sum(np.square(differences), axis=0))


def fused_magnitude(spectral: np.ndarray, embedding_patches: np.ndarray, weight: float) -> np.ndarray:
    """The fused magnitude of ``change`` for another embedding weight (from its spectral and
    embedding outputs)."""
    from backend.downstream.spectral_change import upsample_patches

    height, width = spectral.shape
    change = upsample_patches(embedding_patches.astype(np.float64), 0, range(height), width, PATCH)
    return spectral * np.power(np.maximum(change, 0) / np.nanmedian(embedding_patches), weight)


def threshold_mask(magnitude: np.ndarray, rule: str | float) -> np.ndarray:
    """The change mask of ``rule``: ``otsu`` (as ``change``) or a number of robust standard deviations
    above the median (``--threshold robust`` with that many)."""
    from backend.downstream.change import HISTOGRAM_BINS, otsu_threshold

    valid = magnitude[np.isfinite(magnitude)]
    if rule == "otsu":
        edges = np.linspace(valid.min(), valid.max(), HISTOGRAM_BINS + 1)
        threshold = otsu_threshold(np.histogram(valid, bins=edges)[0], edges)
    else:
        median = np.median(valid)
        threshold = median + float(rule) * 1.4826 * np.median(np.abs(valid - median))
    return np.isfinite(magnitude) & (magnitude > threshold)


def score_city(base: Any, city_dir: Path, work: Path, model: str | None, cache: Path) -> dict[str, Any]:
    """Every method's figures on one city, the baseline's, and what leave-one-city-out needs."""
    before = stack_city(city_dir, "imgs_1", work / f"{city_dir.name}_1.tif")
    after = stack_city(city_dir, "imgs_2", work / f"{city_dir.name}_2.tif")
    truth = change_map_truth(city_dir)
    rows: dict[str, Any] = {"raw bands (baseline)": baseline_figures(base, city_dir)}
    rasters = {}
    for method in METHODS:
        result = run_change(before, after, work / f"{city_dir.name}_{method}.tif", method, model, cache)
        magnitude = on_pixels(result["outputs"]["magnitude"], truth.shape)
        mask = on_pixels(result["outputs"]["mask"], truth.shape) == 2
        rows[method] = dict(figures(base, magnitude, mask, truth), threshold=result["stats"]["threshold"],
                            warned_share=any("of the valid area is marked" in w for w in result["warnings"]))
        with rasterio.open(result["outputs"]["magnitude"]) as src:
            rasters[method] = src.read(1)
    sweep = {}
    for weight in WEIGHTS:
        fused = fused_magnitude(rasters["spectral"], rasters["embedding"], weight)
        for rule in RULES:
            sweep[f"{weight:g}/{rule}"] = figures(base, fused, threshold_mask(fused, rule), truth)
    return {"rows": rows, "sweep": sweep}


def leave_one_out(scores: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each city: the embedding weight and threshold rule best on the other cities (mean F1), and
    their figures on this city."""
    held = {}
    for city in scores:
        others = [c for c in scores if c != city]
        choices = scores[city]["sweep"]
        best = max(choices, key=lambda k: np.mean([scores[c]["sweep"][k]["f1"] for c in others]))
        held[city] = dict(choices[best], choice=best)
    return held


def describe(choice: str) -> str:
    """``0.25/5`` -> ``weight 0.25, robust 5``."""
    weight, rule = choice.split("/")
    return f"weight {weight}, {'Otsu' if rule == 'otsu' else f'median + {rule} robust sd'}"


def cells(row: dict[str, float]) -> str:
    """One table row's figures."""
    return (f"{row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['ap']:.3f} "
            f"| {row['patch_f1']:.3f} | {row['patch_ap']:.3f} | {100 * row['changed_share']:.1f} %")


def table(scores: dict[str, Any], held: dict[str, dict[str, float]]) -> str:
    """The Markdown table of every city and method, and the leave-one-city-out rows."""
    lines = ["| city | method | P | R | pixel F1 | AP | patch F1 | patch AP | changed share |",
             "|---|---|---|---|---|---|---|---|---|"]
    for city, result in scores.items():
        for method, label in LABELS.items():
            row = result["rows"][method]
            lines.append(f"| {city} | {label} | {cells(row)} |")
        row = held[city]
        lines.append(f"| {city} | fused, {describe(row['choice'])} chosen on the others | {cells(row)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the oscd-change folder")
    parser.add_argument("--model", help="--model of change (default: the bundled model for Sentinel-2)")
    parser.add_argument("--cities", nargs="*", help="city folders to score (default: all)")
    parser.add_argument("--work", type=Path, help="folder for stacks and outputs (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write every figure as JSON here")
    args = parser.parse_args(argv)
    base = baseline_module(args.data)
    cities = sorted(Path(p).parent for p in glob.glob(str(args.data / "*" / "dates.txt")))
    if args.cities:
        cities = [c for c in cities if c.name in args.cities]
    with tempfile.TemporaryDirectory(prefix="score-oscd-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        scores = {city.name: score_city(base, city, work, args.model, work / "cache") for city in cities}
    held = leave_one_out(scores)
    print(table(scores, held))
    if args.json:
        summary = {"model": args.model or "default", "scores": scores, "held_out": held}
        args.json.write_text(json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
