#!/usr/bin/env bash
# Create .venv in the checkout and install the project with its test extras.
# torch goes first, pinned: `torch==2.13.0` is a local CPU build here; any other torch request
# would pull gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.moe-routing-installed
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "setup: .venv is up to date"
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import torch, transformers, snakemake, moe_routing; print('setup: torch', torch.__version__, '| transformers', transformers.__version__)"
echo "$want" > "$stamp"
