#!/usr/bin/env bash
# Reproduces the bundled default model resources/models/terraprobe-croma-small.* :
# a small CROMA (radar + optical + joint) pretrained with our own `pretrain --objective croma` on the
# paired S1/S2 imagery in ../shared/data (SSL4EO-S12, BigEarthNet pairs, the Sen1Floods11 chip).
# EuroSAT-MS is NOT used: it is held out for `evaluate`. The weights ship in float16 (half the size).
# Usage: bash scripts/train_bundled_model.sh [DATA_DIR] [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$(realpath "${1:-../shared/data}")"
RUN="${2:-runs/bundled}"
STEPS="${STEPS:-1200}"
PY=.venv/bin/python

$PY -m backend pretrain --objective croma \
  --data "$DATA/ssl4eo-s12" "$DATA/bigearthnet-v1" \
         "$DATA/sen1floods11/Spain_7370579_S1Hand.tif,$DATA/sen1floods11/Spain_7370579_S2Hand.tif" \
  --model-size custom --dim 192 --heads 8 --depth 4 \
  --crop 64 --batch-size 32 --steps "$STEPS" --lr 5e-4 --warmup 100 --seed 0 --workers 1 \
  --save-every 200 --out "$RUN"

$PY - "$RUN" "$STEPS" <<'PY'
import sys

import torch

from backend.models import load_encoder, save_model
from backend.paths import BUNDLED_MODEL

run, steps = sys.argv[1], sys.argv[2]
model = load_encoder(f"{run}/model.safetensors")
model.config.name = "terraprobe-croma-small"
model.config.provenance["reproduce"] = f"STEPS={steps} bash scripts/train_bundled_model.sh"
model.config.provenance["storage"] = "float16 weights, cast to float32 on load"
weights, config = save_model(model, BUNDLED_MODEL, storage_dtype=torch.float16)
print(f"bundled model: {weights} ({weights.stat().st_size / 1e6:.1f} MB) + {config}")
PY
