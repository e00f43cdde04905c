#!/usr/bin/env bash
# Set up and run the test suite: the full demo (the README must quote its summary: tests/test_readme.py),
# unit tests, the reduced demo workflow (.test/config.yaml, once more under AVX2 kernels), dry-runs of
# the paper DAGs; then the SLURM profile on a real one-node cluster (root only), the vLLM parity tests
# and the rehearsals of both paper configs, the last two in .venv-vllm (vLLM's CPU build).
# SKIP_SLURM=1, SKIP_VLLM=1 and SKIP_REHEARSAL=1 leave those parts out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONHASHSEED=0
start=$(date +%s)
.venv/bin/snakemake --cores "${CORES:-$(nproc)}" --quiet rules
echo "demo: finished in $(( $(date +%s) - start )) s"
export MOE_ROUTING_DEMO_RAN=1  # tests/test_readme.py: the README must quote results/demo/summary.md
.venv/bin/python -m pytest -q -m "not vllm and not slurm and not rehearsal" "$@"
bash scripts/test_slurm.sh
if [[ "${SKIP_VLLM:-0}" != 1 ]]; then
  bash scripts/test_vllm.sh
fi
bash scripts/test_rehearsal.sh
