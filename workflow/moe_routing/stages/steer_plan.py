"""Stage `steer-plan`: a task's experts (Δ > τ, English task set vs English parallel set) in target layers → interventions."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import number
import logging

HELP = "choose a task's experts by Δ > τ in target layers (from analyze's specialisation table) and write a steering interventions file (item_id '*')"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--specialisation", required=True, metavar="S.tsv", help="analyze's specialisation.tsv (comparison, layer, expert, delta)"
    )
    p.add_argument("--task", required=True, help="task whose experts are steered (its comparison is TASK-vs-ENGLISH)")
    p.add_argument("--english", default="en", help="language code of English (default en)")
    p.add_argument(
        "--layers", nargs="+", required=True, help="target layers as model layer indices, e.g. '7-34', '4,5,8-10' or '7 8 9'"
    )
    p.add_argument("--tau", type=number(), required=True, help="Δ threshold: experts with Δ > τ are steered")
    p.add_argument(
        "--mode",
        choices=["soft", "activate", "hard"],
        default="soft",
        help="soft: z += λ·std(z); activate (= hard): force-activation z = max(z)+ε (default soft)",
    )
    p.add_argument("--strength", type=number(-1, 1), default=0.5, help="λ for soft steering (default 0.5)")
    p.add_argument("--run", help="the steered run this plan is for ({model}/{benchmark}/steered), recorded in the file")
    p.add_argument("--out", required=True, metavar="I.parquet", help="interventions file to write")


def run(args: argparse.Namespace) -> int:
    from moe_routing.core.io import read_tsv, write_parquet
    from moe_routing.multilingual.steering import comparison_delta, parse_layers, plan_steering

    table = read_tsv(args.specialisation, required=["comparison", "layer", "expert", "delta"])
    delta, moe_layers = comparison_delta(table, f"{args.task}-vs-{args.english}", args.specialisation)
    plan = plan_steering(delta, moe_layers, parse_layers(args.layers), args.tau, args.mode, args.strength)
    from moe_routing.core.provenance import RUN

    write_parquet(plan, args.out, metadata={RUN: args.run.encode()} if args.run else None)
    log.info("%d steering intervention(s) -> %s", plan.height, args.out)
    return 0
