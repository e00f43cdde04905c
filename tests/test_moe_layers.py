"""Adapter.moe_layer_indices (from config.json alone) agrees with the routers transformers builds."""

from __future__ import annotations

import json
import types

import pytest

from conftest import ALL_FAMILIES
from moe_routing.capture.adapters import get_adapter
from moe_routing.core.errors import ModelError

# (family, config.json changes, MoE layers of the 4-layer tiny model): the tiny defaults, then
# layouts with dense layers as the real checkpoints have them (GLM-4.5-Air: first_k_dense_replace=1)
FIRST_DENSE = ("glm4_moe", "deepseek_v3", "deepseek_v2", "dots1", "ernie4_5_moe", "glm4_moe_lite", "exaone_moe", "mimo_v2_flash")
FIRST_DENSE += ("axk1", "deepseek_v32", "glm_moe_dsa", "hy_v4", "hy_v3", "laguna")
TINY_LAYOUT = {f: [1, 2, 3] for f in FIRST_DENSE} | {"jamba": [1, 3]}
VARIANTS = [(f, {}, TINY_LAYOUT.get(f, [0, 1, 2, 3])) for f in ALL_FAMILIES] + [
    ("qwen3_moe", {"decoder_sparse_step": 2}, [1, 3]),
    ("qwen3_moe", {"mlp_only_layers": [0, 2]}, [1, 3]),
    ("qwen3_moe", {"decoder_sparse_step": 3, "mlp_only_layers": [0]}, [2]),
    ("glm4_moe", {"first_k_dense_replace": 0}, [0, 1, 2, 3]),
    ("glm4_moe", {"first_k_dense_replace": 3}, [3]),
    ("deepseek_v3", {"first_k_dense_replace": 2}, [2, 3]),
    ("deepseek_v3", {"first_k_dense_replace": 0, "moe_layer_freq": 1}, [0, 1, 2, 3]),
    ("qwen2_moe", {"decoder_sparse_step": 2, "mlp_only_layers": [3]}, [1]),
    ("qwen3_next", {"mlp_only_layers": [1]}, [0, 2, 3]),
    ("deepseek_v2", {"first_k_dense_replace": 2}, [2, 3]),
    ("dots1", {"first_k_dense_replace": 0}, [0, 1, 2, 3]),
    ("ernie4_5_moe", {"moe_layer_start_index": 0, "moe_layer_interval": 2}, [1, 3]),
    ("ernie4_5_moe", {"moe_layer_start_index": 0, "moe_layer_end_index": 2}, [0, 1, 2]),
    ("jamba", {"expert_layer_period": 4, "expert_layer_offset": 2}, [2]),
    ("llama4_text", {"interleave_moe_layer_step": 2, "moe_layers": None}, [1, 3]),
    ("llama4_text", {"moe_layers": [0, 2]}, [0, 2]),
    ("mellum", {"mlp_layer_types": ["dense", "sparse", "dense", "sparse"]}, [1, 3]),
    # no mlp_layer_types in config.json: the config class's own default pattern (from first_k_dense_replace)
    ("deepseek_v32", {"mlp_layer_types": None, "first_k_dense_replace": 2}, [2, 3]),
    ("glm4_moe_lite", {"mlp_layer_types": None}, [1, 2, 3]),
]


def _model(config_json: dict):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = AutoConfig.for_model(**{k: v for k, v in config_json.items() if k != "architectures"})
    return AutoModelForCausalLM.from_config(cfg)


@pytest.mark.parametrize("family, change, expected", VARIANTS, ids=lambda v: str(v))
def test_moe_layer_indices_match_the_routers_transformers_builds(tiny_checkpoint, family, change, expected):
    config_json = json.loads((tiny_checkpoint(family, layers=4) / "config.json").read_text())
    config_json.update(change)
    model = _model(config_json)
    adapter = get_adapter(model)
    routed = [site.layer for site in adapter.locate_hf(model)]
    assert routed == expected
    assert adapter.moe_layer_indices(types.SimpleNamespace(**config_json)) == routed
    assert adapter.moe_layer_indices(model.config) == routed


def test_keys_missing_from_config_json_take_transformers_defaults(tiny_checkpoint):
    config_json = json.loads((tiny_checkpoint("deepseek_v3", layers=4) / "config.json").read_text())
    del config_json["first_k_dense_replace"]  # DeepseekV3Config's default is 3
    model = _model(config_json)
    adapter = get_adapter(model)
    assert adapter.moe_layer_indices(types.SimpleNamespace(**config_json)) == [s.layer for s in adapter.locate_hf(model)] == [3]


def test_a_family_with_no_moe_layer_or_an_unsupported_layout():
    qwen = types.SimpleNamespace(model_type="qwen3_moe", num_hidden_layers=2, num_experts=8, mlp_only_layers=[0, 1])
    assert get_adapter(qwen).moe_layer_indices(qwen) == []
    deepseek = types.SimpleNamespace(model_type="deepseek_v3", num_hidden_layers=4, first_k_dense_replace=1, moe_layer_freq=2)
    with pytest.raises(ModelError, match="moe_layer_freq=2"):
        get_adapter(deepseek).moe_layer_indices(deepseek)
    with pytest.raises(ModelError, match="num_hidden_layers"):
        get_adapter(types.SimpleNamespace(model_type="olmoe")).moe_layer_indices(types.SimpleNamespace(model_type="olmoe"))
