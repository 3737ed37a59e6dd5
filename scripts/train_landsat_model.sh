#!/usr/bin/env bash
# Reproduces resources/models/terraprobe-xstars-landsat.* : the bundled S2 model adapted to
# Landsat 8/9 OLI with continual X-STARS (`pretrain --objective xstars -O mode=continual
# -O sensor=landsat-oli`). The student (7 OLI bands, named as the S2 bands they come from:
# B01 B02 B03 B04 B8A B11 B12) starts from the bundled optical encoder; a frozen copy of the bundled
# model sees the Sentinel-2 image and MSAD aligns the student's tokens on simulated OLI (3x3 block
# average = 30 m, see backend/training/simulated_sensors.py) with it, plus DINO self-distillation on OLI views.
# Data: the S2 imagery the bundled model was pretrained on (SSL4EO-S12, BigEarthNet, the Sen1Floods11
# chip), normalised with the bundled model's own statistics. EuroSAT-MS is NOT used (held out).
# Usage: bash scripts/train_landsat_model.sh [DATA_DIR] [RUN_DIR]      (STEPS=400 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$(realpath "${1:-../shared/data}")"
RUN="${2:-runs/landsat}"
STEPS="${STEPS:-400}"
PY=.venv/bin/python
mkdir -p "$RUN"

# the bundled model's optical bands and statistics, so the frozen copy sees what it was trained on
$PY - "$RUN/data_config_in.json" <<'PY'
import json
import sys

from backend.paths import BUNDLED_MODEL

optical = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())["modalities"]["optical"]
config = {"modalities": {"optical": {k: optical[k] for k in ("bands", "mean", "std")}}}
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump(config, handle, indent=1)
PY

if [ -f "$RUN/state.pt" ]; then
  $PY -m backend pretrain --resume "$RUN" --steps "$STEPS"
else
  $PY -m backend pretrain --objective xstars --init resources/models/terraprobe-croma-small.safetensors \
    --data "$DATA/ssl4eo-s12" "$DATA/bigearthnet-v1" "$DATA/sen1floods11/Spain_7370579_S2Hand.tif" \
    --data-config "$RUN/data_config_in.json" --modalities optical \
    -O mode=continual -O sensor=landsat-oli -O msad_dim=512 \
    --crop 64 --batch-size 32 --steps "$STEPS" --lr 1e-4 --warmup 50 --seed 0 --workers 0 \
    --log-every 10 --save-every 100 --out "$RUN"
fi

$PY - "$RUN" "$STEPS" <<'PY'
import json
import sys

import torch

from backend.models import load_encoder, save_model
from backend.paths import BUNDLED_MODEL

run, steps = sys.argv[1], sys.argv[2]
model = load_encoder(f"{run}/model.safetensors")
model.config.name = "terraprobe-xstars-landsat"
model.config.sensor = "landsat-oli"
model.config.provenance["sensor"] = "landsat-oli (Landsat 8/9 OLI B1-B7, simulated from Sentinel-2)"
model.config.provenance["reproduce"] = f"STEPS={steps} bash scripts/train_landsat_model.sh"
model.config.provenance["storage"] = "float16 weights, cast to float32 on load"
target = BUNDLED_MODEL.with_name("terraprobe-xstars-landsat")
weights, config = save_model(model, target, storage_dtype=torch.float16)
data = json.loads(config.read_text(encoding="utf-8"))
assert data["sensor"] == "landsat-oli", data.get("sensor")
print(f"Landsat model: {weights} ({weights.stat().st_size / 1e6:.1f} MB) + {config}")
PY
