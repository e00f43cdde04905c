"""Router capture throughput on a small MoE (hidden 128, 4 layers, 16 experts, top-2, Qwen3-MoE layout).

Prints, from one run: batched capture vs the papers' batch-1 loop (target >= 8x throughput) and
capture vs plain generation at the same batch (target overhead <= 10%). Each timing is the
best of --repeats interleaved rounds; throughput counts generated tokens.

    .venv/bin/python benchmarks/bench_capture.py [--family qwen3_moe] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import polars as pl
import torch

from moe_routing.capture.backends import GenerationOptions, LoadOptions, load_backend
from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint

PROMPTS = 16
NEW_TOKENS = 32


def items() -> pl.DataFrame:
    words = "river mountain castle harbour forest village bridge tower meadow valley".split()
    prompts = [f"Question {i}: what is the {words[i % 10]} of {' '.join(words[: 2 + i % 7])}?" for i in range(PROMPTS)]
    return pl.DataFrame(
        {
            "item_id": [f"q{i}" for i in range(PROMPTS)],
            "lang": ["en"] * PROMPTS,
            "prompt": prompts,
            "system": ["In just a few words, answer in the language of the question."] * PROMPTS,
        }
    )


def timed(fns: dict, repeats: int) -> tuple[dict[str, float], dict[str, float], dict]:
    """Best wall and best CPU time of each function over ``repeats`` interleaved rounds.

    CPU time of this process is what the ratios use: on a shared machine wall time mostly measures
    the neighbours (with one torch thread the two agree on an idle machine).
    """
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    results: dict = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {n: min(t) for n, t in wall.items()}, {n: min(t) for n, t in cpu.items()}, results


def generated(table) -> int:
    return sum(len(x) for x in table["output_token_ids"].to_pylist())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="qwen3_moe")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    df = items()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_checkpoint(args.family, tmp, hidden=128, layers=4, experts=16, top_k=2, seed=0)
        backend = load_backend("hf", str(path), LoadOptions(device="cpu", dtype="float32"))
        capture = GenerationOptions(batch_size=PROMPTS, max_new_tokens=NEW_TOKENS, capture=True, ignore_eos=True)
        plain = GenerationOptions(batch_size=PROMPTS, max_new_tokens=NEW_TOKENS, capture=False, ignore_eos=True)
        batch1 = GenerationOptions(batch_size=1, max_new_tokens=NEW_TOKENS, capture=True, ignore_eos=True)

        backend.generate(df[:2], None, capture)  # warm-up
        wall, cpu, res = timed(
            {
                "capture": lambda: backend.generate(df, None, capture),
                "plain": lambda: backend.generate(df, None, plain),
                "loop": lambda: backend.generate(df, None, batch1),
            },
            args.repeats,
        )
        out, loop_out = res["capture"], res["loop"]

    tokens = generated(out)
    assert tokens == generated(loop_out) == PROMPTS * NEW_TOKENS, tokens
    print(
        f"model: {args.family}, hidden 128, 4 layers, 16 experts, top-2; {PROMPTS} prompts x {NEW_TOKENS} new tokens; "
        f"torch threads {args.threads}"
    )
    for name, label in (
        ("capture", f"batched capture (batch {PROMPTS})"),
        ("plain", f"plain generation (batch {PROMPTS})"),
        ("loop", "batch-1 loop with capture"),
    ):
        print(f"{label:34s} wall {wall[name]:.3f}s ({tokens / wall[name]:.0f} tok/s)  cpu {cpu[name]:.3f}s")
    print(
        f"speed-up batched vs batch-1 loop: {cpu['loop'] / cpu['capture']:.1f}x cpu, "
        f"{wall['loop'] / wall['capture']:.1f}x wall (target >= 8x)"
    )
    print(
        f"capture overhead vs plain: {100 * (cpu['capture'] / cpu['plain'] - 1):+.1f}% cpu, "
        f"{100 * (wall['capture'] / wall['plain'] - 1):+.1f}% wall (target <= 10%)"
    )


if __name__ == "__main__":
    main()
