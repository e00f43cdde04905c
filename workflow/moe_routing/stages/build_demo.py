"""Stage `build-demo`: construct the demo Qwen3-MoE with planted mechanisms and write its planted truth."""

from __future__ import annotations

import argparse
import logging

HELP = "construct the demo word-level tokenizer and Qwen3MoeForCausalLM with planted experts; write planted_truth.json"

log = logging.getLogger(__name__)


def _layers(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated layer indices") from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    from moe_routing.demo.model import BuildConfig

    d = BuildConfig()
    p.add_argument(
        "--world",
        required=True,
        help="world summary JSON written by demo-world: its facts, their languages, and the items "
        "(rebuilt from it: the vocabulary, and every prompt of the self-check)",
    )
    p.add_argument("--out", required=True, help="model folder to write (e.g. resources/models/demo)")
    p.add_argument("--english", default="en", help="the English language code (default en)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of the planted experts and codes (default {d.seed})")
    p.add_argument("--layers", type=int, default=d.layers, help=f"MoE layers (default {d.layers})")
    p.add_argument("--experts", type=int, default=d.experts, help=f"experts per layer (default {d.experts})")
    p.add_argument(
        "--fact-pool", type=int, default=d.fact_pool, help=f"experts per middle layer holding facts (default {d.fact_pool})"
    )
    p.add_argument("--task-layers", type=_layers, default=[], help="the two middle layers of the task experts (default: 2,3)")
    p.add_argument(
        "--task-skilled",
        type=int,
        default=d.task_skilled,
        help="non-English languages (config order) that solve word problems unsteered (default: half)",
    )
    p.add_argument(
        "--steering-strength",
        type=float,
        default=d.steering_strength,
        help=f"the soft steering λ whose margin the self-check measures (default {d.steering_strength})",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from moe_routing.demo.model import BuildConfig, build_model, load_world, save, world_items
    from moe_routing.demo.truth import TRUTH_FILE, self_check, truth_dict

    cfg = BuildConfig(
        seed=args.seed,
        layers=args.layers,
        experts=args.experts,
        fact_pool=args.fact_pool,
        task_layers=args.task_layers,
        task_skilled=args.task_skilled,
        steering_strength=args.steering_strength,
    )
    world = load_world(args.world)
    tables = world_items(world)
    model, tokenizer, plan, _ = build_model(world, tables, cfg)
    margins, checks = self_check(model, tokenizer, plan, tables, cfg.steering_strength)
    truth = truth_dict(plan, world, args.english)
    truth["margins"], truth["checks"] = margins, checks
    save(model, tokenizer, {TRUTH_FILE: json.dumps(truth, ensure_ascii=False, indent=1)}, args.out)
    n = sum(p.numel() for p in model.parameters())
    log.info("saved %s: %d parameters, vocabulary %d; smallest margins %s", args.out, n, len(tokenizer), margins)
    return 0
