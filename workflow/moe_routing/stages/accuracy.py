"""Stage `accuracy`: judgments → per-language accuracy table (lang, accuracy, n)."""

from __future__ import annotations

import argparse
import logging

HELP = "per-language accuracy (lang, accuracy, n) from judgments files"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--judgments",
        nargs="+",
        action="extend",
        required=True,
        metavar="J.parquet",
        help="judgments files (any number of languages)",
    )
    p.add_argument("--out", required=True, metavar="A.tsv")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.core.errors import ContractError
    from moe_routing.core.io import read_frame, write_tsv
    from moe_routing.judging.judge import accuracy_table

    frames = [read_frame(p, "judgments").select("item_id", "lang", "correct") for p in args.judgments]
    judgments = pl.concat(frames)
    dup = judgments.group_by("item_id", "lang").len().filter(pl.col("len") > 1)
    if dup.height:
        raise ContractError(f"(item_id, lang) {dup.row(0)[:2]} is judgments {dup['len'][0]} times across {args.judgments}")
    table = accuracy_table(judgments)
    write_tsv(table, args.out)
    log.info("accuracy of %d language(s) -> %s", table.height, args.out)
    return 0
