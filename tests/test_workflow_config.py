"""Config validation and the shape of the DAG, without running any job."""

from __future__ import annotations

import copy
import re

import pytest

from moe_routing.pipeline import config as cfg
from moe_routing.core import paths
from moe_routing.pipeline.commands import cli_flags
from moe_routing.core.errors import ConfigError
from moe_routing.pipeline.plan import Plan, chunks
from workflow_helpers import REPO, dry_run, load_config, snakemake, write_config


def test_default_config_validates_and_fills_nested_defaults():
    config = cfg.load(REPO / "config" / "config.yaml")
    demo = config["models"]["demo"]
    assert demo["resources"]["gpu"] == 0
    assert demo["steering"]["benchmarks"] == {}
    assert config["xici"]["conditions"] == ["xici", "shuffled", "random"]


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda c: c["models"]["demo"].update(batchsize=3), "batchsize"),
        (lambda c: c["models"]["demo"]["xici"].update(alpha=2), "alpha"),
        (lambda c: c["datasets"]["demo_facts"].update(judge="regex"), "regex"),
        (lambda c: c["xici"].update(datasets=["nope"]), "xici.datasets"),
        (lambda c: c["routing"].update(accuracy="missing"), "routing.accuracy"),
        (lambda c: c["datasets"]["demo_facts"].update(languages=["en", "en"]), "duplicate"),
        (lambda c: c["routing"]["steering"][0].update(task="cooking"), "routing.steering[0].task"),
    ],
)
def test_bad_config_names_the_key(mutate, needle):
    config = load_config()
    mutate(config)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        cfg.validate(config)


def test_snakemake_rejects_bad_config_in_one_line_naming_the_key(tmp_path):
    config = load_config()
    config["models"]["demo"]["xici"]["exclude_frist"] = 2
    path = write_config(tmp_path / "bad.yaml", config)
    proc = snakemake("-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    line = "invalid config: models.demo.xici.exclude_frist: unknown key; did you mean 'exclude_first'?"
    assert line in out.splitlines()
    assert out.count("invalid config") == 1 and len(out.splitlines()) < 5, out


def test_cli_flags_quotes_every_value_and_skips_empty_ones():
    assert (
        cli_flags({"split": "test", "limit": 5, "on": True, "off": False, "none": None, "empty": []})
        == "--split test --limit 5 --on"
    )
    assert cli_flags({"system": "In just a few words."}) == "--system 'In just a few words.'"
    assert cli_flags({"layers": [1, 2]}) == "--layers 1 2"
    assert cli_flags({"engine_arg": ["a=1", "b=2"]}, repeated=("engine_arg",)) == "--engine-arg a=1 --engine-arg b=2"
    assert cli_flags({"model": "x'; touch pwned; '"}) == "--model 'x'\"'\"'; touch pwned; '\"'\"''"
    assert chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_run_ids_and_chunks_round_trip():
    assert paths.parse_run(paths.run_id("m", "d", "ablation/xici-cap25")) == ("m", "d", "ablation/xici-cap25")
    assert paths.parse_run(paths.run_id("m", "d")) == ("m", "d", "")
    assert re.fullmatch(paths.run_regex(["d"]), "m/d/steered") and not re.fullmatch(paths.run_regex(["d"]), "m/e")
    assert paths.chunk_languages(paths.chunk_name(["en", "de"])) == ["en", "de"]


def _jobs(counts, rule):
    return counts.get(rule, 0)


def test_dry_run_job_counts_follow_the_plan():
    config = cfg.load(REPO / "config" / "config.yaml")
    plan = Plan(config)
    counts = dry_run()
    # base runs one job per language; the demo's reruns one job per condition x cap (all languages)
    assert counts["generate"] == len(plan.generation_jobs())
    judged = [j for j in plan.generation_jobs() if config["datasets"][j[1]]["judge"] != "none"]
    assert counts["judge"] == len(judged)
    assert counts["ablation_plan"] == counts["ablation_metrics"] == len(plan.ablation_runs())
    assert len(plan.ablation_runs()) == 21 and sum(1 for j in plan.generation_jobs() if j[2].startswith("ablation/")) == 21
    for rule in (
        "demo_world",
        "build_demo",
        "xici",
        "outcome_table",
        "ablation_table",
        "analyze",
        "steering_table",
        "summary",
        "demo_score",
    ):
        assert counts[rule] == 1, rule


def test_languages_per_job_groups_languages_into_chunk_files(tmp_path):
    config = load_config()
    config["models"]["demo"]["languages_per_job"] = 4
    config["models"]["demo"].pop("rerun_languages_per_job", None)
    counts = dry_run("--configfile", str(write_config(tmp_path / "c.yaml", config)))
    plan = Plan(cfg.validate(copy.deepcopy(config)))
    assert counts["generate"] == len(plan.generation_jobs())
    assert plan.chunks("demo", "demo_facts") == ["en+de+fr+es", "it+pt+nl+sv", "pl+tr"]
    # a chunk file is a target of its own
    proc = snakemake("-n", "results/demo/demo_facts/generations/en+de+fr+es.parquet", "--configfile", str(tmp_path / "c.yaml"))
    assert "generate" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert "Congratulations" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["xici-paper.yaml", "routing-paper.yaml"])
def test_paper_dags_dry_run_with_expected_job_counts(name):
    config = cfg.load(REPO / "config" / name)
    plan = Plan(config)
    counts = dry_run("--configfile", f"config/{name}")
    assert counts["generate"] == len(plan.generation_jobs())
    assert counts["prepare"] == sum(len(config["datasets"][d]["languages"]) for d in {d for _, d in plan.base_runs()})
    if name.startswith("xici"):
        assert counts["judge_llm"] == len(plan.generation_jobs())
        assert counts["ablation_plan"] == len(plan.ablation_runs()) == 2 * 3 * 3 * 7
    else:
        assert len(plan.steered_runs()) == 3 * 2
        assert counts["analyze"] == 4


def test_paper_dag_dry_runs_with_the_slurm_profile():
    proc = snakemake("-n", "--profile", "profiles/slurm", "--configfile", "config/xici-paper.yaml")
    assert "ablation_table" in proc.stdout + proc.stderr
