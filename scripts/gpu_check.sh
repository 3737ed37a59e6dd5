#!/usr/bin/env bash
# One prepared GPU check: every GPU test and benchmark of the project, all figures in one file.
#
#   bash scripts/gpu_check.sh OUTDIR              # CUDA machine: about 6-8 minutes on one H100/H200
#   bash scripts/gpu_check.sh --dry-run OUTDIR    # (or CPU_SMOKE=1) the same steps, tiny sizes, CPU, gloo
#
# Steps (each with its own timeout; a failed or timed-out step is reported and the next one runs):
#   env        nvidia-smi and `python -m backend version`
#   pytest     every GPU test: pytest -m gpu tests/backend (bf16 autocast + FlexAttention, ...)
#   encoder    bench encoder --device cuda: ours (bf16 autocast; FlexAttention from 2048 tokens) vs the
#              published maths, tiles/s, peak memory, max difference, MFU of inference
#   train      bench train --device cuda: a CROMA-base pretraining step, samples/s and MFU
#   kmeans     bench kmeans --device cuda: torch Lloyd k-means on the GPU
#   inference  bench inference --device cuda: embed major-tom-core end to end (needs the shared data)
#   memory     scripts/memory_guard_check.py: the memory guard's estimate vs torch.cuda.max_memory_allocated
#   nccl       scripts/embed_ranks_check.py: torchrun --nproc-per-node $(nvidia-smi -L | wc -l) -m backend
#              embed (NCCL) on a 2048 px raster vs one process: patches/s, max difference, bitwise equality
#
# Output: OUTDIR/figures.md (a summary table, then per step its command, status, seconds and figures),
# OUTDIR/logs/<step>.{out,err}. Exit status 0 when every step passed, 1 otherwise.
# Installs nothing. Python: $PYTHON if set, else the repository's .venv, else python3; on CUDA the first
# of .venv/python3 whose torch sees a GPU (a CPU-only .venv is passed over, with a note in the figures).
# Data: $TERRAPROBE_DATA, ../shared/data or ./shared/data; without it the NCCL step embeds a synthetic
# Sentinel-2-like raster and the inference step is skipped. Budget: $GPU_CHECK_BUDGET seconds (480).
set -u

DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
if [[ "${CPU_SMOKE:-0}" == "1" ]]; then DRY=1; fi
OUT="${1:-${OUT:-gpu-check}}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
mkdir -p "$OUT/logs" "$OUT/work" || exit 2
OUT="$(cd "$OUT" && pwd)"
FIGURES="$OUT/figures.md"
PY="${PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3)"
PY_NOTE=""
if [[ -z "${PYTHON:-}" ]] && (( ! DRY )) && \
        ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    for other in "$(command -v python3)" "$(command -v python)"; do
        if [[ -n "$other" ]] && "$other" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
                2>/dev/null; then
            PY_NOTE="$PY has no CUDA torch: using $other"; PY="$other"; break
        fi
    done
fi
BUDGET="${GPU_CHECK_BUDGET:-480}"
START=$(date +%s)
DEADLINE=$((START + BUDGET))
for candidate in "${TERRAPROBE_DATA:-}" "$REPO/../shared/data" "$REPO/shared/data"; do
    if [[ -n "$candidate" && -d "$candidate" ]]; then DATA="$(cd "$candidate" && pwd)"; break; fi
done
DATA="${DATA:-}"
export TERRAPROBE_CACHE_DIR="$OUT/work/cache"

if (( DRY )); then
    GPUS=2; MODE="CPU smoke (--dry-run): tiny sizes, gloo"
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
else
    GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    (( GPUS > 0 )) || GPUS=1
    MODE="CUDA, $GPUS GPU(s)"
fi

declare -a SUMMARY=()
FAILED=0

# Turn a step's stdout (JSON events) and stderr tables into Markdown figures.
figures() {
    "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
out, err = sys.argv[1], sys.argv[2]
results, tables = [], []
SUMMARY_WORDS = (" passed", " failed", " skipped", " deselected", " error")
for path in (out, err):
    for line in open(path, errors="replace"):
        line = line.rstrip()
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "result":
                results.append(event.get("stats", {}))
        elif line.startswith("|") or line.startswith("memory guard") or (
                any(w in line for w in SUMMARY_WORDS) and " in " in line and len(line) < 200):
            tables.append(line)
for stats in results:
    for key, value in stats.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            keys = list(dict.fromkeys(k for v in value for k in v))
            print(f"- {key}:\n")
            print("  | " + " | ".join(keys) + " |")
            print("  |" + "---|" * len(keys))
            for v in value:
                cells = [f"{v.get(k):.4g}" if isinstance(v.get(k), float) else str(v.get(k, "")) for k in keys]
                print("  | " + " | ".join(cells) + " |")
            print()
        else:
            text = f"{value:.4g}" if isinstance(value, float) else json.dumps(value, default=str)
            print(f"- {key}: {text[:400]}")
if results:  # the tables a command prints repeat its result's figures
    tables = [line for line in tables if not line.startswith("|")]
if tables:
    print("\n```\n" + "\n".join(tables[-40:]) + "\n```")
PYEOF
}

