"""Stage `judge`: score generations against their items (judgments contract)."""

from __future__ import annotations

import argparse
import logging

from moe_routing.stages._args import add_items

HELP = "judge generations against their items' gold answers (exact, contains, mc, number or an LLM judge)"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from moe_routing.judging.judge import DEFAULT_JUDGE_PROMPT, JUDGES

    add_items(p, "items files of the languages in --generations")
    p.add_argument("--generations", required=True, metavar="G.parquet", help="generations file (one or several languages)")
    p.add_argument("--out", required=True, metavar="J.parquet", help="judgments file to write")
    p.add_argument(
        "--judge",
        required=True,
        choices=JUDGES,
        help="exact/contains: normalised string match; mc: option letter; number: last number (MGSM); llm: YES/NO judge model",
    )
    p.add_argument("--judge-model", help="checkpoint of the judge model (llm judge)")
    p.add_argument("--judge-backend", default="hf", help="backend running the judge model (default hf)")
    p.add_argument(
        "--judge-prompt",
        default=str(DEFAULT_JUDGE_PROMPT),
        help="judge prompt template with [system]/[user] sections (default %(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="judge model batch size (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="judge model reply length (default 16)")
    p.add_argument("--device", default="auto", help="judge model device: auto, cpu, cuda (default auto)")
    p.add_argument("--dtype", default="auto", help="judge model dtype (default auto)")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.core.errors import ConfigError
    from moe_routing.core.io import read_frame, write_parquet
    from moe_routing.judging.judge import judge_frame, load_judge_prompt
    from moe_routing.core.io import read_schema
    from moe_routing.core.provenance import check_inputs, judgments_metadata

    # the items the generations were made from are still the ones given here (Snakemake compares mtimes only)
    check_inputs(args.generations, read_schema(args.generations).metadata)
    backend = prompt = None
    if args.judge == "llm":
        if not args.judge_model:
            raise ConfigError("--judge llm needs --judge-model PATH")
        from moe_routing.capture.backends import LoadOptions, load_backend

        prompt = load_judge_prompt(args.judge_prompt)
        backend = load_backend(args.judge_backend, args.judge_model, LoadOptions(dtype=args.dtype, device=args.device))
    try:
        items = pl.concat([read_frame(path, "items") for path in args.items], how="vertical_relaxed")
        gens = read_frame(args.generations, "generations")
        judgments = judge_frame(
            items,
            gens,
            args.judge,
            backend=backend,
            prompt=prompt,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            items_name=" ".join(args.items),
            generations_name=args.generations,
        )
    finally:
        # a vLLM judge engine stops at once instead of at interpreter exit (seconds per job)
        getattr(backend, "close", lambda: None)()
    write_parquet(judgments, args.out, metadata=judgments_metadata(args.generations))
    acc = judgments["correct"].mean() if judgments.height else float("nan")
    log.info("%s: %d judged, accuracy %.3f -> %s", args.generations, judgments.height, acc, args.out)
    return 0
