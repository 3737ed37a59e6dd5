"""Score galileo-nano against croma-small, band statistics and random weights (the README's Models table).

Runs, with the project's own commands and protocols (5-fold stratified CV for patches, 4-fold spatial
block CV for scenes, seed 0; ``python -m backend evaluate``):

* EuroSAT-MS patches: ``evaluate eurosat-ms --model galileo-nano`` (band statistics, random CROMA
  weights, croma-small, galileo-nano) and ``--no-bundled`` (random Galileo weights);
* Sen1Floods11 water (S2 chip + LabelHand) and the rstoolbox-sen2 polygons: ``evaluate --scene`` the
  same way (``--window WINDOW``);
* EuroSAT-MS simulated as Landsat 8/9 OLI (``scripts/eval_landsat_model.simulate_folder``: the 7 OLI
  bands, no spectral fill): Galileo takes OLI B2-B7 as its S2_RGB, S2_NIR_10m + S2_NIR_20m (B5) and
  S2_SWIR groups (red edge masked; NDVI masked as in ``evaluate``'s patch recipe); features and folds as
  ``evaluate``'s patch mode.

Everything goes to WORK (default ``runs/eval_galileo``): one JSON per run and ``summary.json``.

Usage: .venv/bin/python scripts/eval_galileo.py [--data ../shared/data] [--work DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.paths import MODELS_DIR  # noqa: E402

GALILEO = MODELS_DIR / "galileo-nano.safetensors"
#: Galileo's Sentinel-2 bands fed from the simulated OLI bands (1-based: B2 B3 B4 B5 B5 B6 B7).
OLI_TO_GALILEO = {"B02": 2, "B03": 3, "B04": 4, "B08": 5, "B8A": 5, "B11": 6, "B12": 7}


def evaluate(*args: str) -> dict:
    """Run ``python -m backend evaluate ARGS`` (``--out`` among them); returns its JSON report."""
    subprocess.run([sys.executable, "-m", "backend", "evaluate", *args], cwd=REPO, check=True)
    out = args[args.index("--out") + 1]
    return json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))


def landsat_rows(eurosat: Path, work: Path, seed: int = 0) -> dict:
    """kNN / probe / RF of Galileo (pretrained and random) on EuroSAT simulated as OLI (7 bands)."""
    from backend.evaluation.metrics import cross_validate
    from backend.evaluation.patches import extract_features, scan_patch_folder
    from backend.inference.galileo_inputs import (
        DEFAULT_MONTH,
        GalileoChannels,
        GalileoEmbedder,
        normalise_optical,
    )
    from backend.inference.model import model_config
    from backend.jobs.evaluate import _galileo_encoder

    sys.path.insert(0, str(REPO / "scripts"))
    from eval_landsat_model import simulate_folder

    oli_dir, _ = simulate_folder(eurosat, work / "landsat")
    folder = scan_patch_folder(oli_dir)
    channels = GalileoChannels(tuple(OLI_TO_GALILEO), False, DEFAULT_MONTH, "evaluate", ndvi=False)
    rows = {}
    for label, random_init in (("galileo-nano", False), ("random weights (galileo-nano architecture)", True)):
        encoder = _galileo_encoder(GALILEO, random_init, seed)
        embedder = GalileoEmbedder(encoder, model_config(GALILEO), channels, each_patch_alone=False)

        @torch.inference_mode()
        def featurize(batch: np.ndarray, embedder: GalileoEmbedder = embedder) -> np.ndarray:
            optical = normalise_optical(embedder.config, tuple(OLI_TO_GALILEO), np.ascontiguousarray(batch))
            out = embedder(optical=torch.from_numpy(optical))
            return next(iter(out.values())).float().mean(dim=(1, 2)).numpy()

        features = extract_features(folder, list(OLI_TO_GALILEO.values()), featurize, 32, lambda n: None)
        rows[label] = cross_validate(features, folder.labels, 5, seed, 20).summary()
        print(f"landsat {label}: kNN {rows[label]['knn_accuracy']['mean']:.3f}", flush=True)
    return {"groups": channels.used, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--work", default=str(REPO / "runs" / "eval_galileo"))
    parser.add_argument("--window", default="64", help="encoder window of the scene runs (px)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="runs to do: eurosat, eurosat_random, floods, floods_random, rstoolbox, "
                             "rstoolbox_random, landsat (default: all)")
    args = parser.parse_args()
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    floods = ["--scene", str(data / "sen1floods11" / "Spain_7370579_S2Hand.tif"), "--labels",
              str(data / "sen1floods11" / "Spain_7370579_LabelHand.tif"), "--window", args.window]
    rstoolbox = ["--scene", str(data / "rstoolbox-sen2" / "sen2.tif"), "--samples",
                 str(data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"), "--neighbors", "5",
                 "--window", args.window]
    runs = {
        "eurosat": [str(data / "eurosat-ms"), "--model", "galileo-nano"],
        "eurosat_random": [str(data / "eurosat-ms"), "--model", "galileo-nano", "--no-bundled"],
        "floods": [*floods, "--model", "galileo-nano"],
        "floods_random": [*floods, "--model", "galileo-nano", "--no-bundled"],
        "rstoolbox": [*rstoolbox, "--model", "galileo-nano"],
        "rstoolbox_random": [*rstoolbox, "--model", "galileo-nano", "--no-bundled"],
    }
    summary_path = work / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name, command in runs.items():
        if args.only is None or name in args.only:
            summary[name] = evaluate(*command, "--out", str(work / name))["rows"]
            summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.only is None or "landsat" in args.only:
        summary["landsat"] = landsat_rows(data / "eurosat-ms", work)
        summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
