"""Stage `steering-table`: base vs steered accuracy per language (routing paper Tables 1–2)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "per-language base vs steered accuracy with non-pivot and low-resource means -> steering_table.tsv"

log = logging.getLogger(__name__)


class _StartGroup(argparse.Action):
    """--benchmark NAME: the --base/--steered files that follow belong to NAME."""

    def __call__(self, parser, namespace, values, option_string=None):
        groups = getattr(namespace, "groups", None) or []
        groups.append({"name": values, "base": [], "steered": []})
        namespace.groups = groups


class _AddToGroup(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        groups = getattr(namespace, "groups", None) or []
        if not groups:
            groups.append({"name": None, "base": [], "steered": []})
        groups[-1][self.dest].extend(values)
        namespace.groups = groups


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.set_defaults(groups=None)
    p.add_argument("--benchmark", action=_StartGroup, metavar="NAME", help="starts a benchmark group; its --base/--steered follow (repeat for several benchmarks)")
    p.add_argument("--base", nargs="+", action=_AddToGroup, metavar="J.parquet", help="judgments of the unsteered run (any number of languages)")
    p.add_argument("--steered", nargs="+", action=_AddToGroup, metavar="J.parquet", help="judgments of the steered run")
    p.add_argument("--pivot", default="en", help="language left out of the non-pivot mean (default en)")
    p.add_argument("--low-resource", nargs="*", default=[], metavar="LANG", help="languages averaged in the low-resource mean")
    p.add_argument("--out", required=True, metavar="steering_table.tsv")


def _default_name(paths: list[str]) -> str:
    # results/{model}/{dataset}/judged/{lang}.parquet -> dataset
    p = Path(paths[0])
    return p.parent.parent.name if p.parent.name == "judged" else "benchmark"


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.errors import ConfigError
    from moe_routing.io import read_frame, write_tsv
    from moe_routing.steering import steering_table

    if not args.groups:
        raise ConfigError("give --base and --steered judgments (optionally grouped by --benchmark NAME)")
    tables = []
    for g in args.groups:
        name = g["name"] or _default_name(g["base"] or g["steered"] or ["x"])
        if not g["base"] or not g["steered"]:
            raise ConfigError(f"benchmark {name!r}: needs both --base and --steered judgments")
        base = pl.concat([read_frame(p, "judgments").select("item_id", "lang", "correct") for p in g["base"]])
        steered = pl.concat([read_frame(p, "judgments").select("item_id", "lang", "correct") for p in g["steered"]])
        try:
            t = steering_table(base, steered, args.pivot, args.low_resource)
        except ConfigError as exc:
            raise ConfigError(f"benchmark {name!r}: {exc}") from None
        tables.append(t.select(pl.lit(name).alias("benchmark"), pl.all()))
    table = pl.concat(tables)
    write_tsv(table, args.out)
    log.info("steering table (%d rows, %d benchmark(s)) -> %s", table.height, len(tables), args.out)
    return 0
