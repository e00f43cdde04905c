"""Estimate the GPU cost of a config's full run, with and without grouping languages per job.

Counts the generation and LLM-judge jobs from the workflow's own Plan and prices each job as
model load + per-language generation, from times you measured (or the defaults below, which are
assumptions for a 30B MoE on one H100 from local disk: 3 min to load, 40 s per language of a few
hundred short prompts). Usage:

    python benchmarks/estimate_cluster.py config/xici-paper.yaml [--load-min 3] [--per-lang-min 0.67]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from moe_routing import config as cfg  # noqa: E402
from moe_routing.plan import Plan, chunks  # noqa: E402


def estimate(config: dict, per_job: int | None, load_min: float, per_lang_min: float) -> dict:
    plan = Plan(config)
    jobs = gpu_hours = 0.0
    judge_jobs = judge_hours = 0.0
    for model, dataset, variant in plan.all_runs():
        langs = plan.languages(dataset)
        size = per_job or plan.languages_per_job(model, variant)
        gpus = max(1, config["models"][model]["resources"].get("gpu", 1))
        for chunk in chunks(langs, size):
            jobs += 1
            gpu_hours += gpus * (load_min + per_lang_min * len(chunk)) / 60
            if config["datasets"][dataset]["judge"] == "llm":
                judge_jobs += 1
                judge_hours += (load_min + per_lang_min * len(chunk)) / 60
    return {"generation_jobs": int(jobs), "generation_gpu_hours": gpu_hours,
            "judge_jobs": int(judge_jobs), "judge_gpu_hours": judge_hours}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--load-min", type=float, default=3.0, help="minutes to load the model in one job")
    ap.add_argument("--per-lang-min", type=float, default=0.67, help="minutes to generate one language")
    ap.add_argument("--group", type=int, default=None, help="languages per job for the grouped estimate (default: all)")
    args = ap.parse_args()
    config = cfg.load(args.config)
    single = estimate(config, 1, args.load_min, args.per_lang_min)
    grouped = estimate(config, args.group or 10_000, args.load_min, args.per_lang_min)
    print(f"{args.config}: load {args.load_min} min/job, {args.per_lang_min} min/language")
    for name, e in (("one language per job", single), ("grouped", grouped)):
        print(f"  {name:22s} generation jobs {e['generation_jobs']:6d}  GPU-h {e['generation_gpu_hours']:8.1f}"
              f"   judge jobs {e['judge_jobs']:6d}  GPU-h {e['judge_gpu_hours']:8.1f}")
    total_single = single["generation_gpu_hours"] + single["judge_gpu_hours"]
    total_grouped = grouped["generation_gpu_hours"] + grouped["judge_gpu_hours"]
    print(f"  grouping saves {total_single - total_grouped:.0f} GPU-h ({total_single / total_grouped:.1f}x less)")


if __name__ == "__main__":
    main()
