"""Stage `demo-score`: the demo's results against the planted truth of the demo model (truth_scores.tsv)."""

from __future__ import annotations

import argparse
import logging

HELP = "score the demo's XICI, ablation, routing study and steering against the demo model's planted truth"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--truth", required=True, help="planted_truth.json of the demo model")
    p.add_argument("--model", required=True, metavar="DIR", help="the demo model (the planted-expert ablation runs it)")
    p.add_argument("--dataset", required=True, help="the XICI dataset's name")
    p.add_argument("--items", nargs="+", required=True, metavar="ITEMS.parquet", help="its items, one file per language")
    p.add_argument("--judgments", nargs="+", required=True, metavar="J.parquet", help="its base-run judgments")
    p.add_argument("--experts", required=True, help="its experts.parquet")
    p.add_argument("--xici-summary", required=True, help="its xici_summary.parquet (which questions are mixed)")
    p.add_argument("--xici-plan", required=True, help="the XICI ablation plan at the main cap (the questions ablated)")
    p.add_argument("--cap-sweep", required=True, help="cap_sweep.tsv (ASR of each condition by cap)")
    p.add_argument("--caps", required=True, type=lambda s: [int(x) for x in s.split(",")], help="the caps, comma-separated")
    p.add_argument("--main-cap", required=True, type=int)
    p.add_argument("--exclude-first", type=int, default=0, help="MoE layers XICI excludes at the start")
    p.add_argument("--exclude-last", type=int, default=0, help="MoE layers XICI excludes at the end")
    p.add_argument("--judge", default="contains", help="the dataset's judge (default contains)")
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--language-experts", required=True, help="routing language_experts.tsv")
    p.add_argument("--task-experts", required=True, help="routing task_experts.tsv")
    p.add_argument("--tau", type=float, required=True, help="the routing study's τ")
    p.add_argument("--divergence", required=True, help="routing divergence.tsv")
    p.add_argument("--steering-base", nargs="+", required=True, metavar="J.parquet", help="steering benchmark, base judgments")
    p.add_argument("--steering-steered", nargs="+", required=True, metavar="J.parquet", help="the same, steered")
    p.add_argument("--english", default="en")
    p.add_argument("--out", required=True, metavar="truth_scores.tsv")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.demo import score as ds
    from moe_routing.xici.ablation import ablation_metrics
    from moe_routing.capture.backends import GenerationOptions, LoadOptions, load_backend
    from moe_routing.core.io import read_frame, read_tsv, write_tsv
    from moe_routing.judging.judge import judge_frame

    truth = ds.load_truth(args.truth)
    kept = ds.kept_layers(truth, args.exclude_first, args.exclude_last)
    planted = ds.planted_experts(truth, kept)
    experts = read_frame(args.experts)
    mixed = ds.mixed_questions(read_frame(args.xici_summary))
    rows = ds.xici_rows(ds.xici_scores(experts, planted, mixed, args.caps))

    # the ceiling: each question of the XICI plan with its planted experts deactivated, re-asked
    asked = sorted(set(read_frame(args.xici_plan, "interventions")["item_id"].to_list()))
    original = pl.concat([read_frame(p, "judgments") for p in args.judgments])
    items = pl.concat([read_frame(p, "items") for p in args.items], how="vertical_relaxed")
    plan = ds.planted_plan(truth, asked, kept)
    planted_asr = None
    if plan.height:
        backend = load_backend("hf", args.model, LoadOptions(dtype="float32", device="cpu"))
        options = GenerationOptions(batch_size=64, max_new_tokens=args.max_new_tokens, capture=False)
        generations = pl.from_arrow(backend.generate(items.filter(pl.col("item_id").is_in(asked)), plan, options))
        ablated = judge_frame(items, generations, args.judge)
        planted_asr = ablation_metrics(original, ablated, plan)["asr"]
    rows += ds.ablation_rows(read_tsv(args.cap_sweep), args.main_cap, planted_asr, args.dataset)

    divergence = read_tsv(args.divergence)
    compared = sorted(set(divergence["lang"].to_list()))
    rows += ds.routing_scores(truth, read_tsv(args.language_experts), read_tsv(args.task_experts), args.tau, compared)
    rows += ds.divergence_rows(*ds.divergence_scores(truth, divergence))
    base = pl.concat([read_frame(p, "judgments") for p in args.steering_base])
    steered = pl.concat([read_frame(p, "judgments") for p in args.steering_steered])
    rows += ds.steering_rows(ds.steering_effect(base, steered, args.english))
    scores = ds.score_frame(rows)
    write_tsv(scores, args.out)
    for key, value in ds.summary_lines(scores, args.main_cap):
        log.info("%s: %s", key, value)
    return 0
