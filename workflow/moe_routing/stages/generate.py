"""Stage `generate`: run a model on items files, with router capture and optional interventions."""

from __future__ import annotations

import argparse
import logging

from moe_routing.stages._args import add_items, seed

HELP = "generate answers for items files with router capture (generations contract) and optional interventions"

log = logging.getLogger(__name__)


def parse_engine_args(pairs: list[str]) -> dict:
    """['tensor_parallel_size=4', 'enforce_eager=true'] -> {'tensor_parallel_size': 4, 'enforce_eager': True}."""
    import yaml

    from moe_routing.core.errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--engine-arg {pair!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (safetensors)")
    add_items(p, "items files, one per language; all are generated in one pass (one model load) into --out")
    p.add_argument("--out", required=True, metavar="OUT.parquet", help="generations file to write (all languages of --items)")
    p.add_argument("--run", help="the run these generations belong to ({model}/{dataset}[/{variant}]), recorded in the file")
    p.add_argument("--interventions", metavar="FILE", help="interventions parquet (item_id '*' = every item)")
    p.add_argument(
        "--only-intervened",
        action="store_true",
        help="re-ask only items with at least one item-specific intervention (ablation reruns)",
    )
    p.add_argument("--backend", default="hf", help="generation backend: hf or vllm (default hf)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per batch (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="generated tokens; 0 = prefill only (default 32)")
    p.add_argument("--no-capture", action="store_true", help="do not record routing (no routing columns)")
    p.add_argument("--no-chat-template", action="store_true", help="feed the plain prompt instead of the chat template")
    p.add_argument("--enable-thinking", action="store_true", help="leave thinking on where the chat template supports it")
    gp = p.add_mutually_exclusive_group()
    gp.add_argument(
        "--no-generation-prompt",
        dest="generation_prompt",
        action="store_false",
        default=None,
        help="render without the chat template's generation prompt (default when --max-new-tokens 0)",
    )
    gp.add_argument(
        "--generation-prompt",
        dest="generation_prompt",
        action="store_true",
        help="add the generation prompt even when --max-new-tokens is 0 (default when generating)",
    )
    p.add_argument(
        "--token-scope",
        choices=["all", "content"],
        default="all",
        help="routed tokens that count: all (default) or content (the item's own text, not template or "
        "special tokens; generated tokens all count)",
    )
    p.add_argument(
        "--scoring",
        choices=["generate", "loglik"],
        default="generate",
        help="generate: greedy generation; loglik: multiple choice by choice log-likelihood, the LM Evaluation "
        "Harness way (output = the chosen letter, routing captured on the prompt)",
    )
    p.add_argument("--consistency-pairs", type=int, default=500, help="token pairs sampled for consistency (default 500)")
    p.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="weights dtype (default auto)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own modelling code")
    p.add_argument(
        "--adapter", default=None, help="router kind forced on the model's family (checked against its routing at load)"
    )
    p.add_argument("--seed", type=seed, default=0, help="seed for activation epsilon and consistency pairs (default 0)")
    p.add_argument(
        "--engine-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend engine option, e.g. tensor_parallel_size=4 or max_model_len=4096 for vLLM "
        "(VALUE parsed as YAML: numbers, booleans, strings); repeat",
    )


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.capture import interventions as iv
    from moe_routing.core import provenance
    from moe_routing.capture.backends import GenerationOptions, LoadOptions, load_backend
    from moe_routing.core.errors import ConfigError
    from moe_routing.core.io import read_frame, read_schema, write_parquet

    # validate every input before loading the model, so bad input leaves no output
    items = pl.concat([read_frame(path, "items") for path in args.items], how="vertical_relaxed")
    plan = iv.read_interventions(args.interventions) if args.interventions else None
    if args.only_intervened and plan is None:
        raise ConfigError("--only-intervened needs --interventions")
    if plan is not None:
        plan_meta = read_schema(args.interventions).metadata
        provenance.check_plan_run(args.interventions, plan_meta, args.run)
        if args.only_intervened:
            items = items.filter(pl.col("item_id").is_in(sorted(iv.intervened_items(plan))))
            provenance.check_plan_selects(args.interventions, plan_meta, plan.height, items.height, args.run)
    inputs = provenance.generations_metadata(args.run, [*args.items, *([args.interventions] if args.interventions else [])])

    extra = parse_engine_args(args.engine_arg)
    backend = load_backend(
        args.backend,
        args.model,
        LoadOptions(
            dtype=args.dtype, device=args.device, trust_remote_code=args.trust_remote_code, adapter=args.adapter, extra=extra
        ),
    )
    if plan is not None and hasattr(backend, "moe_layers"):
        iv.validate(plan, backend.moe_layers, backend.num_experts, str(args.interventions))
    options = GenerationOptions(
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        capture=not args.no_capture,
        seed=args.seed,
        consistency_pairs=args.consistency_pairs,
        enable_thinking=args.enable_thinking,
        use_chat_template=not args.no_chat_template,
        generation_prompt=args.generation_prompt,
        token_scope=args.token_scope,
    )
    if args.scoring == "loglik" and not hasattr(backend, "score_choices"):
        raise ConfigError(f"backend {args.backend!r} does not score choices by log-likelihood; use --scoring generate")
    run_items = backend.score_choices if args.scoring == "loglik" else backend.generate
    try:
        table = run_items(items, plan, options)
    finally:
        # a vLLM engine stops at once instead of at interpreter exit (seconds per job)
        getattr(backend, "close", lambda: None)()
    write_parquet(table, args.out, metadata=inputs, contract="generations")  # routing arrays checked before they are written
    seconds = getattr(backend, "generate_seconds", float("nan"))
    log.info(
        "%d sequences of %d language(s) in %.1fs (load %.1fs) -> %s",
        table.num_rows,
        len(args.items),
        seconds,
        backend.load_seconds,
        args.out,
    )
    return 0
