"""Stage `outcome-table`: paper Table 1 (question outcomes per dataset) as TSV."""

from __future__ import annotations

import argparse

HELP = "paper Table 1: English accuracy, mean accuracy, all correct / all incorrect / mixed per dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", nargs="+", action="append", required=True, metavar=("NAME", "JUDGMENTS"),
        help="a dataset name followed by its judgments parquet files; repeat per dataset (column order)",
    )
    p.add_argument("--english", default="en", help="language code of English (default en)")
    p.add_argument("--out", required=True, help="TSV path")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.errors import MoeRoutingError
    from moe_routing.io import read_frame, write_tsv
    from moe_routing.tables import outcome_table

    judgments = {}
    for name, *paths in args.dataset:
        if not paths:
            raise MoeRoutingError(f"--dataset {name}: no judgments files given")
        if name in judgments:
            raise MoeRoutingError(f"--dataset {name} given twice")
        judgments[name] = pl.concat([read_frame(p, contract="judgments").select("item_id", "lang", "correct") for p in paths])
    write_tsv(outcome_table(judgments, english=args.english), args.out)
    return 0
