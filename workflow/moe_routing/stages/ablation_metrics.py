"""Stage `ablation-metrics`: ASR, SGR, RD and now-wrong-everywhere of one dataset x condition."""

from __future__ import annotations

import argparse
import logging

HELP = "ablation metrics (ASR, SGR, RD, questions now wrong everywhere) from original + ablated judgments and the plan"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--original", nargs="+", required=True, help="judgments parquet files of the unablated run")
    p.add_argument("--ablated", nargs="+", required=True, help="judgments parquet files of the ablated run")
    p.add_argument("--plan", required=True, help="interventions parquet of this condition (ablation-plan output)")
    p.add_argument("--dataset", required=True, help="dataset name written into the output row")
    p.add_argument("--condition", required=True, choices=["xici", "shuffled", "random"])
    p.add_argument("--cap", type=int, default=None, help="cap the plan was made with (written into the row; informational)")
    p.add_argument("--out", required=True, help="one-row TSV (.tsv) or Parquet (.parquet)")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.xici.ablation import ablation_metrics, metrics_frame
    from moe_routing.core import provenance
    from moe_routing.core.io import read_frame, read_schema, write_parquet, write_tsv

    plan = read_frame(args.plan, contract="interventions")
    original, original_runs = provenance.read_judgments(args.original)
    ablated, ablated_runs = provenance.read_judgments(args.ablated)
    plan_meta = read_schema(args.plan).metadata
    for run in original_runs:
        if provenance.run_of(plan_meta) and run != provenance.run_of(plan_meta):
            raise provenance.ContractError(
                f"{args.original[0]}: judgments of run {run!r}, the plan is of {provenance.run_of(plan_meta)!r}"
            )
    for run in ablated_runs:
        provenance.check_plan_run(args.plan, plan_meta, run)
    m = ablation_metrics(original, ablated, plan)
    frame = metrics_frame([m], {"dataset": args.dataset, "condition": args.condition}).with_columns(
        cap=pl.lit(args.cap, dtype=pl.Int64)
    )
    frame = frame.select("dataset", "condition", "cap", *[c for c in frame.columns if c not in ("dataset", "condition", "cap")])
    log.info("%s/%s: ASR %s SGR %s over %d pairs", args.dataset, args.condition, m["asr"], m["sgr"], m["pairs"])
    if str(args.out).endswith(".parquet"):
        write_parquet(frame, args.out)
    else:
        write_tsv(frame, args.out)
    return 0
