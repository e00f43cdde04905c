"""The whole workflow on a reduced demo: every stage runs, tables agree with the files they come
from, and a failed or deleted language is redone alone with what depends on it."""

from __future__ import annotations

import os
import shutil

import polars as pl
import pytest

from workflow_helpers import copy_workflow, job_counts, load_config, snakemake, write_config

pytestmark = pytest.mark.slow

# the fact questions need >= 7 languages: a one-sided Mann-Whitney U of 3 vs 3 values cannot go below p = 0.05
LANGS = ["en", "de", "fr", "es", "it", "pt", "nl", "sv"]
ROUTING_LANGS = ["en", "de", "fr", "es"]


def reduced_config() -> dict:
    config = load_config()
    for name, ds in config["datasets"].items():
        if ds["languages"] != ["en"]:
            ds["languages"] = list(LANGS if name == "demo_facts" else ROUTING_LANGS)
    config["demo"]["world"] = {"n_entities": 60, "n_parallel": 16, "n_task": 16, "n_bench": 8}
    # about 2 min on 2 cores
    config["demo"]["train"] = {
        "steps": 900, "eval_every": 100, "batch_size": 32, "lr": 0.01, "layers": 4, "experts": 8,
        "hidden_size": 64, "min_english_accuracy": 0.0,
    }
    demo = config["models"]["demo"]
    demo["batch_size"] = 64
    demo["languages_per_job"] = 1
    demo["rerun_languages_per_job"] = 4  # exercises the chunked rules for real
    demo["xici"].update(exclude_first=0, exclude_last=0)
    demo["steering"].update(layers=[1, 2], tau=0.0)
    config["xici"]["cap_sweep"] = [5, 25]
    config["routing"]["low_resource"] = ["fr"]
    return config


def run(workdir, *targets, check=True):
    proc = snakemake("-c2", "--configfile", "config/test.yaml", *targets, cwd=workdir, timeout=1500, check=check)
    return proc, job_counts(proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("demo"))
    write_config(root / "config" / "test.yaml", reduced_config())
    run(root)
    return root


def test_every_output_is_there(workdir):
    res = workdir / "results" / "demo"
    for rel in (
        "outcome_table.tsv", "ablation_table.tsv", "cap_sweep.tsv", "steering_table.tsv",
        "figures/outcomes.png", "figures/experts_per_layer.png", "figures/cap_sweep.png",
        "routing/divergence.tsv", "routing/entropy.tsv", "routing/consistency.tsv",
        "demo_facts/experts.parquet",
    ):
        assert (res / rel).stat().st_size > 0, rel
    assert any((workdir / "logs").rglob("*.log"))


def test_the_reduced_demo_is_not_degenerate(workdir):
    """Some questions are mixed, experts are found for some, every condition has originally-correct pairs."""
    outcomes = _table(workdir / "results" / "demo" / "outcome_table.tsv")
    assert int(outcomes["mixed"]["demo_facts"]) >= 10
    ablation = _table(workdir / "results" / "demo" / "ablation_table.tsv")
    assert int(ablation["questions_with_experts"]["demo_facts"]) >= 3
    for condition in ("xici", "shuffled", "random"):
        metrics = pl.read_parquet(workdir / "results" / "demo" / "demo_facts" / "ablation" / f"{condition}-cap25" / "metrics.parquet")
        assert metrics["orig_correct"][0] > 0, condition


def _table(path) -> dict[str, dict[str, str]]:
    df = pl.read_csv(path, separator="\t", infer_schema=False)
    return {r["metric"]: r for r in df.iter_rows(named=True)}


