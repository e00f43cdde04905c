"""Stage `stand-in`: build the tiny stand-in checkpoint of a paper model (rehearsals, see moe_routing.rehearsal.stand_ins)."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import seed
import logging

HELP = "write a tiny random checkpoint of a paper model's family, layer layout, chat template and stop tokens"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from moe_routing.rehearsal.stand_ins import HIDDEN, STAND_INS

    p.add_argument("--like", required=True, choices=sorted(STAND_INS), help="hub id of the model to stand in for")
    p.add_argument("--out", required=True, help="model folder to write (e.g. resources/models/stand-ins/qwen3)")
    p.add_argument(
        "--judge",
        action="store_true",
        help="the LLM judge's stand-in: answers YES or NO (decided by question and gold answer), then stops",
    )
    p.add_argument("--seed", type=seed, default=0, help="weights seed (default 0)")
    p.add_argument("--hidden", type=int, default=HIDDEN, help=f"hidden size, a multiple of 32 (default {HIDDEN})")


def run(args: argparse.Namespace) -> int:
    from moe_routing.rehearsal.stand_ins import build_stand_in, describe

    out = build_stand_in(args.like, args.out, judge=args.judge, seed=args.seed, hidden=args.hidden)
    log.info("wrote %s%s: %s", out, " (judge)" if args.judge else "", describe(args.like))
    return 0
