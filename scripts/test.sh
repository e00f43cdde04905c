#!/usr/bin/env bash
# Set up and run the test suite: unit tests, the reduced demo workflow (.test/config.yaml), dry-runs of
# the paper DAGs; then the SLURM profile on a real one-node cluster (root only), the vLLM parity tests
# and the rehearsals of both paper configs, the last two in .venv-vllm (vLLM's CPU build).
# SKIP_SLURM=1, SKIP_VLLM=1 and SKIP_REHEARSAL=1 leave those parts out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONHASHSEED=0
.venv/bin/python -m pytest -q -m "not vllm and not slurm and not rehearsal" "$@"
bash scripts/test_slurm.sh
if [[ "${SKIP_VLLM:-0}" != 1 ]]; then
  bash scripts/test_vllm.sh
fi
bash scripts/test_rehearsal.sh
