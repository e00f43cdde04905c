"""Stage `mirror`: write a small synthetic copy of a dataset source in its published layout (rehearsals)."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import seed
import logging

HELP = "write a seeded synthetic local copy of a dataset source, laid out as published, for its loader"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from moe_routing.rehearsal.mirrors import DEFAULT_ITEMS, MIRRORS

    p.add_argument(
        "--source", required=True, choices=sorted(MIRRORS), help="dataset source (as in a config's datasets.<name>.source)"
    )
    p.add_argument("--out", required=True, help="folder to write (replaced); the loader path is printed")
    p.add_argument(
        "--languages",
        default=None,
        help="comma-separated languages (default: all the source has; eclektic and gsm8k_instruct always "
        "hold all theirs, as published)",
    )
    p.add_argument("--items", type=int, default=DEFAULT_ITEMS, help=f"items per language (default {DEFAULT_ITEMS})")
    p.add_argument("--seed", type=seed, default=0, help="content seed (default 0)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the dataset's loader options (as prepare gets them): a mirror holds enough items to meet them",
    )


def run(args: argparse.Namespace) -> int:
    from moe_routing.rehearsal.mirrors import mirror_items, write_mirror
    from moe_routing.data.sources import parse_options

    languages = [x.strip() for x in args.languages.split(",") if x.strip()] if args.languages else None
    options = parse_options(args.source, args.option)
    path = write_mirror(args.source, args.out, languages=languages, items=args.items, seed=args.seed, options=options)
    log.info("%s mirror: %d items per language in %s", args.source, mirror_items(args.source, args.items, options), path)
    print(path)
    return 0
