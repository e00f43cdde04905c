"""Stage `ablation-table`: paper Table 2 (rows 1-18, per dataset and total) as TSV."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import add_named, single_named

HELP = "paper Table 2: XICI and baseline ablation metrics per dataset and in total"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_named(p, "--summary", "the xici stage's --summary file of each dataset (column order)")
    add_named(p, "--blacklist", "the xici stage's --blacklist file of each dataset")
    p.add_argument("--metrics", nargs="+", required=True, help="ablation-metrics files (.tsv or .parquet) of one cap, any order")
    p.add_argument("--out", required=True, help="TSV path")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.core.errors import ConfigError
    from moe_routing.core.io import read_frame, write_tsv
    from moe_routing.xici.tables import ablation_table

    summaries = {
        name: read_frame(path, required=["item_id", "outcome", "n_langs"])
        for name, path in single_named(args.summary, "--summary").items()
    }
    blacklists = single_named(args.blacklist, "--blacklist")
    if set(blacklists) != set(summaries):
        raise ConfigError(f"--summary names {sorted(summaries)} and --blacklist names {sorted(blacklists)} differ")
    sizes = {name: read_frame(path, required=["layer", "expert"]).height for name, path in blacklists.items()}
    metrics = pl.concat([read_metrics(p) for p in args.metrics], how="diagonal_relaxed")
    caps = sorted(set(metrics["cap"].drop_nulls().to_list())) if "cap" in metrics.columns else []
    if len(caps) > 1:
        raise ConfigError(f"--metrics mixes caps {caps}; Table 2 is one cap (the cap sweep is `figures cap-sweep`)")
    write_tsv(ablation_table(summaries, sizes, metrics), args.out)
    return 0


def read_metrics(path: str):
    import polars as pl

    from moe_routing.core.io import read_frame, read_tsv

    if str(path).endswith(".parquet"):
        return read_frame(path, required=["dataset", "condition"])
    return read_tsv(path, schema_overrides={"dataset": pl.String, "condition": pl.String, "cap": pl.Int64})
