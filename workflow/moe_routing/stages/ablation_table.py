"""Stage `ablation-table`: paper Table 2 (rows 1-18, per dataset and total) as TSV."""

from __future__ import annotations

import argparse

HELP = "paper Table 2: XICI and baseline ablation metrics per dataset and in total"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", nargs=3, action="append", required=True, metavar=("NAME", "SUMMARY", "BLACKLIST"),
        help="dataset name, its xici --summary parquet and --blacklist parquet; repeat per dataset (column order)",
    )
    p.add_argument("--metrics", nargs="+", required=True, help="ablation-metrics files (.tsv or .parquet), any order")
    p.add_argument("--cap", type=int, default=None, help="use only metrics rows of this cap (when files of several caps are given)")
    p.add_argument("--out", required=True, help="TSV path")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.errors import MoeRoutingError
    from moe_routing.io import read_frame, write_tsv
    from moe_routing.tables import ablation_table

    summaries, sizes = {}, {}
    for name, summary, blacklist in args.dataset:
        if name in summaries:
            raise MoeRoutingError(f"--dataset {name} given twice")
        summaries[name] = read_frame(summary, required=["item_id", "outcome", "n_langs"])
        sizes[name] = read_frame(blacklist, required=["layer", "expert"]).height
    metrics = pl.concat([read_metrics(p) for p in args.metrics], how="diagonal_relaxed")
    if args.cap is not None:
        metrics = metrics.filter(pl.col("cap") == args.cap)
    write_tsv(ablation_table(summaries, sizes, metrics), args.out)
    return 0


def read_metrics(path: str):
    import polars as pl

    from moe_routing.io import read_frame, read_tsv

    if str(path).endswith(".parquet"):
        return read_frame(path, required=["dataset", "condition"])
    return read_tsv(path, schema_overrides={"dataset": pl.String, "condition": pl.String, "cap": pl.Int64})
