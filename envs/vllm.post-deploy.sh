#!/usr/bin/env bash
# Snakemake runs this in the new vLLM environment, from the workflow's directory: install this package
# (no dependencies: envs/vllm.yaml brought them; vLLM's pins stay untouched).
set -euo pipefail
python -m pip install --no-deps -e .
