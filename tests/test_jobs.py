"""What the rules read and the options they pass (moe_routing.pipeline.jobs), without Snakemake."""

from __future__ import annotations

import shlex
from types import SimpleNamespace as W

import pytest

from moe_routing.pipeline import config as cfg
from moe_routing.pipeline.jobs import Jobs, as_named, flat
from moe_routing.pipeline.plan import Plan
from workflow_helpers import REPO, load_config


@pytest.fixture(scope="module")
def demo():
    config = cfg.load(REPO / "config" / "config.yaml")
    return Jobs(config, Plan(config))


@pytest.fixture(scope="module")
def routing():
    config = cfg.load(REPO / "config" / "routing-paper.yaml")
    return Jobs(config, Plan(config))


def words(flags: str) -> list[str]:
    return shlex.split(flags)


def test_each_run_reads_its_own_interventions(demo):
    assert demo.get_run_interventions(W(run="demo/demo_facts")) == []
    assert demo.get_run_interventions(W(run="demo/demo_facts/ablation/shuffled-cap15")) == [
        "results/demo/demo_facts/ablation/shuffled-cap15/interventions.parquet"
    ]
    assert demo.get_run_interventions(W(run="demo/demo_task_bench/steered")) == [
        "results/demo/steering/demo_task_bench/interventions.parquet"
    ]
    assert demo.get_chunk_items(W(run="demo/demo_facts/steered", chunk="en+de")) == [
        "resources/data/demo_facts/en.parquet",
        "resources/data/demo_facts/de.parquet",
    ]


def test_ablation_reruns_ask_only_intervened_items(demo):
    base = words(demo.generation_flags(W(run="demo/demo_facts")))
    rerun = words(demo.generation_flags(W(run="demo/demo_facts/ablation/xici-cap25")))
    assert "--interventions" not in base and "--only-intervened" not in base
    assert rerun[rerun.index("--interventions") + 1].endswith("xici-cap25/interventions.parquet")
    assert "--only-intervened" in rerun
    steered = words(demo.generation_flags(W(run="demo/demo_task_bench/steered")))
    assert "--interventions" in steered and "--only-intervened" not in steered
    # each generation records its run, and the steering plan the run it is for (generate compares them)
    assert (
        base[base.index("--run") + 1] == "demo/demo_facts"
        and steered[steered.index("--run") + 1] == "demo/demo_task_bench/steered"
    )
    plan = words(demo.steering_flags(W(model="demo", dataset="demo_task_bench")))
    assert plan[plan.index("--run") + 1] == "demo/demo_task_bench/steered"


def test_routing_options_reach_the_sets_the_analysis_reads(routing):
    flores = words(routing.generation_flags(W(run="qwen3/flores")))
    mgsm = words(routing.generation_flags(W(run="qwen3/mgsm")))
    belebele = words(routing.generation_flags(W(run="qwen3/belebele")))
    assert "--token-scope" in flores and "--token-scope" not in mgsm
    assert belebele[belebele.index("--scoring") + 1] == "loglik" and "--no-chat-template" in belebele
    assert mgsm[mgsm.index("--max-new-tokens") + 1] == "512"
    analyze = words(routing.analyze_flags(W(model="qwen3")))
    assert analyze[analyze.index("--accuracy") + 1] == "results/qwen3/belebele/accuracy.tsv"
    tasks = analyze[analyze.index("--task") + 1 : analyze.index("--task") + 3]
    assert tasks == [
        "math=results/qwen3/gsm8k_instruct/generations/en.parquet",
        "medicine=results/qwen3/alpacare/generations/en.parquet",
    ]


def test_named_files_are_listed_once_for_input_and_params(demo):
    wc = W(model="demo")
    judgments = demo.get_xici("judgments")
    assert flat(judgments)(wc)[0] == "results/demo/demo_facts/judgments/en.parquet"
    assert shlex.split(as_named(judgments)(wc))[0] == "demo_facts=results/demo/demo_facts/judgments/en.parquet"


def test_config_values_are_quoted(tmp_path):
    config = load_config()
    config["models"]["demo"]["engine_args"] = {"device_map": "auto; touch pwned"}
    config = cfg.validate(config)
    jobs = Jobs(config, Plan(config))
    flags = words(jobs.generation_flags(W(run="demo/demo_facts")))
    assert flags[flags.index("--engine-arg") + 1] == "device_map=auto; touch pwned"


def test_the_stage_command_follows_the_backend_and_conda(demo):
    assert str(demo.moe()).endswith("-m moe_routing") and "python" in str(demo.moe())
    conda = Jobs(demo.config, demo.plan, use_conda=True)
    assert f"{conda.moe('vllm')} judge" == "python -m moe_routing judge"
    assert conda.conda_env("vllm") == "../../envs/vllm.yaml"
