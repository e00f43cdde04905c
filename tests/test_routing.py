"""Routing summaries: float64 references, the token set of the contract, batch invariance."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from conftest import ALL_FAMILIES
from moe_routing.capture.adapters.families import FAMILIES
from moe_routing.capture.backends import GenerationOptions
from moe_routing.capture.accumulator import RoutingAccumulator, sample_pairs, token_consistency

ITEMS = pl.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "lang": ["en", "fr", "en", "sv"],
        "prompt": ["Name the river of Quellmark.", "Qui a fondé Varnholt ?", "Hi", "Vem grundade staden Ostervik?"],
        "system": ["Answer briefly.", None, "Answer briefly.", "Svara kort."],
    }
)
KEYS = ("weights", "softmax_mean", "freq", "entropy", "consistency", "topk_mean")


def reference(logits, indices, weights, seed=0, pairs=500):
    """Float64 summaries of one sequence from its [N, L, E] logits and [N, L, k] selections; topk_mean
    keeps each token's k largest softmax values (k from the selections) renormalised to sum 1."""
    z = np.asarray(logits, dtype=np.float64)
    n, num_layers, e = z.shape
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    dense_w = np.zeros_like(z)
    hits = np.zeros_like(z)
    for t in range(n):
        for layer in range(num_layers):
            for slot, ex in enumerate(indices[t, layer]):
                dense_w[t, layer, ex] += weights[t, layer, slot]
                hits[t, layer, ex] += 1
    ent = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1)
    k = indices.shape[-1]
    kth = np.sort(p, axis=-1)[..., -k][..., None]
    kept = np.where(p >= kth, p, 0.0)
    topk = kept / kept.sum(-1, keepdims=True)
    cons = []
    i, j = sample_pairs(n, seed, pairs)
    for layer in range(num_layers):
        sets = [set(indices[t, layer].tolist()) for t in range(n)]
        cons.append(np.mean([len(sets[a] & sets[b]) / len(sets[a] | sets[b]) for a, b in zip(i, j)]))
    return {
        "weights": dense_w.mean(0).ravel(),
        "softmax_mean": p.mean(0).ravel(),
        "freq": hits.mean(0).ravel(),
        "entropy": ent.mean(0),
        "consistency": np.array(cons),
        "topk_mean": topk.mean(0).ravel(),
        "tokens": n,
    }


def test_accumulator_matches_float64_reference_with_invalid_rows():
    rng = np.random.default_rng(0)
    S, L, E, k = 3, 2, 6, 2
    per_seq = {s: {"z": [], "i": [], "w": []} for s in range(S)}
    acc = RoutingAccumulator(S, L, E, k)
    for step in range(4):
        t = 5 if step == 0 else 1
        rows = S * t
        row_seq = torch.arange(S).repeat_interleave(t)
        valid = torch.from_numpy(rng.random(rows) > 0.3)
        layer_data = []
        for layer in range(L):
            z = torch.from_numpy(rng.normal(size=(rows, E)).astype(np.float32) * 3)
            idx = torch.topk(z, k).indices
            w = torch.softmax(torch.topk(z, k).values, -1)
            acc.add(layer, z, idx, w, row_seq, valid)
            layer_data.append((z, idx, w))
        for r in range(rows):
            if valid[r]:
                s = int(row_seq[r])
                per_seq[s]["z"].append([d[0][r].numpy() for d in layer_data])
                per_seq[s]["i"].append([d[1][r].numpy() for d in layer_data])
                per_seq[s]["w"].append([d[2][r].numpy() for d in layer_data])
    got = acc.finalize(seed=3, pairs=200)
    for s in range(S):
        ref = reference(np.array(per_seq[s]["z"]), np.array(per_seq[s]["i"]), np.array(per_seq[s]["w"]), seed=3, pairs=200)
        for key in KEYS:
            np.testing.assert_allclose(got[key][s], ref[key], rtol=1e-6, atol=1e-7, err_msg=key)
        assert got["tokens"][s] == ref["tokens"]


def test_token_consistency_edge_cases():
    assert np.isnan(token_consistency(np.array([[0, 1]]), 0, 500))
    same = np.tile(np.array([[2, 5]]), (7, 1))
    assert token_consistency(same, 0, 500) == 1.0
    disjoint = np.array([[0, 1], [2, 3]])
    assert token_consistency(disjoint, 0, 50) == 0.0
    i, j = sample_pairs(10, 0, 500)
    assert (i != j).all() and i.max() < 10 and j.max() < 10


