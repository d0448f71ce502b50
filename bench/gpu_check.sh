#!/usr/bin/env bash
# One prepared GPU check for issue 16: fits in 8 minutes on one H100/H200 from a bare machine
# holding this repository; writes OUT/gpu_check.json (one JSON) and OUT/gpu_check.log.
#
#   bench/gpu_check.sh [--dry-run] [--out DIR] [--data SQUAD_DIR] [--only tests,train,...]
#
# Steps (bench/gpu_check.py has the details): the device tests (tests/train/test_speed_device.py
# with DENSESCALE_TEST_DEVICE=cuda), bert-base 200 steps bf16 (batch 128, 256 negatives, 32/180
# tokens) with pairs/s and MFU against the datasheet bf16 peak, torchrun --nproc_per_node 1 over
# NCCL, contrastive entropy on 10,000 SQuAD pairs (passages/s), and a 50-step CPU vs GPU loss
# curve from the same seed. --dry-run runs all of it on CPU with tiny shapes (tested by
# tests/bench/test_gpu_check.py).
#
# On the device machine (no network there): the image has torch/transformers/sentence-
# transformers; densescale's other needs travel as wheels in .whl/ (see
# /work/.library/device/README.md: pydantic, pydantic-core, annotated-types, typing-inspection,
# ir-measures, pytrec-eval-terrier, typer ...), installed here into /tmp/site when .whl/ exists.
# The data does not travel from ../shared: copy it into the repo first, e.g.
#   mkdir -p .gpucheck && cp -r ../shared/datasets/squad_v11 .gpucheck/ &&
#   echo /.gpucheck/ >> .git/info/exclude
# and run with carry [".gpucheck", ".whl"]: bench/gpu_check.sh --out $OUT --data .gpucheck/squad_v11
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
DRY=""
OUT_DIR="${OUT:-gpu_check_out}"
DATA="${DENSESCALE_DATA_DIR:-../shared/datasets}/squad_v11"
ONLY=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY="--dry-run" ;;
    --out) OUT_DIR="$2"; shift ;;
    --data) DATA="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    --tokenizer) EXTRA+=(--tokenizer "$2"); shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
: > "$LOG"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export DENSESCALE_CACHE_DIR="${DENSESCALE_CACHE_DIR:-$(mktemp -d)}"
{ echo "gpu_check $(date -u +%FT%TZ) python=$PY dry_run=${DRY:-no} data=$DATA";
  command -v nvidia-smi >/dev/null && nvidia-smi -L; } >>"$LOG" 2>&1
ARGS=(--out "$OUT_DIR" --data "$DATA" ${DRY:+"$DRY"} "${EXTRA[@]}")
[ -n "$ONLY" ] && ARGS+=(--only "$ONLY")
"$PY" bench/gpu_check.py "${ARGS[@]}" 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
