"""Config validation and the shape of the DAG, without running any job."""

from __future__ import annotations

import copy

import pytest

from moe_routing import config as cfg
from moe_routing.errors import ConfigError
from moe_routing.plan import Plan, chunks, cli_flags
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
        (lambda c: c["routing"]["steering"][0].update(domain="cooking"), "routing.steering[0].domain"),
    ],
)
def test_bad_config_names_the_key(mutate, needle):
    config = load_config()
    mutate(config)
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        cfg.validate(config)


def test_snakemake_rejects_bad_config_in_one_line_naming_the_key(tmp_path):
    config = load_config()
    config["models"]["demo"]["xici"]["exclude_frist"] = 2
    path = write_config(tmp_path / "bad.yaml", config)
    proc = snakemake("-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    line = "invalid config: models.demo.xici: Additional properties are not allowed ('exclude_frist' was unexpected)"
    assert line in out.splitlines()
    assert out.count("invalid config") == 1 and len(out.splitlines()) < 5, out


def test_cli_flags_quotes_and_skips():
    assert cli_flags({"split": "test", "limit": 5, "on": True, "off": False, "none": None}) == "--split test --limit 5 --on"
    assert cli_flags({"system": "In just a few words."}) == "--system 'In just a few words.'"
    assert cli_flags({"layers": [1, 2]}) == "--layers 1 2"
    assert chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_dry_run_job_counts_follow_the_plan():
    config = cfg.load(REPO / "config" / "config.yaml")
    plan = Plan(config)
    counts = dry_run()

    def jobs(prefix):
        return sum(n for rule, n in counts.items() if rule == prefix or rule.startswith(prefix + "__"))

    # base runs: one job per language; reruns of the demo: one job per condition x cap (all languages)
    base = sum(len(plan.languages(d)) for _, d in plan.base_runs())
    assert counts["generate"] == base
    reruns = [j for j in plan.generation_jobs() if j[2].startswith("ablation/")]
    assert jobs("ablate_generate") == jobs("ablate_judge") == len(reruns) == len(plan.ablation_runs())
    assert counts["ablation_plan"] == counts["ablation_metrics"] == len(plan.ablation_runs())
    assert jobs("steer_generate") == jobs("steer_judge") == len(plan.steered_runs())
    for rule in ("demo_world", "train_demo", "xici", "outcome_table", "ablation_table", "analyze", "steering_table"):
        assert counts[rule] == 1, rule


def test_languages_per_job_groups_generation_but_keeps_one_file_per_language(tmp_path):
    config = load_config()
    config["models"]["demo"]["languages_per_job"] = 4
    config["models"]["demo"].pop("rerun_languages_per_job", None)
    counts = dry_run("--configfile", str(write_config(tmp_path / "c.yaml", config)))
    gen = {r: n for r, n in counts.items() if r.startswith("generate__")}
    plan = Plan(cfg.validate(copy.deepcopy(config)))
    expected = sum(len(chunks(plan.languages(d), 4)) for _, d in plan.base_runs())
    assert sum(gen.values()) == expected
    # a single language file is still a target of its own
    proc = snakemake("-n", "results/demo/demo_facts/generations/de.parquet", "--configfile", str(tmp_path / "c.yaml"))
    assert "generate__demo__demo_facts__en_es" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert "Congratulations" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["xici-paper.yaml", "routing-paper.yaml"])
def test_paper_dags_dry_run_with_expected_job_counts(name):
    config = cfg.load(REPO / "config" / name)
    plan = Plan(config)
    counts = dry_run("--configfile", f"config/{name}")
    # one generation job per model x dataset x language of its base runs
    expected = sum(len(config["datasets"][d]["languages"]) for _, d in plan.base_runs())
    assert counts["generate"] == expected
    assert counts["prepare"] == sum(len(config["datasets"][d]["languages"]) for d in {d for _, d in plan.base_runs()})
    if name.startswith("xici"):
        assert expected == 2 * (12 + 31 + 42)
        assert counts["ablate_generate"] == sum(len(plan.languages(d)) for _, d, _ in plan.ablation_runs())
        assert counts["judge_llm"] == expected
    else:
        steered = sum(len(plan.languages(d)) for _, d, _ in plan.steered_runs())
        assert counts["steer_generate"] == steered == 3 * (11 + 15)
        assert counts["analyze"] == 4


def test_paper_dag_dry_runs_with_the_slurm_profile():
    proc = snakemake("-n", "--profile", "profiles/slurm", "--configfile", "config/xici-paper.yaml")
    assert "ablation_table" in proc.stdout + proc.stderr
