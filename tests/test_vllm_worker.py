"""The vLLM backend's plain-data pieces, without vLLM: plan codec, array codec, row mapping, CPU binding,
and which families each adapter lets vLLM serve (the engine itself: tests/test_vllm_parity.py)."""

from __future__ import annotations

import types

import numpy as np
import polars as pl
import pytest
import torch

from moe_routing.capture import interventions as iv
from moe_routing.capture.adapters import ADAPTERS, FAMILIES, activation_eps, get_adapter
from moe_routing.capture.backends.vllm import cpu_thread_binding, fit_batches
from moe_routing.capture.backends.vllm_worker import (
    counted_rows,
    dense_plan,
    digest,
    pack_array,
    pack_mask,
    rows_to_sequences,
    sparse_plan,
    unpack_array,
    unpack_mask,
)
from moe_routing.core.errors import ConfigError, ModelError


def test_sparse_plan_rebuilds_the_compiled_plan_bit_for_bit():
    layers, E = [1, 3, 5], 8
    df = pl.DataFrame(
        {
            "item_id": ["a", "*", "b", "b"],
            "layer": [1, 5, 3, 1],
            "expert": [2, 7, 0, 4],
            "mode": ["deactivate", "activate", "soft", "soft"],
            "strength": [None, None, -1.25, 0.1],
        },
        schema={"item_id": pl.Utf8, "layer": pl.Int64, "expert": pl.Int64, "mode": pl.Utf8, "strength": pl.Float64},
    )
    eps = activation_eps(len(layers), E, seed=7)
    plan = iv.compile_batch(df, ["b", "c", "a", "b"], layers, E, eps)
    sparse = sparse_plan(plan)
    # a few entries, not S x L x E: 4 '*' activations + 1 deactivation + 2 x 2 soft for the two b's
    assert len(sparse["activate"]) == 3 * 4 and len(sparse["deactivate"]) == 3 and len(sparse["soft_strength"]) == 4
    back = dense_plan(sparse, (4, len(layers), E), activation_eps(len(layers), E, seed=7))
    for name in ("deactivate", "activate", "soft", "eps", "layer_touched"):
        assert torch.equal(getattr(back, name), getattr(plan, name)), name
    row_seq = torch.tensor([0, 0, 1, 2, 3, 3])
    for pos in range(len(layers)):
        a, b = plan.rows(pos, row_seq), back.rows(pos, row_seq)
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a.touched, b.touched) and torch.equal(a.soft, b.soft)
    assert sparse_plan(None) is None and dense_plan(None, (1, 1, 1), eps) is None


def test_arrays_cross_as_plain_data():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    packed = pack_array(a)
    assert set(packed) == {"dtype", "shape", "data"} and isinstance(packed["data"], bytes)
    assert np.array_equal(unpack_array(packed), a) and unpack_array(pack_array(a[:, ::2])).shape == (2, 2, 4)
    assert digest(a, a[0]) == digest(a.copy(), a[0].copy()) != digest(a + 1e-7, a[0])


def test_rows_to_sequences_maps_packed_rows_and_padding():
    row_seq, valid = rows_to_sequences(torch.tensor([0, 3, 4, 6]), [2, 0, 1], num_rows=8)
    assert row_seq[:6].tolist() == [2, 2, 2, 0, 1, 1]
    assert valid.tolist() == [True] * 6 + [False] * 2
    with pytest.raises(ModelError, match="does not fit"):
        rows_to_sequences(torch.tensor([0, 5, 9]), [0, 1], num_rows=8)


def test_masks_cross_as_runs():
    mask = [False, False, True, True, True, False, True, False, False]
    packed = pack_mask(mask)
    assert packed == {"len": 9, "runs": [2, 5, 6, 7]}
    assert unpack_mask(packed).tolist() == mask
    for m in ([True] * 4, [False] * 3, [], [True, False] * 5):
        assert unpack_mask(pack_mask(m)).tolist() == m
    assert pack_mask(None) is None


def test_counted_rows_follow_positions_across_prefill_chunks():
    """Request 0 (a mask over 6 prompt positions) has 4 computed tokens: its rows are positions 4, 5 (the
    mask says) and 6, 7 (past the mask: generated tokens); request 1 has no mask; request 2 decodes past
    its mask; the two padding rows stay out."""
    mask0 = np.array([False, True, True, True, False, True])
    mask2 = np.array([True, False])
    qsl = torch.tensor([0, 4, 6, 7])
    valid = torch.tensor([True] * 7 + [False] * 2)
    counted = counted_rows(qsl, [4, 0, 9], [mask0, None, mask2], valid)
    assert counted.tolist() == [False, True, True, True, True, True, True, False, False]
    # the same prompt in two chunks gives the mask itself
    first = counted_rows(torch.tensor([0, 3]), [0], [mask0], torch.ones(3, dtype=torch.bool))
    second = counted_rows(torch.tensor([0, 3]), [3], [mask0], torch.ones(3, dtype=torch.bool))
    assert torch.cat([first, second]).tolist() == mask0.tolist()
    assert valid.tolist() == [True] * 7 + [False] * 2  # not modified in place


def test_cpu_binding_gives_each_rank_its_own_cores():
    assert cpu_thread_binding(2, [1, 0]) == "0|1"
    assert cpu_thread_binding(2, [0, 1, 2, 3]) == "0,1|2,3"
    # one core left over beyond two per rank stays free for the engine process
    assert cpu_thread_binding(2, list(range(9))) == "0,1,2,3|4,5,6,7"
    with pytest.raises(ConfigError, match="a core per rank"):
        cpu_thread_binding(4, [0, 1])


def test_adapters_say_which_families_vllm_serves():
    served = {t for a in ADAPTERS.values() for t in a.vllm_gate_names}
    assert served == {
        "qwen3_moe",
        "qwen2_moe",
        "olmoe",
        "mixtral",
        "gpt_oss",
        "granitemoe",
        "granitemoeshared",
        "granitemoehybrid",
        "ernie4_5_moe",
        "minimax_m2",
        "glm4_moe",
        "deepseek_v3",
    }
    for model_type, adapter in ADAPTERS.items():
        if model_type in served:
            assert adapter.vllm_gate_name(model_type) in ("gate", "router")
        else:
            with pytest.raises(ModelError, match="use the hf backend"):
                adapter.vllm_gate_name(model_type)
    assert {t for t, a in ADAPTERS.items() if a.vllm_selection_override} == {
        t for t, f in FAMILIES.items() if f.kind in ("sigmoid_groups", "softmax_bias_topk")
    }
    verified = {t for t, a in ADAPTERS.items() if t in a.vllm_verified}
    assert verified == served - {"deepseek_v3"}

    class Cfg:
        model_type = "phimoe"

    assert get_adapter(Cfg()).vllm_gate_names == {}
    # a forced router kind runs on the hf backend only (the probe that guards it hooks transformers' experts)
    assert get_adapter(types.SimpleNamespace(model_type="qwen3_moe"), "softmax_topk").vllm_gate_names == {}


def test_batches_fit_the_batch_size_and_the_kv_cache():
    ids = [f"q{i}" for i in range(6)]
    assert fit_batches([3] * 6, 4, None, ids) == [[0, 1, 2, 3], [4, 5]]
    # 10 blocks, one spare: 9 per batch
    assert fit_batches([3, 3, 3, 3, 5, 1], 64, 10, ids) == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ConfigError, match="q2"):
        fit_batches([1, 1, 12], 64, 10, ids[:3])
