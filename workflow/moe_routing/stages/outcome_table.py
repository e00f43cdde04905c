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
    from moe_routing.core.io import write_tsv
    from moe_routing.core.provenance import read_judgments
    from moe_routing.xici.tables import outcome_table

    # each file covers its generations row for row: a judgments file with rows missing would change the outcomes
    judgments = {name: read_judgments(paths)[0] for name, paths in group_named(args.judgments).items()}
    write_tsv(outcome_table(judgments, english=args.english), args.out)
    return 0
