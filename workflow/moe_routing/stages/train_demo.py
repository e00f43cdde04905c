"""Stage `train-demo`: train the demo tokenizer and tiny Qwen3-MoE on the demo corpus (CPU, seeded)."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import number, seed
import logging

HELP = "train the demo word-level tokenizer and tiny Qwen3MoeForCausalLM; save it like a hub checkpoint"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from moe_routing.demo.train import TrainConfig

    d = TrainConfig()
    p.add_argument("--corpus", required=True, help="JSONL chat corpus written by demo-world")
    p.add_argument(
        "--check-items",
        nargs="+",
        required=True,
        metavar="ITEMS.parquet",
        help="parallel short-answer items files, one per language, scored during training to pick "
        "the checkpoint with the most mixed facts",
    )
    p.add_argument("--out", required=True, help="model folder to write (e.g. resources/models/demo)")
    p.add_argument("--seed", type=seed, default=d.seed, help=f"seed for init and data order (default {d.seed})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"conversations per step (default {d.batch_size})")
    p.add_argument("--lr", type=number(0, lo_open=True), default=d.lr, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help=f"steps between checks (default {d.eval_every})")
    p.add_argument(
        "--min-english-accuracy",
        type=float,
        default=d.min_english_accuracy,
        help=f"checkpoints below this English check accuracy are not kept (default {d.min_english_accuracy})",
    )
    p.add_argument("--threads", type=int, default=d.threads, help=f"torch CPU threads (default {d.threads})")
    p.add_argument("--hidden-size", type=int, default=d.hidden_size, help=f"(default {d.hidden_size}; head_dim must stay 32)")
    p.add_argument("--layers", type=int, default=d.layers, help=f"(default {d.layers})")
    p.add_argument("--experts", type=int, default=d.experts, help=f"(default {d.experts})")
    p.add_argument("--top-k", type=int, default=d.top_k, help=f"(default {d.top_k})")


def run(args: argparse.Namespace) -> int:
    from moe_routing.demo.world import read_corpus
    from moe_routing.demo.train import TrainConfig, load_check_items, train

    cfg = TrainConfig(
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        min_english_accuracy=args.min_english_accuracy,
        threads=args.threads,
        hidden_size=args.hidden_size,
        heads=args.hidden_size // 32,
        kv_heads=min(2, args.hidden_size // 32),
        layers=args.layers,
        experts=args.experts,
        top_k=args.top_k,
    )
    corpus = read_corpus(args.corpus)
    check = load_check_items(args.check_items)
    report = train(corpus, check, cfg, args.out)
    sel = report.selected
    acc = sel["accuracy"]
    log.info(
        "saved %s (step %d of %d, %.0f s): mixed %.2f, accuracy %s",
        args.out,
        report.selected_step,
        report.steps,
        report.wall_seconds,
        sel["mixed"],
        ", ".join(f"{k}={v:.2f}" for k, v in sorted(acc.items())),
    )
    return 0
