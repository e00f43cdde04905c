#!/usr/bin/env bash
# CI entry for the tests against a real SLURM cluster (tests/test_slurm_cluster.py): starts a one-node
# cluster (scripts/slurm_test_cluster.sh) with an accounting database, runs the tests (and once the real
# workflow on a tiny model), then without accounting and runs them again, and stops the cluster.
# Needs root (the daemons, and apt-get to install them once); elsewhere it says so and does nothing.
# SKIP_SLURM=1 skips it. Usage: bash scripts/test_slurm.sh [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${SKIP_SLURM:-0}" == 1 ]]; then
  echo "SLURM tests skipped (SKIP_SLURM=1)"
  exit 0
fi
if [[ $EUID -ne 0 ]] || ! { command -v apt-get || command -v slurmctld; } > /dev/null; then
  echo "SLURM tests skipped: starting a test cluster needs root and apt-get (or SLURM installed)"
  exit 0
fi
export PYTHONHASHSEED=0 PYTHONPATH="$ROOT/workflow${PYTHONPATH:+:$PYTHONPATH}"
trap 'bash scripts/slurm_test_cluster.sh stop' EXIT
for mode in accounting no-accounting; do
  t0=$SECONDS
  bash scripts/slurm_test_cluster.sh start "--$mode"
  t1=$SECONDS
  demo=0
  [[ $mode == accounting ]] && demo=1
  MOE_SLURM_DEMO=$demo .venv/bin/python -m pytest -q -m slurm tests/test_slurm_cluster.py "$@"
  echo "SLURM tests ($mode): cluster up in $((t1 - t0)) s, tests $((SECONDS - t1)) s"
done
