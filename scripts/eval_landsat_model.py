"""Evaluate the X-STARS Landsat 8/9 OLI model on EuroSAT-MS simulated as OLI (docs/eval_landsat.*).

Same protocol as the README's EuroSAT table (``python -m backend evaluate`` folder mode: 5-fold
stratified CV, cosine kNN k=20, linear probe, k-means), on the held-out EuroSAT-MS patches turned
into Landsat 8/9 OLI exactly as the training data was (``backend.training.simulated_sensors.LANDSAT_OLI``:
S2 B01 B02 B03 B04 B8A B11 B12 -> OLI B1..B7, 3 x 3 block average = 30 m, bilinear back onto the
10 m grid). Values stay reflectance x 10000 (the scale of the models' statistics).

Two folders are written under WORK and evaluated with the ``evaluate`` command:

* ``oli/``: the 7 OLI bands. Rows: raw band statistics, random weights of the Landsat model's
  architecture, the X-STARS Landsat model, and its starting point (the bundled encoder with the
  patch embedding cut to the 7 bands, ``adapt_to_sensor``, before any X-STARS step).
* ``oli_filled/``: the same 7 bands filled out to the bundled model's 12 Sentinel-2 bands with the
  sensor presets' spectral fill (``match_by_wavelength("landsat-oli", ...)`` + ``mix_bands``, what
  ``--sensor landsat-oli`` does at inference). Rows: random weights, the bundled S2 model.

The rows are merged into OUT.json and a Markdown table (WORK/table.md, printed), which
docs/eval_landsat.md quotes with the verdict.

Usage: .venv/bin/python scripts/eval_landsat_model.py [EUROSAT_DIR] [--work DIR] [--out STEM]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.contract.sensors import match_by_wavelength  # noqa: E402
from backend.evaluation.patches import EUROSAT_TO_S2_BANDS, scan_patch_folder  # noqa: E402
from backend.io.sensor_bands import mix_bands  # noqa: E402
from backend.jobs.evaluate import markdown_table  # noqa: E402
from backend.models.config import S2_BANDS  # noqa: E402
from backend.paths import MODELS_DIR  # noqa: E402
from backend.training.simulated_sensors import LANDSAT_OLI  # noqa: E402

LANDSAT_MODEL = MODELS_DIR / "terraprobe-xstars-landsat.safetensors"


def simulate_folder(eurosat: Path, work: Path) -> tuple[Path, Path]:
    """Write the OLI and the spectrally filled copies of every EuroSAT patch; return both folders."""
    folder = scan_patch_folder(eurosat)
    s2_index = [EUROSAT_TO_S2_BANDS[S2_BANDS.index(band)] for band in LANDSAT_OLI.bands]
    plan = match_by_wavelength("landsat-oli", [f"SR_{b}" for b in LANDSAT_OLI.native_bands], S2_BANDS)
    matrix = np.asarray(plan.matrix(), dtype=np.float32)
    assert plan.file_bands == list(range(1, 8)), plan.file_bands
    oli_dir, filled_dir = work / "oli", work / "oli_filled"
    for path in folder.files:
        with rasterio.open(path) as src:
            s2 = src.read(s2_index).astype(np.float32)
            profile = {**src.profile, "dtype": "float32", "nodata": None}
        oli = LANDSAT_OLI.simulate(torch.from_numpy(s2)[None], LANDSAT_OLI.bands, clamp=False)[0].numpy()
        filled = mix_bands(matrix, oli)
        for root, array, names in ((oli_dir, oli, [f"OLI {b}" for b in LANDSAT_OLI.native_bands]),
                                   (filled_dir, filled, list(S2_BANDS))):
            target = root / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(target, "w", **{**profile, "count": len(array)}) as dst:
                dst.write(array)
                for index, name in enumerate(names, start=1):
                    dst.set_band_description(index, name)
    return oli_dir, filled_dir


def starting_point(work: Path) -> Path:
    """Save the continual run's step-0 student: the bundled encoder cut to the OLI bands."""
    from backend.models import load_encoder, save_model
    from backend.paths import BUNDLED_MODEL
    from backend.training.simulated_sensors import adapt_to_sensor

    model = adapt_to_sensor(load_encoder(BUNDLED_MODEL), LANDSAT_OLI)
    return save_model(model, work / "xstars-landsat-step0")[0]


def evaluate(command: list[str]) -> dict:
    """Run ``python -m backend evaluate ...`` and return its JSON report."""
    subprocess.run([sys.executable, "-m", "backend", "evaluate", *command], cwd=REPO, check=True)
    out = command[command.index("--out") + 1]
    return json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eurosat", nargs="?", default=str(REPO.parent / "shared" / "data" / "eurosat-ms"))
    parser.add_argument("--work", default=str(REPO / "runs" / "eval_landsat"))
    parser.add_argument("--out", default=str(REPO / "docs" / "eval_landsat"))
    parser.add_argument("--landsat-model", default=str(LANDSAT_MODEL), help="the adapted model to score")
    args = parser.parse_args()
    work = Path(args.work)
    oli_dir, filled_dir = simulate_folder(Path(args.eurosat), work)
    step0 = starting_point(work)
    commands = {
        "oli": [str(oli_dir), "--bands", "1,2,3,4,5,6,7", "--model", args.landsat_model,
                "--model", str(step0), "--no-bundled", "--out", str(work / "eval_oli")],
        "filled": [str(filled_dir), "--out", str(work / "eval_filled")],
    }
    oli = evaluate(commands["oli"])
    filled = evaluate(commands["filled"])
    rows = {}
    for label, row in oli["rows"].items():
        if label.startswith("band statistics"):
            rows["(c) band statistics (mean, std) of the 7 OLI bands"] = row
        elif label.startswith("random weights"):
            rows["(d) random weights (Landsat model architecture, 7 OLI bands)"] = row
    for label, row in filled["rows"].items():
        if label.startswith("random weights"):
            rows["(d') random weights (bundled architecture, 12 bands by spectral fill)"] = row
        elif label.startswith("bundled"):
            rows["(b) bundled S2 model + spectral fill (terraprobe-croma-small)"] = row
    for label, row in oli["rows"].items():
        if label == f"model: {step0.name}":
            rows["(a0) its starting point: bundled encoder cut to the 7 OLI bands, no X-STARS step"] = row
    for label, row in oli["rows"].items():
        if label == f"model: {Path(args.landsat_model).name}":
            rows["(a) X-STARS Landsat model (terraprobe-xstars-landsat, 7 OLI bands)"] = row
    report = {**{k: oli[k] for k in ("patches", "classes", "folds", "seed", "neighbors")},
              "folder": str(Path(args.eurosat).resolve()),
              "simulation": "EuroSAT-MS -> Landsat 8/9 OLI: " + ", ".join(
                  f"{n}<-{b}" for n, b in zip(LANDSAT_OLI.native_bands, LANDSAT_OLI.bands))
                  + "; 3x3 block average (30 m), bilinear back to the 10 m grid; reflectance x 10000",
              "spectral_fill": plan_text(),
              "commands": {k: "python -m backend evaluate " + " ".join(v) for k, v in commands.items()},
              "rows": rows}
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (work / "table.md").write_text(markdown_table(report), encoding="utf-8")    # pasted into OUT.md
    print(markdown_table(report))


def plan_text() -> str:
    """The spectral fill used for row (b), in words."""
    plan = match_by_wavelength("landsat-oli", [f"SR_{b}" for b in LANDSAT_OLI.native_bands], S2_BANDS)
    return plan.describe()


if __name__ == "__main__":
    main()
