"""The rehearsals: both paper configs executed for real on CPU with their overlays
(config/rehearsal/*.yaml: tiny stand-ins of the same families, small mirrors of the datasets in their
published layouts, fewer languages, a shorter cap sweep), every rule type of the paper DAGs
included: the LLM judge, the vLLM backend, log-likelihood scoring, steering. Needs .venv-vllm
(scripts/setup_vllm.sh); scripts/test_rehearsal.sh runs this module."""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from workflow_helpers import REPO, copy_workflow, job_counts, snakemake

pytestmark = pytest.mark.rehearsal

XICI_TARGETS = ["results/qwen3/ablation_table.tsv", "results/qwen3/outcome_table.tsv", "results/qwen3/cap_sweep.tsv"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    vllm = REPO / ".venv-vllm" / "bin" / "python"
    if not vllm.exists():
        pytest.skip("the rehearsals need .venv-vllm (bash scripts/setup_vllm.sh)")
    root = copy_workflow(tmp_path_factory.mktemp("rehearsal"))
    os.symlink(REPO / ".venv-vllm", root / ".venv-vllm")
    return root


def rehearse(root: Path, name: str, *targets: str):
    start = time.monotonic()
    proc = snakemake(
        "-c2", *targets, "--configfile", f"config/{name}.yaml", f"config/rehearsal/{name}.yaml", cwd=root, timeout=2400
    )
    counts = job_counts(proc.stdout + proc.stderr)
    print(f"\nrehearsal of {name}: {time.monotonic() - start:.0f} s, jobs {counts}")
    return counts


def test_xici_paper_rehearsal_runs_every_rule(workdir):
    counts = rehearse(workdir, "xici-paper", *XICI_TARGETS)
    for rule in (
        "stand_in",
        "mirror",
        "prepare",
        "generate",
        "judge_llm",
        "xici",
        "outcome_table",
        "ablation_plan",
        "ablation_metrics",
        "ablation_table",
        "cap_sweep",
    ):
        assert counts.get(rule, 0) >= 1, rule
    for target in XICI_TARGETS:
        assert (workdir / target).stat().st_size > 0, target
    # the judge stand-in says YES or NO, so questions are mixed and the ablation path really runs
    table = pl.read_csv(workdir / "results/qwen3/ablation_table.tsv", separator="\t", infer_schema=False)
    mixed = table.filter(pl.col("metric") == "mixed_questions")["total"][0]
    assert int(mixed) > 0


def test_routing_paper_rehearsal_runs_every_model(workdir):
    counts = rehearse(workdir, "routing-paper")
    for rule in (
        "stand_in",
        "mirror",
        "prepare",
        "generate",
        "judge",
        "accuracy",
        "analyze",
        "steer_plan",
        "steering_table",
        "summary",
    ):
        assert counts.get(rule, 0) >= 1, rule
    config = yaml.safe_load((REPO / "config" / "routing-paper.yaml").read_text())
    for model in config["routing"]["models"]:
        for table in ("divergence", "entropy", "consistency", "correlation", "specialisation", "task_experts"):
            assert (workdir / "results" / model / "routing" / f"{table}.tsv").stat().st_size > 0, (model, table)
        assert (workdir / "results" / model / "routing" / "figures" / "divergence.png").stat().st_size > 0, model
        steered = config["models"][model].get("steering", {}).get("layers")
        assert (workdir / "results" / model / "steering_table.tsv").exists() == bool(steered), model