def _valid_rows_per_sequence(trace, num_layers):
    """Per sequence of the (single) batch: counted rows' logits/indices/weights as [N, L, ...] arrays."""
    by_pos = [[t for t in trace if t["pos"] == p] for p in range(num_layers)]
    seqs = int(by_pos[0][0]["row_seq"].max()) + 1
    out = {}
    for s in range(seqs):
        parts = {"z": [], "i": [], "w": []}
        for p in range(num_layers):
            zs, ids, ws = [], [], []
            for t in by_pos[p]:
                m = (t["row_seq"] == s) & t["row_valid"]
                zs.append(t["logits"][m]), ids.append(t["indices"][m]), ws.append(t["weights"][m])
            parts["z"].append(torch.cat(zs).double().numpy())
            parts["i"].append(torch.cat(ids).numpy())
            parts["w"].append(torch.cat(ws).double().numpy())
        out[s] = {key: np.stack(v, axis=1) for key, v in parts.items()}
    return out


def _traced(backend, options):
    """Rows of one batch of ITEMS, their batch order, the counted rows per batch position, the trace."""
    backend.trace = []
    try:
        rows = backend.generate(ITEMS, None, options).to_pylist()
        trace = backend.trace
    finally:
        backend.trace = None
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["prompt_token_ids"]), i))
    return rows, order, _valid_rows_per_sequence(trace, len(backend.moe_layers)), trace


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_backend_summaries_equal_float64_reference(hf_backend, family):
    backend = hf_backend(family)
    rows, order, per_seq, _ = _traced(backend, GenerationOptions(batch_size=4, max_new_tokens=6))
    for s, i in enumerate(order):
        data = per_seq[s]
        # the contract's token set: prompt + every generated token but the last
        assert data["z"].shape[0] == len(rows[i]["prompt_token_ids"]) + len(rows[i]["output_token_ids"]) - 1
        ref = reference(data["z"], data["i"], data["w"])
        for key in KEYS:
            np.testing.assert_allclose(rows[i][key], ref[key], rtol=1e-5, atol=1e-6, err_msg=f"{family} {key}")
        assert rows[i]["tokens"] == ref["tokens"]


def test_finished_sequences_stop_counting(hf_backend):
    backend = hf_backend("olmoe")
    opts = GenerationOptions(batch_size=4, max_new_tokens=8)
    first = backend.generate(ITEMS, None, opts).to_pylist()
    # make a token the model emits early in one sequence a stop token, so sequences end at different steps
    stop = first[0]["output_token_ids"][2]
    saved = backend.stop_ids
    backend.stop_ids = torch.tensor([stop])
    backend.trace = []
    try:
        rows = backend.generate(ITEMS, None, opts).to_pylist()
        trace = backend.trace
    finally:
        backend.stop_ids, backend.trace = saved, None
    lengths = [len(r["output_token_ids"]) for r in rows]
    assert rows[0]["output_token_ids"][-1] == stop and lengths[0] <= 3
    assert max(lengths) > lengths[0]  # someone kept going: pad steps happened
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["prompt_token_ids"]), i))
    per_seq = _valid_rows_per_sequence(trace, len(backend.moe_layers))
    for s, i in enumerate(order):
        assert per_seq[s]["z"].shape[0] == len(rows[i]["prompt_token_ids"]) + lengths[i] - 1


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_summary_alone_equals_left_padded_in_batch(hf_backend, family):
    backend = hf_backend(family)
    opts = GenerationOptions(batch_size=4, max_new_tokens=6)
    batched = backend.generate(ITEMS, None, opts).to_pylist()
    for i in (2, 1):  # the shortest prompt (most padding) and a middle one
        alone = backend.generate(ITEMS[i : i + 1], None, GenerationOptions(batch_size=1, max_new_tokens=6)).to_pylist()[0]
        assert alone["output_token_ids"] == batched[i]["output_token_ids"]
        for key in KEYS:
            atol = FAMILIES[family].padding_atol
            np.testing.assert_allclose(alone[key], batched[i][key], atol=atol, rtol=0, err_msg=f"{family} {key}")


@pytest.mark.parametrize("family", ["qwen3_moe", "gpt_oss"])
def test_content_scope_counts_the_item_text_only(hf_backend, family):
    """Under token scope "content" the counted prefill tokens decode to exactly the prompt text (no
    system prompt, template or special tokens), every generated token but the last still counts,
    and the summaries equal the float64 reference over those rows."""
    backend = hf_backend(family)
    rows, order, per_seq, trace = _traced(backend, GenerationOptions(batch_size=4, max_new_tokens=4, token_scope="content"))
    prefill = next(t for t in trace if t["pos"] == 0 and t["step"] == 0)
    width = prefill["row_seq"].shape[0] // len(rows)
    for s, i in enumerate(order):
        ids = rows[i]["prompt_token_ids"]
        counted = prefill["row_valid"].reshape(len(rows), width)[s, width - len(ids) :].tolist()
        assert backend.tokenizer.decode([t for t, c in zip(ids, counted) if c]) == ITEMS["prompt"][i]
        assert rows[i]["tokens"] == sum(counted) + len(rows[i]["output_token_ids"]) - 1
        ref = reference(per_seq[s]["z"], per_seq[s]["i"], per_seq[s]["w"])
        for key in KEYS:
            np.testing.assert_allclose(rows[i][key], ref[key], rtol=1e-5, atol=1e-6, err_msg=f"{family} {key}")
