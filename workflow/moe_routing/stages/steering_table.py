"""Stage `steering-table`: base vs steered accuracy per language (routing paper Tables 1–2)."""

from __future__ import annotations

import argparse
import logging

from moe_routing.stages._args import add_named, group_named

HELP = "per-language base vs steered accuracy with non-English and low-resource means -> steering_table.tsv"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_named(p, "--base", "judgments of the unsteered run of each benchmark")
    add_named(p, "--steered", "judgments of the steered run of each benchmark")
    p.add_argument("--english", default="en", help="language left out of the non-English mean (default en)")
    p.add_argument("--low-resource", nargs="*", default=[], metavar="LANG", help="languages averaged in the low-resource mean")
    p.add_argument("--out", required=True, metavar="steering_table.tsv")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.core.errors import ConfigError
    from moe_routing.core.io import read_frame, write_tsv
    from moe_routing.multilingual.steering import steering_table

    base, steered = group_named(args.base), group_named(args.steered)
    if set(base) != set(steered):
        raise ConfigError(f"--base benchmarks {sorted(base)} and --steered benchmarks {sorted(steered)} differ")
    tables = []
    for name, base_files in base.items():
        judgments = [
            pl.concat([read_frame(p, "judgments").select("item_id", "lang", "correct") for p in files])
            for files in (base_files, steered[name])
        ]
        try:
            t = steering_table(*judgments, args.english, args.low_resource)
        except ConfigError as exc:
            raise ConfigError(f"benchmark {name!r}: {exc}") from None
        tables.append(t.select(pl.lit(name).alias("benchmark"), pl.all()))
    table = pl.concat(tables)
    write_tsv(table, args.out)
    log.info("steering table (%d rows, %d benchmark(s)) -> %s", table.height, len(tables), args.out)
    return 0