def test_outcome_table_agrees_with_judgments(workdir):
    res = workdir / "results" / "demo" / "demo_facts"
    judged = pl.concat([pl.read_parquet(res / "judged" / f"{l}.parquet") for l in LANGS])
    per_q = judged.group_by("item_id").agg(pl.col("correct").sum().alias("n"), pl.len().alias("of"))
    table = _table(workdir / "results" / "demo" / "outcome_table.tsv")
    assert int(table["all_correct"]["demo_facts"]) == per_q.filter(pl.col("n") == pl.col("of")).height
    assert int(table["all_incorrect"]["demo_facts"]) == per_q.filter(pl.col("n") == 0).height
    assert int(table["mixed"]["demo_facts"]) == per_q.filter((pl.col("n") > 0) & (pl.col("n") < pl.col("of"))).height
    en = judged.filter(pl.col("lang") == "en")["correct"].mean()
    assert float(table["english_accuracy"]["demo_facts"]) == pytest.approx(en, abs=1e-6)


def test_ablation_table_agrees_with_plan_and_judgments(workdir):
    base = workdir / "results" / "demo" / "demo_facts"
    table = _table(workdir / "results" / "demo" / "ablation_table.tsv")
    for condition in ("xici", "shuffled", "random"):
        run_dir = base / "ablation" / f"{condition}-cap25"
        plan = pl.read_parquet(run_dir / "interventions.parquet")
        asked = set(plan["item_id"].to_list())
        orig = pl.concat([pl.read_parquet(base / "judged" / f"{l}.parquet") for l in LANGS])
        abl = pl.concat([pl.read_parquet(run_dir / "judged" / f"{l}.parquet") for l in LANGS])
        pairs = orig.filter(pl.col("item_id").is_in(asked)).join(abl, on=["item_id", "lang"], suffix="_ab")
        assert set(abl["item_id"].to_list()) <= asked  # only questions with experts are re-asked
        correct = pairs.filter(pl.col("correct"))
        asr_row = next(r for m, r in table.items() if m.startswith(condition) and m.endswith("asr"))
        if correct.height:
            asr = correct.filter(~pl.col("correct_ab")).height / correct.height
            assert float(asr_row["demo_facts"]) == pytest.approx(asr, abs=1e-6)
    experts = pl.read_parquet(base / "experts.parquet")
    xici_plan = pl.read_parquet(base / "ablation" / "xici-cap25" / "interventions.parquet")
    kept = experts.filter(pl.col("rank") <= 25).select("item_id", "layer", "expert").sort(pl.all())
    assert kept.equals(xici_plan.select("item_id", "layer", "expert").sort(pl.all()))


def test_rerun_of_one_deleted_language_redoes_only_its_chain(workdir):
    gen = workdir / "results" / "demo" / "demo_facts" / "generations"
    before = {l: os.stat(gen / f"{l}.parquet").st_mtime_ns for l in LANGS}
    (gen / "de.parquet").unlink()
    # a missing intermediate alone does not make Snakemake rerun finished downstream jobs: name it
    _, counts = run(workdir, "--forcerun", "results/demo/demo_facts/generations/de.parquet")
    assert counts.get("generate") == 1 and counts.get("judge") == 1
    assert "demo_world" not in counts and "train_demo" not in counts
    assert counts.get("xici") == 1 and counts.get("outcome_table") == 1
    for lang in LANGS:
        if lang != "de":
            assert os.stat(gen / f"{lang}.parquet").st_mtime_ns == before[lang]


def test_a_failed_language_is_redone_alone_after_the_fix(workdir):
    items = workdir / "resources" / "data" / "demo_facts" / "fr.parquet"
    out = workdir / "results" / "demo" / "demo_facts" / "generations" / "fr.parquet"
    good = items.read_bytes()
    items.write_bytes(b"not a parquet file")
    proc, counts = run(workdir, "--keep-going", check=False)
    assert proc.returncode != 0
    assert counts.get("generate") == 1 and "train_demo" not in counts and "demo_world" not in counts
    log = (workdir / "logs" / "generate" / "demo" / "demo_facts" / "fr.log").read_text()
    assert "fr.parquet" in log  # the error names the file
    assert not out.exists() or out.stat().st_size > 0  # nothing half-written
    items.write_bytes(good)
    _, counts = run(workdir)
    assert counts.get("generate") == 1 and counts.get("judge") == 1
    assert "train_demo" not in counts and "demo_world" not in counts
