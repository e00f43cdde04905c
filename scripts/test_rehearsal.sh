#!/usr/bin/env bash
# CI entry for the rehearsals (tests/test_rehearsal.py): both paper configs run for real on CPU with
# their overlays (config/rehearsal/*.yaml). The vLLM-served stand-ins need .venv-vllm (set up here).
# vLLM's one-rank engine runs in each job's own process (VLLM_ENABLE_V1_MULTIPROCESSING=0): the same
# capture code as its worker processes, half the start-up cost of a job; tests/test_vllm_parity.py
# covers the multiprocessing and tensor-parallel engines. SKIP_REHEARSAL=1 skips it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${SKIP_REHEARSAL:-0}" == 1 ]]; then
  echo "rehearsals skipped (SKIP_REHEARSAL=1)"
  exit 0
fi
bash scripts/setup_vllm.sh
export PYTHONHASHSEED=0 VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}"
exec .venv/bin/python -m pytest -q -s -m rehearsal tests/test_rehearsal.py "$@"
