"""benchmarks/estimate_cluster.py takes its times from a real run's files or a bench_backends output."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from moe_routing.core.contracts import routing_metadata, run_metadata
from moe_routing.core.io import write_parquet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def est():
    spec = importlib.util.spec_from_file_location("estimate_cluster", ROOT / "benchmarks" / "estimate_cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _generations(path: Path, load: float, seconds: float) -> None:
    meta = routing_metadata("m", [0, 1], 4, 2, "bfloat16") | run_metadata("vllm", "cuda", load, seconds)
    write_parquet(pa.table({"item_id": ["a"], "lang": ["en"]}), path, metadata=meta)


def _benchmark(path: Path, *walls: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{w}\t0:00:{int(w):02d}\t1000\t900\t0\t0\t0\t0\t{w / 2}\n" for w in walls)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tcpu_time\n" + rows)


def test_times_from_a_run_with_and_without_benchmark_files(est, tmp_path):
    run = tmp_path / "results"
    for rel, load, secs in (
        ("qwen3/eclektic/generations/en.parquet", 90, 10),
        ("qwen3/eclektic/generations/de.parquet", 90, 30),
        ("qwen3/eclektic/ablation/xici-cap25/generations/en.parquet", 110, 20),
        ("qwen3/mloko/generations/en.parquet", 100, 50),
    ):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        _generations(run / rel, load, secs)
    t = est.run_times(run, "qwen3")
    assert t.per_dataset == {"eclektic": 20, "mloko": 50} and t.load_s == 95 and t.language("other") == 35
    assert est.run_times(run, "glm45air") is None
    # four jobs measured by Snakemake: 4 x 150 s wall for 110 s of generation in all -> 122.5 s fixed per job
    _benchmark(run / "benchmarks/generate/qwen3/eclektic/en.tsv", 150)
    _benchmark(run / "benchmarks/generate/qwen3/eclektic/de.tsv", 140, 160)
    _benchmark(run / "benchmarks/ablate_generate/qwen3/eclektic/xici-cap25/en.tsv", 150)
    _benchmark(run / "benchmarks/generate/qwen3/mloko/en.tsv", 150)
    _benchmark(run / "benchmarks/judge_llm/qwen3/eclektic/en.tsv", 999)  # not a generation rule
    t = est.run_times(run, "qwen3")
    assert t.load_s == pytest.approx((4 * 150 - 110) / 4) and "4 Snakemake benchmark files" in t.source


def test_times_from_a_bench_file(est, tmp_path):
    bench = {
        "new_tokens": 32,
        "batch": 16,
        "backends": {"vllm": {"load_seconds": 80.0, "runs": {"batch_capture": {"tokens_per_s": 1000.0}}}},
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    plan = est.Plan({"models": {"q": {"max_new_tokens": 10}}, "datasets": {"d1": {}, "d2": {}}})
    t = est.bench_times(path, "vllm", plan, "q", items_per_lang=200)
    assert t.load_s == 80 and t.per_dataset == {"d1": pytest.approx(2.0), "d2": pytest.approx(2.0)}
    assert est.bench_times(path, "vllm", plan, None, 200).lang_s == pytest.approx(200 * 32 / 1000)
    with pytest.raises(SystemExit, match="no figures for backend 'hf'"):
        est.bench_times(path, "hf", plan, "q", 200)
