"""Stage `demo-world`: write the demo datasets (items contract) and the demo training corpus."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import seed
import logging

HELP = "invent the seeded demo world: demo_* item datasets per language and a JSONL chat training corpus"

log = logging.getLogger(__name__)


def _coverage(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        lang, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"coverage entry {part!r} is not LANG=FRACTION")
        try:
            out[lang.strip()] = float(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"coverage entry {part!r}: {value!r} is not a number") from exc
    return out


def _dataset_languages(text: str) -> tuple[str, list[str]]:
    name, sep, langs = text.partition("=")
    if not sep or not name or not langs:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=LANG,LANG,...")
    return name, [lang.strip() for lang in langs.split(",") if lang.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-dir", required=True, help="items root; writes OUT_DIR/{dataset}/{lang}.parquet")
    p.add_argument("--corpus", required=True, help="training corpus JSONL (a CORPUS.world.json summary is written beside it)")
    p.add_argument("--seed", type=seed, default=0, help="world seed (default 0)")
    p.add_argument(
        "--languages",
        default="en,de,fr,es,it,pt,nl,sv,pl,tr",
        help="comma-separated language codes, 'en' required (default: all 10 with templates)",
    )
    p.add_argument("--n-entities", type=int, default=240, help="number of facts, one per invented entity (default 240)")
    p.add_argument(
        "--answer-words",
        type=int,
        default=1,
        help="words per answer; 1 = a unique invented word per fact, more = combinations from a shared pool (default 1)",
    )
    p.add_argument(
        "--coverage",
        type=_coverage,
        default=None,
        help="LANG=FRACTION,... share of facts taught per language (default: en 0.85, others 0.7 → 0.15 in the order given)",
    )
    p.add_argument("--n-parallel", type=int, default=100, help="statements in demo_parallel (default 100)")
    p.add_argument("--n-task", type=int, default=100, help="English word problems in demo_task (default 100)")
    p.add_argument(
        "--datasets",
        nargs="+",
        type=_dataset_languages,
        default=None,
        metavar="NAME=LANG,LANG",
        help="demo datasets to write and their languages (default: all of demo_facts, demo_mc, demo_parallel, "
        "demo_task, demo_task_bench in every language of --languages)",
    )
    p.add_argument("--n-bench", type=int, default=60, help="word problems per language in demo_task_bench (default 60)")


def run(args: argparse.Namespace) -> int:
    from moe_routing.demo.world import build_world, coverage_summary, write_world

    languages = [s.strip() for s in args.languages.split(",") if s.strip()]
    world = build_world(
        languages, n_entities=args.n_entities, seed=args.seed, coverage=args.coverage, answer_words=args.answer_words
    )
    written = write_world(
        world,
        args.out_dir,
        args.corpus,
        datasets=dict(args.datasets) if args.datasets else None,
        n_parallel=args.n_parallel,
        n_task=args.n_task,
        n_bench=args.n_bench,
    )
    measured = coverage_summary(world)
    log.info(
        "demo world seed %d: %d facts, coverage %s",
        args.seed,
        len(world.facts),
        ", ".join(f"{lang}={measured[lang]:.2f}" for lang in world.languages),
    )
    for dataset, paths in written.items():
        log.info("%s: %d language file(s) under %s/%s", dataset, len(paths), args.out_dir, dataset)
    log.info("corpus: %s", args.corpus)
    return 0
