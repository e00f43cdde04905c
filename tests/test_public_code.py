"""The routing paper's public code (lucasbandarkar/xl_moe_alignment, routing_analysis/), re-implemented
here from its formulas in numpy float64 with its batch-1 loop, against this project's
``generate --no-generation-prompt`` (batched, left-padded) + ``analyze --importance topk --entropy
sequence``.

What the reference does, as the public code does it:
- ``models.MoeModel.get_routings``: the user turn alone through ``apply_chat_template(...,
  enable_thinking=False)`` (no generation prompt), one sequence per forward pass,
  ``output_router_logits=True``;
- ``calculate_total_actual_weight_per_sequence``: softmax over E, keep values >= the k-th largest,
  divide by their sum + 1e-20 (renormalise: always, whatever the model), mean over tokens;
- ``analysis_helpers.calculate_entropy_normalized_jsd``: JS with M clamped at 1e-10 and
  ``kl_div`` semantics (0 where p = 0), F = log E - mean entropy with ``+1e-10`` inside the log,
  F clamped at 1e-6; ``pairwise_mean_jsd``: mean over the paired sequences;
- ``analyze_routing_entropy``: entropy (``+1e-10``) of each sequence's distribution, mean over sequences.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from moe_routing.capture.backends import GenerationOptions
from moe_routing.cli import main
from moe_routing.core.io import write_parquet

FAMILIES = ("qwen3_moe", "olmoe", "mixtral", "gpt_oss", "phimoe")
SENTENCES = {
    "en": [
        "The river Quell runs through the old town.",
        "Who founded Varnholt?",
        "Cats sleep.",
        "A long sentence about the harbour, the ships and the grain that came in every autumn.",
    ],
    "de": [
        "Der Fluss Quell fließt durch die Altstadt.",
        "Wer gründete Varnholt?",
        "Katzen schlafen.",
        "Ein langer Satz über den Hafen, die Schiffe und das Korn, das jeden Herbst kam.",
    ],
}


def public_topk_importance(router_logits: list[np.ndarray], k: int) -> np.ndarray:
    """calculate_total_actual_weight_per_sequence for one sequence: (L, T, E) logits -> (L, E)."""
    z = np.stack(router_logits).astype(np.float64)
    post = np.exp(z - z.max(-1, keepdims=True))
    post /= post.sum(-1, keepdims=True)
    threshold = np.sort(post, axis=-1)[..., -k][..., None]
    kept = post * (post >= threshold)
    return (kept / (kept.sum(-1, keepdims=True) + 1e-20)).mean(axis=1)


def public_entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p + 1e-10)).sum(-1)


def public_hjs(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = np.maximum(0.5 * (p + q), 1e-10)

    def kl(a):  # torch's kl_div(log m, a): a * (log a - log m), 0 where a = 0
        return np.where(a > 0, a * (np.log(np.where(a > 0, a, 1.0)) - np.log(m)), 0.0).sum(-1)

    js = 0.5 * (kl(p) + kl(q))
    f = np.maximum(np.log(p.shape[-1]) - 0.5 * (public_entropy(p) + public_entropy(q)), 1e-6)
    return js / f


def public_reference(model, tokenizer, k: int) -> tuple[dict, dict]:
    """(divergence {lang: (L,)}, entropy {lang: (L,)}) the public code's way."""
    importance = {}
    for lang, texts in SENTENCES.items():
        importance[lang] = []
        for text in texts:  # batch 1, as get_routings
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], enable_thinking=False, tokenize=True, return_dict=True, return_tensors="pt"
            )["input_ids"]
            with torch.no_grad():
                out = model(ids, output_router_logits=True, return_dict=True)
            importance[lang].append(public_topk_importance([rl.float().numpy() for rl in out.router_logits], k))
    divergence = {
        lang: np.mean([public_hjs(a, b) for a, b in zip(importance["en"], importance[lang])], axis=0)
        for lang in importance
        if lang != "en"
    }
    entropy = {lang: np.mean([public_entropy(p) for p in seqs], axis=0) for lang, seqs in importance.items()}
    return divergence, entropy


@pytest.mark.parametrize("family", FAMILIES)
def test_topk_sequence_no_generation_prompt_equals_the_public_code(hf_backend, family, tmp_path):
    backend = hf_backend(family)
    paths = []
    for lang, texts in SENTENCES.items():
        items = pl.DataFrame({"item_id": [f"s{i}" for i in range(len(texts))], "lang": lang, "prompt": texts, "system": None})
        # prefill only: no generation prompt by default; batched and left-padded, unlike the public loop
        table = backend.generate(items, None, GenerationOptions(batch_size=4, max_new_tokens=0))
        paths.append(tmp_path / "generations" / f"{lang}.parquet")
        write_parquet(table, paths[-1])
    out = tmp_path / "routing"
    assert (
        main(
            [
                "analyze",
                "--generations",
                *map(str, paths),
                "--english",
                "en",
                "--out-dir",
                str(out),
                "--importance",
                "topk",
                "--entropy",
                "sequence",
            ]
        )
        == 0
    )

    divergence, entropy = public_reference(backend.model, backend.tokenizer, backend.top_k)
    div = pl.read_csv(out / "divergence.tsv", separator="\t").sort("layer")
    ent = pl.read_csv(out / "entropy.tsv", separator="\t").sort("layer")
    for lang, want in divergence.items():
        got = div.filter(pl.col("lang") == lang)["value"].to_numpy()
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, err_msg=f"{family} divergence {lang}")
    for lang, want in entropy.items():
        got = ent.filter(pl.col("lang") == lang)["value"].to_numpy()
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, err_msg=f"{family} entropy {lang}")
    # the check has teeth: the paper's definitions give other numbers on the same model
    assert main(["analyze", "--generations", *map(str, paths), "--english", "en", "--out-dir", str(tmp_path / "paper")]) == 0
    paper = pl.read_csv(tmp_path / "paper" / "entropy.tsv", separator="\t").sort("layer")
    assert np.abs(paper["value"].to_numpy() - ent["value"].to_numpy()).max() > 1e-3