# step NAME TIMEOUT COMMAND...: run with a timeout (never past the budget), record status and figures.
step() {
    local name=$1 limit=$2; shift 2
    local now remaining began rc status seconds
    now=$(date +%s); remaining=$((DEADLINE - now))
    {
        echo; echo "## $name"; echo
        echo '```'; echo "$*"; echo '```'
    } >> "$FIGURES.steps"
    if (( remaining < 15 )); then
        SUMMARY+=("| $name | skipped (budget spent) | 0 |"); FAILED=1
        echo "status: **skipped** (the ${BUDGET} s budget is spent)" >> "$FIGURES.steps"
        return
    fi
    (( limit > remaining )) && limit=$remaining
    echo "[$(date +%T)] $name (timeout ${limit}s): $*" >&2
    began=$(date +%s%N)
    timeout --kill-after=10 "$limit" "$@" > "$OUT/logs/$name.out" 2> "$OUT/logs/$name.err"
    rc=$?
    seconds=$(( ($(date +%s%N) - began) / 1000000 ))
    seconds="$((seconds / 1000)).$(( (seconds % 1000) / 100 ))"
    if (( rc == 0 )); then status=ok
    elif (( rc == 124 || rc == 137 )); then status="TIMEOUT after ${limit}s"; FAILED=1
    else status="FAILED (exit $rc)"; FAILED=1
    fi
    SUMMARY+=("| $name | $status | $seconds |")
    {
        echo "status: **$status**, ${seconds} s"; echo
        figures "$OUT/logs/$name.out" "$OUT/logs/$name.err"
        if [[ "$status" != ok ]]; then
            echo; echo "last lines of the log:"; echo '```'; tail -n 15 "$OUT/logs/$name.err"; echo '```'
        fi
    } >> "$FIGURES.steps"
    echo "[$(date +%T)] $name: $status (${seconds}s)" >&2
}

skip() {
    SUMMARY+=("| $1 | skipped: $2 | 0 |")
    { echo; echo "## $1"; echo; echo "skipped: $2"; } >> "$FIGURES.steps"
}

: > "$FIGURES.steps"

# -- env ---------------------------------------------------------------------------------------------
if (( DRY )); then
    step env 30 "$PY" -m backend version --events json
else
    step env 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 1>&2; \
        \"$PY\" -m backend version --events json"
fi

# -- GPU tests ---------------------------------------------------------------------------------------
step pytest 90 "$PY" -m pytest -q -m gpu tests/backend -p no:cacheprovider

# -- encoder: bf16 autocast and FlexAttention vs the published maths -----------------------------------
if (( DRY )); then
    step encoder 90 "$PY" -m backend bench encoder --device cpu --sizes 32 48 --repeats 1 --loop-rows 4 \
        --events json
else
    step encoder 90 "$PY" -m backend bench encoder --device cuda --sizes 120 248 504 --batch 4 --repeats 5 \
        --loop-rows 32 --events json
fi

# -- pretraining step MFU ----------------------------------------------------------------------------
if (( DRY )); then
    step train 90 "$PY" -m backend bench train --device cpu --model-size tiny --crop 32 --batch-size 2 \
        --steps 1 --warmup-steps 1 --events json
else
    step train 60 "$PY" -m backend bench train --device cuda --model-size base --crop 120 --batch-size 64 \
        --steps 8 --warmup-steps 3 --events json
fi

# -- k-means on CUDA ---------------------------------------------------------------------------------
if (( DRY )); then
    step kmeans 60 "$PY" -m backend bench kmeans --device cpu --n 4000 --dim 16 --k 4 --iters 3 \
        --init-sample 500 --batch-size 512 --events json
else
    step kmeans 45 "$PY" -m backend bench kmeans --device cuda --n 1000000 --dim 768 --k 16 --iters 10 \
        --skip-sklearn --events json
fi

# -- embedding end to end (major-tom-core) -------------------------------------------------------------
if [[ -n "$DATA" && -d "$DATA/major-tom-core" ]]; then
    if (( DRY )); then
        step inference 90 "$PY" -m backend bench inference --device cpu --size tiny --crop 128 \
            --data "$DATA/major-tom-core" --work-dir "$OUT/work" --events json
    else
        step inference 60 "$PY" -m backend bench inference --device cuda --size base --crop 1068 \
            --batch-size 16 --data "$DATA/major-tom-core" --work-dir "$OUT/work" --events json
    fi
else
    skip inference "no major-tom-core under \$TERRAPROBE_DATA, ../shared/data or ./shared/data"
fi

# -- memory guard estimate vs the allocator's peak ---------------------------------------------------------
if (( DRY )); then
    step memory 60 "$PY" scripts/memory_guard_check.py --device cpu --size tiny --windows 64 --batch 2
else
    step memory 60 "$PY" scripts/memory_guard_check.py --device cuda --size base --windows 120 248 504 \
        --batch 8
fi

# -- NCCL embedding with the GPUs present vs one process -----------------------------------------------
if (( DRY )); then
    step nccl 120 "$PY" scripts/embed_ranks_check.py --work "$OUT/work/ranks" --device cpu --ranks "$GPUS" \
        --side 256 --size tiny --window 64 --batch-size 2 ${DATA:+--data "$DATA"}
else
    step nccl 100 "$PY" scripts/embed_ranks_check.py --work "$OUT/work/ranks" --device cuda --ranks "$GPUS" \
        --side 2048 --size base --window 248 --batch-size 16 ${DATA:+--data "$DATA"}
fi

# -- the figures file --------------------------------------------------------------------------------
{
    echo "# GPU check figures"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname), $MODE, commit $(git rev-parse --short HEAD 2>/dev/null)," \
         "$(( $(date +%s) - START )) s of a ${BUDGET} s budget, python $PY${PY_NOTE:+ ($PY_NOTE)}"
    echo
    echo "| step | status | seconds |"
    echo "|---|---|---|"
    printf '%s\n' "${SUMMARY[@]}"
    cat "$FIGURES.steps"
} > "$FIGURES"
rm -f "$FIGURES.steps"
echo "figures: $FIGURES" >&2
exit "$FAILED"
