"""Stage `generate`: run a model on items files, with router capture and optional interventions."""

from __future__ import annotations

import argparse
import logging

HELP = "generate answers for items files with router capture (generations contract) and optional interventions"

log = logging.getLogger(__name__)


def parse_engine_args(pairs: list[str]) -> dict:
    """['tensor_parallel_size=4', 'enforce_eager=true'] -> {'tensor_parallel_size': 4, 'enforce_eager': True}."""
    import yaml

    from moe_routing.errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--engine-arg {pair!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (safetensors)")
    p.add_argument("--items", action="append", required=True, metavar="ITEMS.parquet",
                   help="items file; repeat for several languages in one job (paired in order with --out)")
    p.add_argument("--out", action="append", required=True, metavar="OUT.parquet", help="generations file to write; repeat")
    p.add_argument("--interventions", metavar="FILE", help="interventions parquet (item_id '*' = every item)")
    p.add_argument("--only-intervened", action="store_true",
                   help="re-ask only items with at least one item-specific intervention (ablation reruns)")
    p.add_argument("--backend", default="hf", help="generation backend: hf or vllm (default hf)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per batch (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="generated tokens; 0 = prefill only (default 32)")
    p.add_argument("--no-capture", action="store_true", help="do not record routing (no routing columns)")
    p.add_argument("--no-chat-template", action="store_true", help="feed the plain prompt instead of the chat template")
    p.add_argument("--enable-thinking", action="store_true", help="leave thinking on where the chat template supports it")
    p.add_argument("--consistency-pairs", type=int, default=500, help="token pairs sampled for consistency (default 500)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="weights dtype (default auto)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own modelling code")
    p.add_argument("--seed", type=int, default=0, help="seed for activation epsilon and consistency pairs (default 0)")
    p.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="backend engine option, e.g. tensor_parallel_size=4 or max_model_len=4096 for vLLM "
                        "(VALUE parsed as YAML: numbers, booleans, strings); repeat")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing import interventions as iv
    from moe_routing.backends import GenerationOptions, LoadOptions, load_backend
    from moe_routing.errors import ConfigError
    from moe_routing.io import read_frame, write_parquet

    if len(args.items) != len(args.out):
        raise ConfigError(f"--items given {len(args.items)} times but --out {len(args.out)} times; pair them one to one")
    if len(set(args.out)) != len(args.out):
        raise ConfigError("--out paths must differ")
    # validate every input before loading the model, so bad input leaves no output
    items = [read_frame(path, "items") for path in args.items]
    plan = iv.read_interventions(args.interventions) if args.interventions else None
    if args.only_intervened and plan is None:
        raise ConfigError("--only-intervened needs --interventions")

    extra = parse_engine_args(args.engine_arg)
    backend = load_backend(args.backend, args.model, LoadOptions(dtype=args.dtype, device=args.device,
                                                                 trust_remote_code=args.trust_remote_code, extra=extra))
    if plan is not None and hasattr(backend, "moe_layers"):
        iv.validate(plan, backend.moe_layers, backend.num_experts, str(args.interventions))
    options = GenerationOptions(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                capture=not args.no_capture, seed=args.seed, consistency_pairs=args.consistency_pairs,
                                enable_thinking=args.enable_thinking, use_chat_template=not args.no_chat_template)
    wanted = iv.intervened_items(plan) if args.only_intervened else None
    total = 0.0
    try:
        for path, frame, out in zip(args.items, items, args.out):
            if wanted is not None:
                frame = frame.filter(pl.col("item_id").is_in(sorted(wanted)))
            table = backend.generate(frame, plan, options)
            write_parquet(table, out)
            seconds = getattr(backend, "generate_seconds", float("nan"))
            total += seconds
            log.info("%s: %d sequences in %.1fs -> %s", path, table.num_rows, seconds, out)
    finally:
        # a vLLM engine stops at once instead of at interpreter exit (seconds per job)
        getattr(backend, "close", lambda: None)()
    log.info("load %.1fs, generate %.1fs", backend.load_seconds, total)
    return 0
