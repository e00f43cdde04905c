#!/usr/bin/env bash
# One prepared check for a GPU machine without network, in under 8 minutes:
#   1. a random-weight checkpoint with the layer shapes of Qwen3-30B-A3B (hidden 2048, 128 experts, top-8,
#      32 query heads x 128, 4 KV heads, expert width 768; byte-level vocabulary), LAYERS of its 48 layers
#      (default 12: ~7.5B parameters, 15 GB in bfloat16, so building, saving and loading it twice fits the
#      time; 48 layers are 61 GB and need ~4x as long);
#   2. benchmarks/bench_backends.py on both backends in bfloat16: tokens/s at batch 1 and at BATCH, with and
#      without capture, the ratios, and HF <-> vLLM routing parity of the prefill at bfloat16 tolerance (TOL);
#   3. the figures: printed, and in OUT/bench.json (benchmarks/estimate_cluster.py --bench reads it).
# Usage: bash benchmarks/gpu_check.sh [OUT]   (default OUT: results/gpu_check)
# Env: LAYERS=12 BATCH=256 PROMPTS=256 LOOP_PROMPTS=8 NEW_TOKENS=32 TOL=2e-2 PY=.venv-vllm/bin/python
#      TINY=1 runs the same steps on CPU with a tiny float32 checkpoint (checks the script, not a GPU).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${1:-results/gpu_check}"
PY="${PY:-.venv-vllm/bin/python}"
mkdir -p "$OUT"
export PYTHONPATH="$ROOT/workflow${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TQDM_DISABLE=1
export VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}"
start=$(date +%s)

if [[ "${TINY:-0}" == 1 ]]; then
    SHAPE="hidden=64, layers=${LAYERS:-2}, experts=8, top_k=2, heads=2, kv_heads=1, head_dim=32, moe_intermediate=32"
    BUILD="dtype='float32', device='cpu'"
    DEVICE=cpu DTYPE=float32 TOL="${TOL:-1e-4}"
    BATCH="${BATCH:-4}" PROMPTS="${PROMPTS:-4}" LOOP_PROMPTS="${LOOP_PROMPTS:-2}" NEW_TOKENS="${NEW_TOKENS:-8}"
    ENGINE=(--engine-arg max_model_len=512)
else
    SHAPE="hidden=2048, layers=${LAYERS:-12}, experts=128, top_k=8, heads=32, kv_heads=4, head_dim=128, moe_intermediate=768"
    BUILD="dtype='bfloat16', device='cuda'"
    DEVICE=cuda DTYPE=bfloat16 TOL="${TOL:-2e-2}"
    BATCH="${BATCH:-256}" PROMPTS="${PROMPTS:-256}" LOOP_PROMPTS="${LOOP_PROMPTS:-8}" NEW_TOKENS="${NEW_TOKENS:-32}"
    ENGINE=(--engine-arg max_model_len=1024 --engine-arg gpu_memory_utilization=0.85)
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi

echo "== building the checkpoint: qwen3_moe, $SHAPE"
"$PY" - <<PY
import time
from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint
t = time.perf_counter()
build_tiny_checkpoint("qwen3_moe", "$OUT/model", $SHAPE, seed=0, $BUILD)
print(f"built in {time.perf_counter() - t:.0f} s")
PY
du -sh "$OUT/model"

echo "== bench_backends: $PROMPTS prompts ($LOOP_PROMPTS at batch 1) x $NEW_TOKENS tokens, batch $BATCH, $DTYPE on $DEVICE"
rc=0
"$PY" benchmarks/bench_backends.py --model "$OUT/model" --device "$DEVICE" --dtype "$DTYPE" \
    --prompts "$PROMPTS" --loop-prompts "$LOOP_PROMPTS" --new-tokens "$NEW_TOKENS" --batch "$BATCH" --repeats 2 \
    --parity-tol "$TOL" --out "$OUT/bench.json" "${ENGINE[@]}" || rc=$?
echo "== gpu_check: $(( $(date +%s) - start )) s, exit $rc; figures in $OUT/bench.json"
exit $rc
