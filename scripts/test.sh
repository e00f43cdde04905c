#!/usr/bin/env bash
# Set up and run the test suite (unit tests, workflow tests on a reduced demo, dry-runs of the
# paper DAGs), the SLURM profile on a real test cluster, then the vLLM parity test in its own
# environment (.venv-vllm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONHASHSEED=0
.venv/bin/python -m pytest -q -m "not vllm and not slurm" "$@"
# the SLURM profile on a real one-node cluster, with and without accounting (needs root; skipped elsewhere)
if [[ "${SKIP_SLURM:-0}" != 1 && -f scripts/test_slurm.sh ]]; then
  bash scripts/test_slurm.sh
fi
if [[ "${SKIP_VLLM:-0}" != 1 && -f scripts/test_vllm.sh ]]; then
  bash scripts/test_vllm.sh
fi
