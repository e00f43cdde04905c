"""Stage `ablation-plan`: the deactivation interventions of one ablation condition."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import seed
import logging

HELP = "ablation plan (interventions contract) for condition xici, shuffled or random"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experts", required=True, help="experts contract parquet from the xici stage")
    p.add_argument(
        "--generations", nargs="+", required=True, help="generations parquet file(s): routing metadata (moe_layers, num_experts)"
    )
    p.add_argument("--condition", required=True, choices=["xici", "shuffled", "random"])
    p.add_argument("--cap", type=int, default=None, help="use experts with rank <= CAP (default: every expert in the file)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the derangement / random sets (default 0)")
    p.add_argument(
        "--exclude-first", type=int, default=0, help="MoE layers excluded at the start (random condition draws from the rest)"
    )
    p.add_argument("--exclude-last", type=int, default=0, help="MoE layers excluded at the end")
    p.add_argument("--out", required=True, help="interventions parquet (item_id, layer, expert, mode, strength)")


def run(args: argparse.Namespace) -> int:
    from moe_routing.xici.ablation import make_plan
    from moe_routing.core.errors import ContractError
    from moe_routing.core.io import read_frame, read_routing_metadata, write_parquet
    from moe_routing.xici.identify import kept_layer_positions

    meta = read_routing_metadata(args.generations[0])
    for g in args.generations[1:]:
        m = read_routing_metadata(g)
        if m["moe_layers"] != meta["moe_layers"] or m["num_experts"] != meta["num_experts"]:
            raise ContractError(f"{g}: routing metadata differs from {args.generations[0]}")
    layers = list(meta["moe_layers"])
    kept = [layers[i] for i in kept_layer_positions(len(layers), args.exclude_first, args.exclude_last)]
    experts = read_frame(args.experts, contract="experts")
    plan = make_plan(experts, args.condition, args.cap, args.seed, kept, int(meta["num_experts"]))
    log.info("%s plan: %d questions, %d deactivations", args.condition, plan["item_id"].n_unique(), plan.height)
    from moe_routing.core.io import read_schema
    from moe_routing.core.provenance import EXPERTS_QUESTIONS, RUN

    base = (read_schema(args.generations[0]).metadata or {}).get(RUN)
    plan_meta = {EXPERTS_QUESTIONS: str(experts["item_id"].n_unique()).encode(), **({RUN: base} if base else {})}
    write_parquet(plan, args.out, metadata=plan_meta)
    return 0
