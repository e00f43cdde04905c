"""Stage `xici`: identify each mixed question's experts (METHOD XICI steps 1-9)."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import number
import dataclasses
import json
import logging

HELP = "XICI: per mixed question, MWU + BH + magnitude + cap over kept, non-blacklisted experts"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generations", nargs="+", required=True, help="generations parquet files with a 'weights' column")
    p.add_argument("--judgments", nargs="+", required=True, help="judgments parquet files (item_id, lang, correct)")
    p.add_argument("--out", help="experts contract parquet (item_id, layer, expert, p_value, p_adjusted, median_diff, rank)")
    p.add_argument(
        "--summary", help="per-question summary parquet (outcome, group sizes, tested, pass_test, pass_magnitude, kept)"
    )
    p.add_argument("--blacklist", help="blacklisted experts parquet (layer, expert, share)")
    from moe_routing.xici.identify import XiciSettings

    for f in dataclasses.fields(XiciSettings):
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(f.default),
            default=f.default,
            help=f"{f.metadata['help']} (default {f.default})",
        )
    p.add_argument(
        "--sweep-out", help="also write the selection counts of every (alpha, tau, cap) of --alphas/--taus/--caps (TSV)"
    )
    p.add_argument("--alphas", nargs="+", type=number(0, 1, lo_open=True), default=[0.01, 0.05])
    p.add_argument("--taus", nargs="+", type=number(0), default=[0.001, 0.003, 0.005, 0.01, 0.05])
    p.add_argument("--caps", nargs="+", type=int, default=[5, 15, 25, 35, 45, 55, 65])
    p.add_argument("--workers", type=int, default=None, help="threads over questions (default: usable CPUs, at most 8)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from moe_routing.core.errors import MoeRoutingError
    from moe_routing.core.io import write_parquet, write_tsv
    from moe_routing.core.provenance import check_joined
    from moe_routing.xici.identify import XiciSettings, identify, load_routing, sweep

    if not args.out and not args.sweep_out:
        raise MoeRoutingError("give --out and/or --sweep-out")
    settings = XiciSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(XiciSettings)})
    check_joined(args.generations, args.judgments)  # one run; judgments of exactly these generations, every row
    data = load_routing(args.generations, args.judgments)
    log.info(
        "%d sequences, %d questions, %d languages, %d MoE layers x %d experts",
        data.weights.shape[0],
        len(data.item_ids),
        len(data.langs),
        data.num_layers,
        data.num_experts,
    )
    res = identify(data, settings, progress=not args.no_progress, workers=args.workers)
    sm = res.summary
    n_mixed = int((sm["outcome"] == "mixed").sum())
    log.info(
        "blacklist: %d experts; mixed questions: %d (skipped %d not mixed); questions with experts: %d; experts: %d",
        res.blacklist.height,
        n_mixed,
        sm.height - n_mixed,
        int((sm["kept"] > 0).sum()),
        res.experts.height,
    )
    meta = {
        "xici_settings": json.dumps(dataclasses.asdict(settings)),
        "moe_layers": json.dumps([int(x) for x in data.moe_layers]),
        "num_experts": str(data.num_experts),
    }
    if args.out:
        write_parquet(res.experts, args.out, metadata=meta)
    if args.summary:
        write_parquet(res.summary, args.summary, metadata=meta)
    if args.blacklist:
        write_parquet(res.blacklist, args.blacklist, metadata=meta)
    if args.sweep_out:
        write_tsv(sweep(res.tests, args.alphas, args.taus, args.caps), args.sweep_out)
    return 0
