"""Throughput of the transformers and vLLM backends on the same model and items, with and without capture.

    .venv-vllm/bin/python benchmarks/bench_backends.py [--family qwen3_moe --hidden 128 --layers 4 --experts 16
        --top-k 2 | --model DIR] [--prompts 16 --loop-prompts 16 --new-tokens 32 --batch 16] [--repeats 3]
        [--device auto] [--dtype auto] [--backends hf,vllm] [--engine-arg KEY=VALUE ...] [--threads 1] [--parity-tol 1e-4]
        [--out bench.json]

Each backend loads once (its load time is recorded) and runs four settings, interleaved over --repeats
rounds, the best of each kept: batch 1 (the papers' one-prompt loop, over the first --loop-prompts
prompts: a rate needs no more) and batch --batch over all --prompts, capture on and off. Every run
generates exactly --new-tokens per prompt (ignore_eos), so tokens/s compare. Backends
run one after the other in this process; a GPU is emptied before the next one loads. Times are wall
clock: vLLM works in its own processes. Printed, all from this one run:

- tokens/s of each backend and setting, and vLLM vs transformers at each setting;
- vLLM at --batch with capture vs transformers' batch-1 loop with capture (target >= 20x on a GPU);
- capture overhead of each backend, tokens/s without capture / with capture - 1 (target <= 10 %).

Parity: both backends also route the prompts without generating (prefill only); the largest difference
of each routing summary is printed, and with --parity-tol the run fails above it (float32 on CPU: 1e-4;
bfloat16 on a GPU: ~1e-2). --out writes everything as JSON (benchmarks/estimate_cluster.py reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

SETTINGS = ("batch1_capture", "batch1_plain", "batch_capture", "batch_plain")
ROUTING = ("weights", "softmax_mean", "freq", "entropy", "consistency")
WORDS = "river mountain castle harbour forest village bridge tower meadow valley".split()


def items(n: int):
    import polars as pl

    prompts = [f"Question {i}: what is the {WORDS[i % 10]} of {' '.join(WORDS[: 2 + i % 7])}?" for i in range(n)]
    return pl.DataFrame(
        {
            "item_id": [f"q{i}" for i in range(n)],
            "lang": ["en"] * n,
            "prompt": prompts,
            "system": ["In just a few words, answer in the language of the question."] * n,
        }
    )


def options(setting: str, args):
    from moe_routing.capture.backends import GenerationOptions

    batch = 1 if setting.startswith("batch1") else args.batch
    return GenerationOptions(
        batch_size=batch, max_new_tokens=args.new_tokens, capture=setting.endswith("capture"), ignore_eos=True
    )


def bench_backend(name: str, model: str, args, engine: dict) -> tuple[dict, object]:
    """(figures, prefill-only generations table) of one backend."""
    import torch

    from moe_routing.capture.backends import GenerationOptions, LoadOptions, load_backend

    df = items(args.prompts)
    sizes = {s: args.loop_prompts if s.startswith("batch1") else args.prompts for s in SETTINGS}
    backend = load_backend(name, model, LoadOptions(device=args.device, dtype=args.dtype, extra=engine if name == "vllm" else {}))
    try:
        backend.generate(df[:2], None, options("batch_capture", args))  # warm-up
        best = {s: float("inf") for s in SETTINGS}
        tokens = {}
        for _ in range(args.repeats):
            for setting in SETTINGS:
                start = time.perf_counter()
                table = backend.generate(df[: sizes[setting]], None, options(setting, args))
                best[setting] = min(best[setting], time.perf_counter() - start)
                tokens[setting] = sum(len(x) for x in table.column("output_token_ids").to_pylist())
        prefill = backend.generate(df, None, GenerationOptions(batch_size=args.batch, max_new_tokens=0))
        figures = {
            "load_seconds": backend.load_seconds,
            "dtype": backend.dtype,
            "device": str(backend.device),
            "runs": {s: {"seconds": best[s], "tokens": tokens[s], "tokens_per_s": tokens[s] / best[s]} for s in SETTINGS},
        }
    finally:
        getattr(backend, "close", lambda: None)()
        del backend
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    wrong = {s: n for s, n in tokens.items() if n != sizes[s] * args.new_tokens}
    if wrong:
        raise SystemExit(f"{name}: generated {wrong} tokens, expected {args.new_tokens} per prompt (ignore_eos)")
    return figures, prefill


def ratios(result: dict) -> dict:
    b = result["backends"]
    tps = {name: {s: r["tokens_per_s"] for s, r in f["runs"].items()} for name, f in b.items()}
    out = {}
    for name, t in tps.items():
        out[f"capture_overhead_{name}_batch"] = t["batch_plain"] / t["batch_capture"] - 1
        out[f"capture_overhead_{name}_batch1"] = t["batch1_plain"] / t["batch1_capture"] - 1
    if {"hf", "vllm"} <= set(tps):
        for s in SETTINGS:
            out[f"vllm_vs_hf_{s}"] = tps["vllm"][s] / tps["hf"][s]
        out["vllm_batch_capture_vs_hf_batch1_capture"] = tps["vllm"]["batch_capture"] / tps["hf"]["batch1_capture"]
    return out


def parity(a, b) -> dict:
    """Largest absolute difference of each routing summary between two prefill-only tables."""
    import numpy as np

    if a.column("prompt_token_ids").to_pylist() != b.column("prompt_token_ids").to_pylist():
        raise SystemExit("the backends fed different prompt tokens")
    out = {}
    for key in ROUTING:
        x = np.asarray(a.column(key).to_pylist(), dtype=np.float64)
        y = np.asarray(b.column(key).to_pylist(), dtype=np.float64)
        out[key] = float(np.nanmax(np.abs(x - y)))
    return out


def describe_machine(device: str) -> dict:
    import torch

    info = {"cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "torch_threads": torch.get_num_threads()}
    if device != "cpu" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint directory (default: build a tiny one from the shape options)")
    ap.add_argument("--family", default="qwen3_moe")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=16)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--loop-prompts", type=int, default=None, help="prompts of the batch-1 runs (default: --prompts)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16, help="the configured batch (default 16)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--backends", default="hf,vllm")
    ap.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE", help="vLLM engine option; repeat")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of this process (default: torch's; 1 on CPU)")
    ap.add_argument("--parity-tol", type=float, default=None, help="fail when a routing summary differs by more")
    ap.add_argument("--out", help="write the figures to this JSON file")
    args = ap.parse_args()

    args.loop_prompts = min(args.loop_prompts or args.prompts, args.prompts)
    os.environ.setdefault("TQDM_DISABLE", "1")  # per-batch progress bars would drown the figures

    import torch

    from moe_routing.capture.backends import resolve_device
    from moe_routing.stages.generate import parse_engine_args
    from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint

    device = resolve_device(args.device)
    if args.threads or device == "cpu":
        torch.set_num_threads(args.threads or 1)
    engine = parse_engine_args(args.engine_arg)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(
            build_tiny_checkpoint(
                args.family, tmp, hidden=args.hidden, layers=args.layers, experts=args.experts, top_k=args.top_k, seed=0
            )
        )
        result = {
            "model": args.model
            or dict(family=args.family, hidden=args.hidden, layers=args.layers, experts=args.experts, top_k=args.top_k),
            "prompts": args.prompts,
            "loop_prompts": args.loop_prompts,
            "new_tokens": args.new_tokens,
            "batch": args.batch,
            "repeats": args.repeats,
            "engine_args": engine,
            "machine": describe_machine(device),
            "backends": {},
        }
        prefill = {}
        for name in args.backends.split(","):
            result["backends"][name], prefill[name] = bench_backend(name, model, args, engine)
    result["ratios"] = ratios(result)
    if len(prefill) == 2:
        result["parity_max_abs"] = parity(*prefill.values())
    report(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.parity_tol is not None and "parity_max_abs" in result:
        worst = max(result["parity_max_abs"].values())
        if not worst <= args.parity_tol:
            print(f"PARITY FAILED: routing summaries differ by {worst:.3g} > {args.parity_tol:g}")
            return 1
        print(f"parity ok: routing summaries within {args.parity_tol:g}")
    return 0


def report(result: dict) -> None:
    print(
        f"model {result['model']}; {result['prompts']} prompts ({result['loop_prompts']} at batch 1) x "
        f"{result['new_tokens']} new tokens; batch {result['batch']}; best of {result['repeats']}; "
        f"machine {result['machine']}"
    )
    for name, f in result["backends"].items():
        runs = "  ".join(f"{s} {r['tokens_per_s']:8.1f} tok/s" for s, r in f["runs"].items())
        print(f"{name:5s} load {f['load_seconds']:6.1f}s  {f['dtype']} on {f['device']}  {runs}")
    r = result["ratios"]
    for key in sorted(r):
        if key.startswith("capture_overhead"):
            print(f"{key:42s} {100 * r[key]:+6.1f} %  (target <= 10 %)")
    for key in sorted(r):
        if key.startswith("vllm"):
            target = "  (target >= 20x on a GPU)" if key == "vllm_batch_capture_vs_hf_batch1_capture" else ""
            print(f"{key:42s} {r[key]:6.2f}x{target}")
    if "parity_max_abs" in result:
        print(
            "parity (prefill routing, max |hf - vllm|): " + ", ".join(f"{k} {v:.2e}" for k, v in result["parity_max_abs"].items())
        )


if __name__ == "__main__":
    sys.exit(main())
