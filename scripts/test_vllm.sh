#!/usr/bin/env bash
# CI entry for the vLLM tests (parity with transformers; the rehearsal stand-ins load and generate): set up
# .venv-vllm (idempotent), then run the vllm-marked tests in it.
# Usage: bash scripts/test_vllm.sh [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_vllm.sh
# vLLM's default engine (multiprocessing: router capture runs in its worker processes); short logs
export VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}"
exec .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_parity.py tests/test_stand_ins_vllm.py "$@"
