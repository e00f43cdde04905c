"""The whole workflow on the reduced demo (.test/config.yaml): every stage runs, tables agree with
the files they come from, every file written is a declared output, and a failed or deleted
language is redone alone with what depends on it."""

from __future__ import annotations

import copy
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from workflow_helpers import REPO, copy_workflow, job_counts, snakemake

pytestmark = pytest.mark.slow

CONFIG = ".test/config.yaml"
TEST_CONFIG = yaml.safe_load((REPO / CONFIG).read_text())
LANGS = TEST_CONFIG["datasets"]["demo_facts"]["languages"]


def run(workdir, *args, check=True, env=None):
    proc = snakemake("-c2", "--configfile", CONFIG, *args, cwd=workdir, timeout=1500, check=check, env=env)
    return proc, job_counts(proc.stdout + proc.stderr)


def generated(proc, run_dir: str = "results/demo/demo_facts/generations/") -> set[str]:
    """Base-run generation files a snakemake call ran or planned (the `output:` lines of its jobs)."""
    lines = (proc.stdout + proc.stderr).splitlines()
    return {line.split("output:", 1)[1].strip() for line in lines if line.strip().startswith(f"output: {run_dir}")}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("demo"))
    run(root)
    return root


@pytest.fixture(scope="module")
def workdir_avx2(tmp_path_factory):
    """The same reduced demo with torch held to its AVX2 kernels (the default picks AVX-512 where there is one)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("ATEN_CPU_CAPABILITY=avx2 is an x86 setting")
    root = copy_workflow(tmp_path_factory.mktemp("demo-avx2"))
    run(root, env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"})
    return root


def _table(path) -> dict[str, dict[str, str]]:
    df = pl.read_csv(path, separator="\t", infer_schema=False)
    return {r["metric"]: r for r in df.iter_rows(named=True)}


def _judgments(run_dir, langs=None) -> pl.DataFrame:
    frame = pl.concat([pl.read_parquet(p) for p in sorted((run_dir / "judgments").glob("*.parquet"))])
    return frame.filter(pl.col("lang").is_in(langs)) if langs else frame


def test_every_output_is_there(workdir):
    res = workdir / "results" / "demo"
    for rel in (
        "outcome_table.tsv",
        "ablation_table.tsv",
        "cap_sweep.tsv",
        "steering_table.tsv",
        "summary.md",
        "figures/outcomes.png",
        "figures/experts_per_layer.png",
        "figures/cap_sweep.png",
        "routing/divergence.tsv",
        "routing/entropy.tsv",
        "routing/consistency.tsv",
        "routing/correlation.tsv",
        "routing/specialisation.tsv",
        "routing/task_experts.tsv",
        "routing/figures/delta.png",
        "demo_facts/experts.parquet",
        "demo_facts/xici_sweep.tsv",
    ):
        assert (res / rel).stat().st_size > 0, rel
    assert any((workdir / "logs").rglob("*.log"))


def test_every_file_written_is_a_declared_output(workdir):
    """Whatever a job wrote under results/ or resources/ is an output Snakemake knows (--summary)."""
    proc = snakemake("--summary", "--configfile", CONFIG, cwd=workdir)
    declared = {line.split("\t")[0] for line in proc.stdout.splitlines()[1:] if line.strip()}
    written = {
        str(p.relative_to(workdir))
        for top in ("results", "resources/data", "resources/demo", "resources/models")
        for p in (workdir / top).rglob("*")
        if p.is_file()
    }
    model_files = {w for w in written if w.startswith("resources/models/")}  # a checkpoint: config.json is its output
    undeclared = sorted(w for w in written - declared - model_files if not w.startswith("results/benchmarks/"))
    assert not undeclared, undeclared[:20]


def test_logs_hold_lines_not_carriage_return_redraws(workdir):
    log = (workdir / "logs" / "build_demo.log").read_text()
    assert "\r" not in log
    assert max(len(line) for line in log.splitlines()) < 2000


def test_same_numbers_under_avx2_and_default_kernels(workdir, workdir_avx2):
    """The constructed model decides everything with margins far above float32 rounding, so the
    vector instructions torch uses change no table, no identified expert and no summary line."""
    res, res2 = workdir / "results" / "demo", workdir_avx2 / "results" / "demo"
    for rel in ("outcome_table.tsv", "summary.md", "truth_scores.tsv", "ablation_table.tsv", "cap_sweep.tsv"):
        assert (res / rel).read_text() == (res2 / rel).read_text(), rel
    a, b = (pl.read_parquet(r / "demo_facts" / "experts.parquet") for r in (res, res2))
    assert a.height > 0 and a.equals(b)


def test_the_demo_finds_the_planted_experts(workdir):
    """The reduced demo scored against its planted truth (truth_scores.tsv)."""
    scores = pl.read_csv(workdir / "results" / "demo" / "truth_scores.tsv", separator="\t")

    def value(section, metric, cap=None):
        rows = scores.filter((pl.col("section") == section) & (pl.col("metric") == metric))
        rows = rows.filter(pl.col("cap").is_null() if cap is None else pl.col("cap") == cap)
        return rows["value"][0]

    assert value("xici", "precision", 25) >= 0.9 and value("xici", "recall", 25) >= 0.7
    assert value("xici", "recall", 5) < value("xici", "recall", 25)
    asr = {c: value("ablation", f"{c}_asr", 25) for c in ("planted", "xici", "shuffled", "random")}
    assert asr["planted"] >= asr["xici"] > asr["shuffled"] >= asr["random"], asr
    assert value("steering", "ci_low") > 0
    assert value("divergence", "separated") == 1


def test_the_reduced_demo_is_not_degenerate(workdir):
    """Some questions are mixed, experts are found for some, every condition has originally-correct pairs."""
    outcomes = _table(workdir / "results" / "demo" / "outcome_table.tsv")
    assert int(outcomes["mixed"]["demo_facts"]) >= 10
    ablation = _table(workdir / "results" / "demo" / "ablation_table.tsv")
    assert int(ablation["questions_with_experts"]["demo_facts"]) >= 3
    for condition in ("xici", "shuffled", "random"):
        metrics = pl.read_parquet(
            workdir / "results" / "demo" / "demo_facts" / "ablation" / f"{condition}-cap25" / "metrics.parquet"
        )
        assert metrics["orig_correct"][0] > 0, condition


def test_outcome_table_agrees_with_judgments(workdir):
    judged = _judgments(workdir / "results" / "demo" / "demo_facts")
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
    orig = _judgments(base)
    for condition in ("xici", "shuffled", "random"):
        run_dir = base / "ablation" / f"{condition}-cap25"
        # reruns go 4 languages per job: chunk files hold several languages
        assert sorted(p.name for p in (run_dir / "generations").glob("*.parquet")) == [
            "en+de+fr+es.parquet",
            "it+pt+nl+sv.parquet",
        ]
        asked = set(pl.read_parquet(run_dir / "interventions.parquet")["item_id"].to_list())
        abl = _judgments(run_dir)
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


def test_summary_quotes_the_tables(workdir):
    summary = (workdir / "results" / "demo" / "summary.md").read_text()
    ablation = _table(workdir / "results" / "demo" / "ablation_table.tsv")
    assert f"XICI ASR {100 * float(ablation['xici_asr']['total']):.1f} %" in summary
    outcomes = _table(workdir / "results" / "demo" / "outcome_table.tsv")
    assert f"{outcomes['mixed']['demo_facts']} mixed" in summary


def test_a_copy_with_another_interpreter_plans_nothing(workdir, tmp_path):
    """The interpreter is not part of a job's identity: a finished study copied elsewhere (`cp -a`, .snakemake
    included) and pointed at its own environment (python.main) has nothing to do."""
    copy = tmp_path / "moved"
    subprocess.run(["cp", "-a", str(workdir), str(copy)], check=True)
    (copy / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    config = {**TEST_CONFIG, "python": {"main": ".venv/bin/python"}}
    (copy / "moved.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake("-n", "--configfile", "moved.yaml", cwd=copy)
    assert job_counts(proc.stdout + proc.stderr) == {}, (proc.stdout + proc.stderr)[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_changed_statistic_plans_only_the_jobs_that_read_it(workdir, tmp_path):
    """xici.alpha reruns the XICI test and what depends on its experts (ablation plans, reruns, tables, the demo's
    scores against the planted truth), no base-run generation or judgment and nothing of the routing study."""
    config = copy.deepcopy(TEST_CONFIG)
    config["models"]["demo"]["xici"]["alpha"] = 0.01
    path = tmp_path / "alpha.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake("-n", "--configfile", str(path), cwd=workdir)
    counts = job_counts(proc.stdout + proc.stderr)
    downstream = {"ablation_plan", "generate", "judge", "ablation_metrics", "ablation_table", "cap_sweep", "xici_figures"}
    downstream.add("demo_score")  # XICI's precision and recall against the planted experts
    assert set(counts) - {"total"} == {"xici", *downstream, "summary", "all"}, counts
    caps, conditions = TEST_CONFIG["xici"]["cap_sweep"], TEST_CONFIG["xici"]["conditions"]
    assert counts["xici"] == counts["demo_score"] == 1 and counts["ablation_plan"] == counts["ablation_metrics"] == len(
        caps
    ) * len(conditions)
    # every generation planned is an ablation rerun's
    lines = (proc.stdout + proc.stderr).splitlines()
    planned = [line.split("output:", 1)[1].strip() for line in lines if "output: results/demo/demo_facts/" in line]
    generations = [p for p in planned if "/generations/" in p]
    assert len(generations) == counts["generate"] and all("/ablation/" in p for p in generations), generations
    assert not generated(proc)


def test_a_deleted_output_plans_its_producer(workdir):
    """Every intermediate is a target of `all`: deleting one plans exactly its producer and what follows."""
    task_experts = workdir / "results" / "demo" / "routing" / "task_experts.tsv"
    saved = task_experts.read_bytes()
    task_experts.unlink()
    proc = snakemake("-n", "--configfile", CONFIG, cwd=workdir)
    counts = job_counts(proc.stdout + proc.stderr)
    # analyze and what reads its tables (the steering plan, then the steered rerun): nothing upstream
    assert counts.get("analyze") == 1 and counts.get("steer_plan") == 1
    assert not {"demo_world", "build_demo", "xici", "outcome_table"} & set(counts) and not generated(proc)
    task_experts.write_bytes(saved)
    os.utime(task_experts, ns=(os.stat(task_experts.parent / "divergence.tsv").st_mtime_ns,) * 2)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file a run wrote: relative path -> (size, mtime in ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for top in ("results", "resources", "logs")
        for p in (root / top).rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize(
    "mutate, line",
    [
        (
            lambda c: c.update(python={"main": "/opt/nothing/bin/python"}),
            "invalid config: python.main: '/opt/nothing/bin/python' is not an executable file",
        ),
        (
            lambda c: c["demo"]["build"].update(layres=10),
            "invalid config: demo.build.layres: unknown key; did you mean 'layers'?",
        ),
    ],
    ids=["python.main", "demo.build.layres"],
)
def test_a_typo_is_refused_before_any_job_and_the_finished_run_stays_complete(workdir, tmp_path, mutate, line):
    """A mistyped interpreter or a misspelt nested key fails at parse time, in one line, in a dry-run and
    in a real run: Snakemake never plans a job, so it removes no output; the correct config then plans nothing."""
    before = _files(workdir)
    config = yaml.safe_load((workdir / CONFIG).read_text())
    mutate(config)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config, sort_keys=False))
    for extra in (("-n",), ()):
        proc = snakemake("-c2", "--configfile", str(bad), *extra, cwd=workdir, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and line in out.splitlines() and out.count("invalid config") == 1, out
        assert "Job stats" not in out, out
    after = _files(workdir)
    assert len(after) == len(before) and after == before
    proc = snakemake("-n", "--configfile", CONFIG, cwd=workdir)
    assert job_counts(proc.stdout + proc.stderr) == {}


def _stage_pid(*words: str) -> int | None:
    """The pid of a running `python -m moe_routing` process whose command line holds every word."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = [w.decode(errors="replace") for w in cmd]
        if "moe_routing" in line and all(w in line for w in words):
            return int(proc.name)
    return None


