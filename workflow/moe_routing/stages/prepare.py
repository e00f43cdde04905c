"""`prepare`: one language of a dataset source -> an items file (the items contract)."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import seed
import logging

HELP = "load one language of a dataset source (hub id or local path) into an items Parquet file"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from moe_routing.data.sources import SOURCES

    parser.add_argument("--source", required=True, choices=sorted(SOURCES), help="dataset source")
    parser.add_argument(
        "--path",
        default=None,
        help="hub id or local path (save_to_disk dir, data-file dir, or one file); default: the source's hub id",
    )
    parser.add_argument(
        "--lang", required=True, help="language: project code (en, zh, ...) or any alias in resources/lang_codes.tsv"
    )
    parser.add_argument("--out", required=True, help="output items Parquet file")
    parser.add_argument("--split", default=None, help="split to read (default: the source's)")
    parser.add_argument("--config", default=None, help="hub config to read (default: the language's config)")
    parser.add_argument("--ids-file", default=None, help="keep only these item ids (one per line, # comments)")
    parser.add_argument("--limit", type=int, default=None, help="keep at most N items")
    parser.add_argument(
        "--seed",
        type=seed,
        default=None,
        help="with --limit: pick the N items by a seeded hash of their id (same items in every language); without: the first N",
    )
    parser.add_argument("--system", default=None, help="system prompt ('' for none; default: the source's)")
    parser.add_argument("--few-shot", type=int, default=None, help="few-shot exemplars (mgsm; default 2)")
    parser.add_argument(
        "--missing", choices=("error", "skip"), default=None, help="a row without a translation: fail (default) or drop it"
    )
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="source-specific option, repeatable (e.g. format=short, translation=human)",
    )


def run(args: argparse.Namespace) -> int:
    from moe_routing.rehearsal.mirrors import is_mirror
    from moe_routing.data.options import COMMON_OPTIONS
    from moe_routing.data.sources import count_mismatch, load_items, parse_options
    from moe_routing.core.io import write_parquet

    # every common option but cache_dir has a flag of its own
    options = {name: getattr(args, name, None) for name in COMMON_OPTIONS}
    options.update(parse_options(args.source, args.option))
    table = load_items(args.source, args.path, args.lang, **options)
    # a synthetic mirror is small on purpose
    mismatch = None if args.path and is_mirror(args.path) else count_mismatch(args.source, table, **options)
    if mismatch:
        log.warning(mismatch)
    # the items contract, named file included (its stem is its language), before anything is written
    write_parquet(table, args.out, metadata={"source": args.source, "source_path": args.path or ""}, contract="items")
    log.info("%s [%s]: wrote %d items to %s", args.source, table.column("lang")[0].as_py(), table.num_rows, args.out)
    return 0
