"""Stage `outcome-table`: paper Table 1 (question outcomes per dataset) as TSV."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import add_named, group_named

HELP = "paper Table 1: English accuracy, mean accuracy, all correct / all incorrect / mixed per dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_named(p, "--judgments", "judgments files of each dataset (column order = first appearance)")
    p.add_argument("--english", default="en", help="language code of English (default en)")
    p.add_argument("--out", required=True, help="TSV path")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.core.io import read_frame, write_tsv
    from moe_routing.xici.tables import outcome_table

    judgments = {
        name: pl.concat([read_frame(p, contract="judgments").select("item_id", "lang", "correct") for p in paths])
        for name, paths in group_named(args.judgments).items()
    }
    write_tsv(outcome_table(judgments, english=args.english), args.out)
    return 0
