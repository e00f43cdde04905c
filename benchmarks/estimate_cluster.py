"""Estimate the GPU cost of a config's full run, with and without grouping languages per job.

Counts the generation and LLM-judge jobs from the workflow's own Plan and prices each job as one model
load plus the generation of its languages. The times of each model come from the first of:

1. a real run (``--run results``): the generations files' schema metadata, ``load_seconds`` (median) and
   ``generate_seconds`` of each file divided by its languages (a chunk file ``en+de+fr`` holds three;
   median per dataset). Where the run also has Snakemake
   ``benchmark:`` files of its generation rules (``{run}/benchmarks/{rule}/{model}/{dataset}/...tsv``,
   column ``s``: a job's wall time), a job's fixed cost is measured instead of the load alone: (sum of
   the jobs' ``s`` - sum of their files' ``generate_seconds``) / jobs, i.e. load plus process start,
   imports and exit;
2. a ``benchmarks/bench_backends.py --out`` file (``--bench FILE`` for every model, ``--bench MODEL=FILE``
   for one): the model's backend's load time, and its seconds per generated token at the configured
   batch with capture x ``--items-per-lang`` x the dataset's max_new_tokens per language;
3. ``--load-min`` / ``--per-lang-min``: assumptions for a 30B MoE on one H100 from local disk (3 min to
   load, 40 s per language of a few hundred short prompts).

LLM-judge jobs are priced with the judge model's times (a bench file for it, else the assumptions).
The source of every model's times is printed. Usage:

    python benchmarks/estimate_cluster.py config/xici-paper.yaml [--run results] [--bench bench.json]
        [--items-per-lang 300] [--load-min 3] [--per-lang-min 0.67] [--group N]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from moe_routing.pipeline import config as cfg  # noqa: E402
from moe_routing.core.paths import chunk_languages  # noqa: E402
from moe_routing.pipeline.plan import Plan, chunks  # noqa: E402


@dataclass
class Times:
    """Seconds of one model load (a job's fixed cost) and of one language, per dataset."""

    load_s: float
    lang_s: float  # any dataset without its own figure
    per_dataset: dict[str, float] = field(default_factory=dict)
    source: str = "assumed"

    def language(self, dataset: str) -> float:
        return self.per_dataset.get(dataset, self.lang_s)


def benchmark_wall_seconds(path: Path) -> float:
    """Mean wall time (column ``s``) of a Snakemake benchmark TSV (one row per repeat)."""
    with open(path, newline="") as fh:
        rows = [float(r["s"]) for r in csv.DictReader(fh, delimiter="\t")]
    if not rows:
        raise SystemExit(f"{path}: no benchmark rows")
    return statistics.fmean(rows)


def run_times(run: Path, model: str) -> Times | None:
    """Times measured by a real run of ``model`` under ``run`` (None when it has no timed generations files)."""
    import pyarrow.parquet as pq

    from moe_routing.core.contracts import parse_routing_metadata

    loads, gen = [], {}
    for path in sorted((run / model).glob("*/**/generations/*.parquet")):
        meta = parse_routing_metadata(pq.read_schema(path).metadata)
        if "generate_seconds" in meta:
            loads.append(meta["load_seconds"])
            per_language = meta["generate_seconds"] / len(chunk_languages(path.stem))
            gen.setdefault(path.relative_to(run / model).parts[0], []).append(per_language)
    if not loads:
        return None
    per_dataset = {d: statistics.median(s) for d, s in gen.items()}
    times = Times(
        statistics.median(loads),
        statistics.median(per_dataset.values()),
        per_dataset,
        f"run {run}: {len(loads)} generations files",
    )
    walls = [
        benchmark_wall_seconds(p)
        for p in sorted((run / "benchmarks").glob(f"*/{model}/**/*.tsv"))
        if "generate" in p.relative_to(run / "benchmarks").parts[0]
    ]
    if walls:
        generated = sum(meta_seconds for meta_seconds in _generate_seconds(run, model))
        times.load_s = max(0.0, (sum(walls) - generated) / len(walls))
        times.source += f" + {len(walls)} Snakemake benchmark files (job fixed cost)"
    return times


def _generate_seconds(run: Path, model: str) -> list[float]:
    import pyarrow.parquet as pq

    from moe_routing.core.contracts import parse_routing_metadata

    metas = [parse_routing_metadata(pq.read_schema(p).metadata) for p in sorted((run / model).glob("*/**/generations/*.parquet"))]
    return [m["generate_seconds"] for m in metas if "generate_seconds" in m]


def bench_times(path: Path, backend: str, plan: Plan, model: str | None, items_per_lang: int) -> Times:
    """Times from a bench_backends.py output file, for ``model`` served by ``backend`` (model None: the judge)."""
    bench = json.loads(Path(path).read_text())
    if backend not in bench.get("backends", {}):
        raise SystemExit(f"{path}: no figures for backend {backend!r} (has {sorted(bench.get('backends', {}))})")
    figures = bench["backends"][backend]
    per_token = 1.0 / figures["runs"]["batch_capture"]["tokens_per_s"]
    per_dataset = {}
    if model is not None:
        per_dataset = {d: items_per_lang * plan.max_new_tokens(model, d) * per_token for d in plan.datasets}
    lang_s = items_per_lang * bench["new_tokens"] * per_token
    return Times(
        figures["load_seconds"],
        lang_s,
        per_dataset,
        f"bench {path} ({backend}): {1000 * per_token:.2f} ms/token at batch {bench['batch']}, {items_per_lang} items/language",
    )


def estimate(plan: Plan, per_job: int | None, times: dict[str, Times], judge: Times) -> dict:
    """Jobs and GPU-hours with ``per_job`` languages per job (None: as configured)."""
    config = plan.config
    jobs = gpu_hours = judge_jobs = judge_hours = 0.0
    for model, dataset, variant in plan.all_runs():
        t = times[model]
        size = per_job or plan.languages_per_job(model, variant)
        gpus = max(1, config["models"][model]["resources"].get("gpu", 1))
        for chunk in chunks(plan.languages(dataset), size):
            jobs += 1
            gpu_hours += gpus * (t.load_s + t.language(dataset) * len(chunk)) / 3600
            if config["datasets"][dataset]["judge"] == "llm":
                judge_jobs += 1
                judge_hours += (judge.load_s + judge.language(dataset) * len(chunk)) / 3600
    return {
        "generation_jobs": int(jobs),
        "generation_gpu_hours": gpu_hours,
        "judge_jobs": int(judge_jobs),
        "judge_gpu_hours": judge_hours,
    }


def model_times(args, plan: Plan) -> tuple[dict[str, Times], Times]:
    assumed = Times(args.load_min * 60, args.per_lang_min * 60)
    benches = {}
    for spec in args.bench:
        model, sep, path = spec.rpartition("=")
        benches[model if sep else "*"] = Path(path)
    times = {}
    for model, m in plan.models.items():
        found = run_times(Path(args.run), model) if args.run else None
        bench = benches.get(model, benches.get("*"))
        if found is None and bench is not None:
            found = bench_times(bench, m["backend"], plan, model, args.items_per_lang)
        times[model] = found or assumed
    judge_cfg = plan.config.get("judge_model") or {}
    bench = benches.get("judge", benches.get("*"))
    judge = assumed
    if bench is not None and judge_cfg.get("backend"):
        judge = bench_times(bench, judge_cfg["backend"], plan, None, args.items_per_lang)
    return times, judge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--run", help="results folder of a real run (generations metadata, benchmarks/ TSVs)")
    ap.add_argument(
        "--bench",
        action="append",
        default=[],
        metavar="[MODEL=]FILE",
        help="bench_backends.py --out file, for every model or one (MODEL 'judge': the LLM judge)",
    )
    ap.add_argument("--items-per-lang", type=int, default=300, help="items per language with --bench (default 300)")
    ap.add_argument("--load-min", type=float, default=3.0, help="assumed minutes to load the model in one job")
    ap.add_argument("--per-lang-min", type=float, default=0.67, help="assumed minutes to generate one language")
    ap.add_argument("--group", type=int, default=None, help="languages per job for the grouped estimate (default: all)")
    args = ap.parse_args()
    plan = Plan(cfg.load(args.config))
    times, judge = model_times(args, plan)
    print(f"{args.config}:")
    for model, t in [*times.items(), ("(judge)", judge)]:
        print(f"  {model:10s} load {t.load_s:7.1f} s, {t.lang_s:7.1f} s/language  [{t.source}]")
    single = estimate(plan, 1, times, judge)
    configured = estimate(plan, None, times, judge)
    grouped = estimate(plan, args.group or 10_000, times, judge)
    for name, e in (("one language per job", single), ("as configured", configured), ("all languages per job", grouped)):
        print(
            f"  {name:22s} generation jobs {e['generation_jobs']:6d}  GPU-h {e['generation_gpu_hours']:8.1f}"
            f"   judge jobs {e['judge_jobs']:6d}  GPU-h {e['judge_gpu_hours']:8.1f}"
        )
    total_single = single["generation_gpu_hours"] + single["judge_gpu_hours"]
    total_configured = configured["generation_gpu_hours"] + configured["judge_gpu_hours"]
    print(
        f"  the configured grouping saves {total_single - total_configured:.0f} GPU-h "
        f"({total_single / total_configured:.1f}x less than one language per job)"
    )


if __name__ == "__main__":
    main()