def test_a_killed_and_a_deleted_language_are_redone_alone_by_one_plain_run(workdir):
    """A generation job killed with SIGKILL leaves nothing behind, and a deleted generations file is just
    missing: since both are targets of `all`, one plain `snakemake` rebuilds them and what follows them."""
    gen = workdir / "results" / "demo" / "demo_facts" / "generations"
    killed = "results/demo/demo_facts/generations/it.parquet"
    forced = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-c1", "--configfile", CONFIG, "--forcerun", killed],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, pid = time.time() + 300, None
    while pid is None and time.time() < deadline and forced.poll() is None:
        pid = _stage_pid("generate", killed)
        time.sleep(0.05)
    assert pid is not None, "the generation job never started"
    os.kill(pid, signal.SIGKILL)
    assert forced.wait(timeout=300) != 0
    assert not (workdir / killed).exists()  # snakemake removed it before the job; the job wrote nothing
    assert not list(gen.glob(".it.parquet.*"))  # nor a temporary file
    (gen / "de.parquet").unlink()
    before = {l: os.stat(gen / f"{l}.parquet").st_mtime_ns for l in LANGS if l not in ("de", "it")}
    proc, counts = run(workdir)
    assert generated(proc) == {f"results/demo/demo_facts/generations/{lang}.parquet" for lang in ("de", "it")}
    assert (gen / "it.parquet").exists() and (gen / "de.parquet").exists()
    assert "demo_world" not in counts and "build_demo" not in counts
    assert counts.get("xici") == 1 and counts.get("outcome_table") == 1
    for lang, mtime in before.items():
        assert os.stat(gen / f"{lang}.parquet").st_mtime_ns == mtime, lang


def test_a_failed_language_is_redone_alone_after_the_fix(workdir):
    items = workdir / "resources" / "data" / "demo_facts" / "fr.parquet"
    out = workdir / "results" / "demo" / "demo_facts" / "generations" / "fr.parquet"
    good = items.read_bytes()
    items.write_bytes(b"not a parquet file")
    proc, counts = run(workdir, "--keep-going", check=False)
    assert proc.returncode != 0
    assert generated(proc) == {str(out.relative_to(workdir))} and "build_demo" not in counts and "demo_world" not in counts
    log = (workdir / "logs" / "generate" / "demo" / "demo_facts" / "fr.log").read_text()
    assert "fr.parquet" in log  # the error names the file
    assert not out.exists() or out.stat().st_size > 0  # nothing half-written
    items.write_bytes(good)
    proc, counts = run(workdir)
    assert generated(proc) == {str(out.relative_to(workdir))}
    assert "build_demo" not in counts and "demo_world" not in counts
