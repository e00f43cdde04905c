#!/usr/bin/env bash
# Set up and run the default workflow (the CPU demo): every table and figure under results/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
.venv/bin/snakemake --cores "${CORES:-$(nproc)}" "$@"
.venv/bin/snakemake --cores 1 --report results/report.html >/dev/null 2>&1 || echo "demo: report not written (see snakemake --report)"
echo "demo: finished in $(( $(date +%s) - start )) s; tables and figures under results/demo/, report at results/report.html"
