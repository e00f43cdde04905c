"""Multiple choice by log-likelihood (transformers backend) against an independent batch-1 port of the
LM Evaluation Harness's scoring: context/continuation split (``_encode_pair``), summed log-probs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from conftest import mc_items
from moe_routing.capture.backends import GenerationOptions
from moe_routing.cli import main
from moe_routing.core.io import read_frame, write_parquet
from moe_routing.judging.judge import judge_frame

LETTERS = "ABCD"
ITEMS = mc_items()
# BPE merges for " A" ... " D" make every plain-text continuation one token (the one-pass path)
MERGED = ("Answer: A B C D",)


def harness_loglik(model, tok, context: str, continuation: str, special: bool) -> float:
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    whole = tok(context + continuation, add_special_tokens=special)["input_ids"]
    ctx = tok(context, add_special_tokens=special)["input_ids"]
    cont = whole[len(ctx) :]
    with torch.no_grad():
        logp = model(torch.tensor([ctx + cont])).logits[0].double().log_softmax(-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def reference(backend, chat: bool) -> list[list[float]]:
    tok, out = backend.tokenizer, []
    for r in ITEMS.iter_rows(named=True):
        if chat:
            msgs = ([{"role": "system", "content": r["system"]}] if r["system"] else []) + [
                {"role": "user", "content": r["prompt"]}
            ]
            context = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False)
            out.append([harness_loglik(backend.model, tok, context, L, False) for L in LETTERS[: len(r["choices"])]])
        else:
            context = f"{r['system']}\n\n{r['prompt']}" if r["system"] else r["prompt"]
            out.append([harness_loglik(backend.model, tok, context, " " + L, True) for L in LETTERS[: len(r["choices"])]])
    return out


@pytest.mark.parametrize("family, merged", [("qwen3_moe", False), ("olmoe", True), ("gpt_oss", True)])
@pytest.mark.parametrize("chat", [False, True])
def test_choice_logprobs_equal_the_harness_reference(hf_backend, family, merged, chat):
    backend = hf_backend(family, **({"train_texts": MERGED, "vocab_size": 300} if merged else {}))
    opts = GenerationOptions(batch_size=2, use_chat_template=chat)
    got = backend.choice_logprobs(ITEMS, None, opts)
    want = reference(backend, chat)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=2e-4, rtol=0)
    if merged and not chat:  # the one-pass path ran: single-token continuations
        assert all(len(backend.tokenizer(" " + L, add_special_tokens=False)["input_ids"]) == 1 for L in LETTERS)


def test_score_choices_rows_route_the_prompt_like_prefill_generation(hf_backend):
    backend = hf_backend("qwen3_moe")
    opts = GenerationOptions(batch_size=2, use_chat_template=False)
    table = backend.score_choices(ITEMS, None, opts)
    rows = table.to_pylist()
    want = reference(backend, chat=False)
    assert [r["output"] for r in rows] == [LETTERS[int(np.argmax(w))] for w in want]
    assert all(r["output_token_ids"] == [] for r in rows)
    prefill = backend.generate(
        ITEMS, None, GenerationOptions(batch_size=2, max_new_tokens=0, use_chat_template=False)
    ).to_pylist()
    for r, p in zip(rows, prefill):
        assert r["prompt_token_ids"] == p["prompt_token_ids"] and r["tokens"] == len(p["prompt_token_ids"])
        for key in ("softmax_mean", "topk_mean", "freq", "entropy", "weights"):
            np.testing.assert_allclose(r[key], p[key], atol=1e-6, rtol=0, err_msg=key)
    judged = judge_frame(ITEMS, pl.from_arrow(table), "mc")
    assert judged["correct"].to_list() == [r["output"] == a[0] for r, a in zip(rows, ITEMS["answers"])]


def test_interventions_apply_to_every_scoring_pass(hf_backend):
    backend = hf_backend("mixtral")
    plan = pl.DataFrame(
        {
            "item_id": ["*", "*", "q2"],
            "layer": [backend.moe_layers[0], backend.moe_layers[1], backend.moe_layers[2]],
            "expert": [0, 3, 5],
            "mode": ["deactivate", "soft", "activate"],
            "strength": [0.0, 0.8, 0.0],
        }
    )
    base = backend.choice_logprobs(ITEMS, None, GenerationOptions(batch_size=3, use_chat_template=False))
    batched = backend.choice_logprobs(ITEMS, plan, GenerationOptions(batch_size=3, use_chat_template=False))
    single = backend.choice_logprobs(ITEMS, plan, GenerationOptions(batch_size=1, use_chat_template=False))
    for b, s, o in zip(batched, single, base):
        np.testing.assert_allclose(b, s, atol=1e-5, rtol=0)
        assert np.abs(np.asarray(b) - np.asarray(o)).max() > 1e-4


def test_generate_stage_flags(tiny_checkpoint, tmp_path):
    model = tiny_checkpoint("qwen3_moe")
    items = tmp_path / "en.parquet"
    write_parquet(ITEMS.with_columns(pl.lit(None, pl.String).alias("assistant")), items)
    out = tmp_path / "scored.parquet"
    assert (
        main(
            [
                "generate",
                "--model",
                str(model),
                "--items",
                str(items),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--scoring",
                "loglik",
                "--no-chat-template",
                "--token-scope",
                "content",
            ]
        )
        == 0
    )
    scored = read_frame(out, "generations")
    assert set(scored["output"]) <= set(LETTERS)
    # content scope without a template: only q3's system prompt is left out ("Be brief.\n\n", 11 byte tokens)
    assert (scored["prompt_token_ids"].list.len() - scored["tokens"]).to_list() == [0, 0, 11]
    prefill = tmp_path / "prefill.parquet"
    assert (
        main(
            [
                "generate",
                "--model",
                str(model),
                "--items",
                str(items),
                "--out",
                str(prefill),
                "--device",
                "cpu",
                "--max-new-tokens",
                "0",
            ]
        )
        == 0
    )
    forced = tmp_path / "forced.parquet"
    assert (
        main(
            [
                "generate",
                "--model",
                str(model),
                "--items",
                str(items),
                "--out",
                str(forced),
                "--device",
                "cpu",
                "--max-new-tokens",
                "0",
                "--generation-prompt",
            ]
        )
        == 0
    )
    a, b = read_frame(prefill, "generations"), read_frame(forced, "generations")
    # the generation prompt of the tiny template: <|im_start|>assistant\n<think>\n\n</think>\n\n
    assert ((b["prompt_token_ids"].list.len() - a["prompt_token_ids"].list.len()) > 0).all()
    assert b["prompt_token_ids"][0][: len(a["prompt_token_ids"][0])].to_list() == a["prompt_token_ids"][0].to_list()
