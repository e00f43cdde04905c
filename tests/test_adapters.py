"""Adapters: exact gating against what the experts received, interventions per sequence, clear errors."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from conftest import ALL_FAMILIES
from moe_routing.capture.adapters import ADAPTERS, CompiledPlan, RouterSpec, activation_eps, get_adapter
from moe_routing.capture.adapters.base import RowPlan, apply_logit_interventions
from moe_routing.capture.backends import GenerationOptions
from moe_routing.core.errors import ModelError

ITEMS = pl.DataFrame(
    {
        "item_id": ["q1", "q2", "q3"],
        "lang": ["en", "en", "de"],
        "prompt": ["Who wrote the Lay of Brimwold?", "Hi", "Wer hat das Lied von Brimwold geschrieben?"],
        "system": ["In just a few words, answer in the language of the question.", None, "Kurz antworten."],
    }
)


def interventions(rows):
    return pl.DataFrame(
        rows,
        schema={"item_id": pl.Utf8, "layer": pl.Int64, "expert": pl.Int64, "mode": pl.Utf8, "strength": pl.Float64},
        orient="row",
    )


class Received:
    """Record (indices, weights) every experts module receives, per MoE layer position (Llama-4, whose
    experts get the routed inputs only: the dense scores its router hands the block, as (indices, weights))."""

    def __init__(self, backend):
        self.calls: dict[int, list] = {p: [] for p in range(len(backend.sites))}
        dense = "scores" in backend.adapter.family.outputs
        self.handles = [
            site.router.register_forward_hook(self._scores(p, backend.adapter.family.outputs.index("scores")))
            if dense
            else site.experts.register_forward_pre_hook(self._hook(p), with_kwargs=True)
            for p, site in enumerate(backend.sites)
        ]

    def _hook(self, pos):
        def hook(module, args, kwargs):
            vals = list(args) + list(kwargs.values())
            self.calls[pos].append((vals[1].clone(), vals[2].clone()))

        return hook

    def _scores(self, pos, at):
        def hook(module, args, output):
            scores = output[at]
            k = int((scores[0] != 0).sum())
            idx = scores.topk(k, dim=-1).indices
            self.calls[pos].append((idx, scores.gather(1, idx)))

        return hook

    def close(self):
        for h in self.handles:
            h.remove()


def traced_run(backend, items, plan=None, **opts):
    backend.trace = []
    received = Received(backend)
    try:
        table = backend.generate(items, plan, GenerationOptions(**{"batch_size": 3, "max_new_tokens": 5, **opts}))
    finally:
        received.close()
        trace, backend.trace = backend.trace, None
    return table, trace, received


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_gating_from_captured_logits_equals_what_experts_received(hf_backend, family):
    backend = hf_backend(family)
    _, trace, received = traced_run(backend, ITEMS)
    assert trace, "no router call was captured"
    for pos in received.calls:
        calls = [t for t in trace if t["pos"] == pos]
        assert len(calls) == len(received.calls[pos]) >= 5  # prefill + decode steps
        for t, (idx, w) in zip(calls, received.calls[pos]):
            site = backend.sites[pos]
            got_idx, got_w = backend.adapter.gate(t["logits"], backend.spec, site.bias)
            assert same_routing(got_idx, got_w, idx, w)


def same_routing(got_idx, got_w, idx, w) -> bool:
    """The same experts with bit-identical weights, in any order of the k slots."""
    a, b = got_idx.sort(dim=-1), idx.sort(dim=-1)
    return (
        got_w.dtype == w.dtype
        and torch.equal(a.values, b.values)
        and torch.equal(got_w.gather(1, a.indices), w.gather(1, b.indices))
    )


@pytest.mark.parametrize("family", ["mixtral", "gpt_oss"])
def test_gating_is_exact_in_bfloat16(tiny_checkpoint, family):
    from moe_routing.capture.backends import LoadOptions, load_backend

    backend = load_backend("hf", str(tiny_checkpoint(family)), LoadOptions(device="cpu", dtype="bfloat16"))
    _, trace, received = traced_run(backend, ITEMS)
    for pos, calls in received.calls.items():
        for t, (idx, w) in zip([t for t in trace if t["pos"] == pos], calls):
            got_idx, got_w = backend.adapter.gate(t["logits"], backend.spec, backend.sites[pos].bias)
            assert same_routing(got_idx, got_w, idx, w)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_interventions_act_per_sequence(hf_backend, family):
    backend = hf_backend(family)
    layers = backend.moe_layers
    base, _, _ = traced_run(backend, ITEMS)
    plan = interventions(
        [("q1", layer, 3, "deactivate", None) for layer in layers]
        + [("q1", layers[0], 5, "deactivate", None), ("q2", layers[-1], 6, "activate", None)]
    )
    table, trace, received = traced_run(backend, ITEMS, plan)
    # the batch is sorted by prompt length: map sequence position -> item
    pos_of = {item: None for item in ("q1", "q2", "q3")}
    first = next(t for t in trace if t["step"] == 0)
    n_seq = int(first["row_seq"].max()) + 1
    order = sorted(range(3), key=lambda i: (-len(table["prompt_token_ids"][i].as_py()), i))
    for s, i in enumerate(order):
        pos_of[ITEMS["item_id"][i]] = s
    assert n_seq == 3
    for pos, calls in received.calls.items():
        steps = [t for t in trace if t["pos"] == pos]
        for t, (idx, _) in zip(steps, calls):
            seq = t["row_seq"]
            q1_rows = idx[seq == pos_of["q1"]]  # pad rows included
            assert not (q1_rows == 3).any()
            if pos == 0:
                assert not (q1_rows == 5).any()
            if pos == len(layers) - 1:
                assert (idx[seq == pos_of["q2"]] == 6).any(dim=-1).all()
    # the third sequence is untouched by interventions aimed at the others
    got = table.to_pylist()
    ref = base.to_pylist()
    assert got[2]["output_token_ids"] == ref[2]["output_token_ids"]
    for key in ("weights", "softmax_mean", "freq", "entropy", "consistency"):
        assert got[2][key] == pytest.approx(ref[2][key], abs=1e-5)
    # and the targeted sequences' summaries show it
    E = backend.num_experts
    assert all(got[0]["freq"][p * E + 3] == 0 for p in range(len(layers)))
    assert got[1]["freq"][(len(layers) - 1) * E + 6] == 1.0


def test_star_item_applies_to_every_sequence(hf_backend):
    backend = hf_backend("qwen3_moe")
    plan = interventions([("*", backend.moe_layers[1], 2, "activate", None)])
    got = backend.generate(ITEMS, plan, GenerationOptions(batch_size=2, max_new_tokens=4)).to_pylist()
    E = backend.num_experts
    assert all(r["freq"][E + 2] == 1.0 for r in got)


def _rows(t, e, deact=(), act=(), soft=None, touched=None, eps=None):
    d = torch.zeros((t, e), dtype=torch.bool)
    a = torch.zeros((t, e), dtype=torch.bool)
    for r, k in deact:
        d[r, k] = True
    for r, k in act:
        a[r, k] = True
    s = torch.zeros((t, e), dtype=torch.float64) if soft is None else soft
    tch = (d | a | (s != 0)).any(-1) if touched is None else touched
    return RowPlan(d, a, s, torch.full((e,), 1e-7, dtype=torch.float64) if eps is None else eps, tch)


def test_deactivate_beats_ties_and_keeps_other_rows_bitwise():
    z = torch.zeros((4, 8))  # all tied: min-filling alone could still be chosen
    z[2] = torch.randn(8)
    rows = _rows(4, 8, deact=[(0, 0), (0, 1), (1, 7)])
    out = apply_logit_interventions(z, rows)
    assert (out[0, :2] < z[0].min()).all() and out[1, 7] < z[1].min()
    assert torch.equal(out[2:], z[2:])
    spec = RouterSpec(num_experts=8, top_k=2)
    idx = ADAPTERS["qwen3_moe"].route(z, spec, None, rows).indices
    assert not ((idx[0] == 0) | (idx[0] == 1)).any() and not (idx[1] == 7).any()


def test_activate_is_strictly_above_max_even_when_eps_rounds_away():
    z = torch.full((1, 4), 1000.0)  # 1000 + 1e-7 rounds to 1000 in float32
    out = apply_logit_interventions(z, _rows(1, 4, act=[(0, 2)]))
    assert out[0, 2] > 1000.0 and torch.equal(out[0, [0, 1, 3]], z[0, [0, 1, 3]])


def test_soft_adds_lambda_times_population_std():
    z = torch.randn(3, 6, dtype=torch.float64)
    soft = torch.zeros(3, 6, dtype=torch.float64)
    soft[1, 4] = 0.5
    out = apply_logit_interventions(z, _rows(3, 6, soft=soft))
    expected = z[1, 4].item() + 0.5 * z[1].numpy().std()
    assert out[1, 4].item() == pytest.approx(expected, rel=1e-12)
    assert torch.equal(out[[0, 2]], z[[0, 2]])


def test_sigmoid_bias_deactivation_and_group_forcing():
    spec = RouterSpec(num_experts=8, top_k=2, n_group=2, topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5)
    z = torch.randn(5, 8)
    bias = torch.zeros(8)
    bias[1] = 10.0  # the logit alone can never push expert 1 below the others
    adapter = ADAPTERS["glm4_moe"]
    idx0, _ = adapter.gate(z, spec, bias)
    assert (idx0 == 1).any(-1).all()
    res = adapter.route(z, spec, bias, _rows(5, 8, deact=[(r, 1) for r in range(5)]))
    assert not (res.indices == 1).any()
    # force an expert of the group that loses: group forcing must bring it in
    bias2 = torch.zeros(8)
    bias2[:4] = 5.0
    assert (adapter.gate(z, spec, bias2)[0] < 4).all()
    res = adapter.route(z, spec, bias2, _rows(5, 8, act=[(r, 6) for r in range(5)]))
    assert (res.indices == 6).any(-1).all()


def test_activation_eps_is_seeded_and_batch_independent():
    a, b = activation_eps(3, 8, seed=1), activation_eps(3, 8, seed=1)
    assert torch.equal(a, b) and (a >= 0).all() and not torch.equal(a, activation_eps(3, 8, seed=2))
    plan = CompiledPlan(
        torch.zeros(2, 3, 8, dtype=torch.bool),
        torch.zeros(2, 3, 8, dtype=torch.bool),
        torch.zeros(2, 3, 8, dtype=torch.float64),
        a,
    )
    assert plan.rows(0, torch.tensor([0, 0, 1])) is None


def test_unknown_model_type_is_a_clear_error(tmp_path):
    from transformers import LlamaConfig

    with pytest.raises(ModelError, match="unknown model_type 'llama'"):
        get_adapter(LlamaConfig())
    # through the backend: fails before loading weights
    LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=1, intermediate_size=32).save_pretrained(tmp_path)
    from moe_routing.capture.backends import load_backend

    with pytest.raises(ModelError, match="llama"):
        load_backend("hf", str(tmp_path))


def test_model_without_moe_router_is_a_clear_error(tiny_checkpoint, tmp_path):
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    cfg = json.loads((tiny_checkpoint("qwen3_moe") / "config.json").read_text())
    cfg["mlp_only_layers"] = list(range(cfg["num_hidden_layers"]))
    model = Qwen3MoeForCausalLM(Qwen3MoeConfig(**{k: v for k, v in cfg.items() if k not in ("architectures",)}))
    with pytest.raises(ModelError, match="no MoE block"):
        get_adapter(model).locate_hf(model)


def test_tiny_checkpoints_are_reproducible_and_checked(tmp_path):
    from safetensors.torch import load_file

    from moe_routing.core.errors import ConfigError
    from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint

    a = build_tiny_checkpoint("qwen3-moe", tmp_path / "a", seed=3)
    b = build_tiny_checkpoint("qwen3_moe", tmp_path / "b", seed=3)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((a / "config.json").read_text())["head_dim"] == 32
    with pytest.raises(ConfigError, match="unknown tiny model family"):
        build_tiny_checkpoint("llama", tmp_path / "c")
    with pytest.raises(ConfigError, match="top-2"):
        build_tiny_checkpoint("phimoe", tmp_path / "d", top_k=1)
