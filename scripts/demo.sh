#!/usr/bin/env bash
# One command demo: the bundled model on the bundled Sen1Floods11 S1+S2 chip.
# Writes GeoTIFFs + QML styles, a PNG contact sheet and a QGIS project into OUT (default demo-output/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(realpath -m "${1:-demo-output}")"
PY=.venv/bin/python
[[ -x $PY ]] || { echo "demo: run 'bash scripts/setup.sh' first" >&2; exit 1; }
DATA=resources/samples
S2=$DATA/Spain_7370579_S2Hand.tif
S1=$DATA/Spain_7370579_S1Hand.tif
SAMPLES=$DATA/sen1floods11_samples.geojson
mkdir -p "$OUT"
# Tiling: the model's default (galileo-nano: 64 px windows, the range it was pretrained on).
INPUTS=(--optical "$S2" --sar "$S1" --cache-dir "$OUT/cache")
# A flooded field in the north-east of the chip: "where else looks like this?"
POINT=(--point -0.7455 38.1175 --point-crs EPSG:4326)

step() { echo; echo "== $1"; }
step "embeddings (S1 + S2, joint encoder)"
$PY -m backend embed "${INPUTS[@]}" --out "$OUT/embeddings.tif" --preview-out "$OUT/embeddings_pca.tif"
step "k-means clusters"
$PY -m backend cluster "${INPUTS[@]}" --k 6 --seed 0 --out "$OUT/clusters.tif"
step "kNN labels from the sample polygons"
$PY -m backend classify "${INPUTS[@]}" --samples "$SAMPLES" --class-field class --out "$OUT/labels.tif"
step "segmentation head trained on the sample polygons"
$PY -m backend segment "${INPUTS[@]}" --samples "$SAMPLES" --class-field class \
  --out "$OUT/segmentation.tif" --head-out "$OUT/segmentation_head.safetensors"
step "similarity to a flooded field"
$PY -m backend similar "${INPUTS[@]}" "${POINT[@]}" --out "$OUT/similarity.tif"
step "contact sheet and QGIS project"
$PY -m backend contact-sheet --title "Terraprobe demo: Sen1Floods11 Spain_7370579, bundled model" \
  --panel "Sentinel-2 RGB=$S2:4,3,2" --panel "PCA of embeddings=$OUT/embeddings_pca.tif" \
  --panel "k-means (k=6)=$OUT/clusters.tif" --panel "kNN labels=$OUT/labels.tif" \
  --panel "segmentation=$OUT/segmentation.tif" --panel "similarity to a flooded field=$OUT/similarity.tif" \
  --out "$OUT/contact_sheet.png"
cp "$S2" "$S1" "$OUT/"
$PY scripts/make_qgis_project.py "$OUT/terraprobe_demo.qgz" \
  "similarity=$OUT/similarity.tif" "segmentation=$OUT/segmentation.tif" "kNN labels=$OUT/labels.tif" \
  "k-means clusters=$OUT/clusters.tif" "embedding PCA=$OUT/embeddings_pca.tif" \
  "Sentinel-1 VV/VH=$OUT/$(basename "$S1")" "Sentinel-2=$OUT/$(basename "$S2")" 2>/dev/null

echo
echo "demo outputs in $OUT:"
ls -1 "$OUT" | grep -v '^cache$' | sed 's/^/  /'
echo "open $OUT/contact_sheet.png, or $OUT/terraprobe_demo.qgz in QGIS"
