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
    from moe_routing.core.io import read_frame, write_parquet, write_tsv

    def judgments(paths):
        return pl.concat([read_frame(p, contract="judgments").select("item_id", "lang", "correct") for p in paths])

    plan = read_frame(args.plan, contract="interventions")
    m = ablation_metrics(judgments(args.original), judgments(args.ablated), plan)
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
