"""Model adapters: one per router family, chosen by the checkpoint's ``model_type``.

``get_adapter(model_or_config)`` returns the family adapter; its pure tensor API is documented
in adapters/base.py (shared by the transformers and vLLM backends).
"""

from __future__ import annotations

from moe_routing.capture.adapters.base import (
    Adapter,
    CompiledPlan,
    RouteResult,
    RouterSite,
    RouterSpec,
    RowPlan,
    activation_eps,
    apply_logit_interventions,
)
from moe_routing.capture.adapters.sigmoid_groups import SigmoidGroupsAdapter
from moe_routing.capture.adapters.softmax_topk import MixtralAdapter, SoftmaxTopKAdapter
from moe_routing.capture.adapters.sparsemixer import SparseMixerAdapter
from moe_routing.capture.adapters.topk_softmax import TopKSoftmaxAdapter
from moe_routing.core.errors import ModelError

ADAPTERS: dict[str, Adapter] = {
    "qwen3_moe": SoftmaxTopKAdapter(),
    "olmoe": SoftmaxTopKAdapter(),
    "mixtral": MixtralAdapter(),
    "gpt_oss": TopKSoftmaxAdapter(),
    "glm4_moe": SigmoidGroupsAdapter(),
    "deepseek_v3": SigmoidGroupsAdapter(),
    "phimoe": SparseMixerAdapter(),
}


def model_type_of(model_or_config) -> str:
    config = getattr(model_or_config, "config", model_or_config)
    # vLLM wraps the transformers config as hf_config
    config = getattr(config, "hf_config", config)
    model_type = getattr(config, "model_type", None)
    if not model_type:
        raise ModelError(f"{type(model_or_config).__name__}: no config.model_type to choose a router adapter from")
    return str(model_type)


def get_adapter(model_or_config) -> Adapter:
    """The adapter for a loaded model (or its config), chosen by ``config.model_type``."""
    model_type = model_type_of(model_or_config)
    if model_type not in ADAPTERS:
        raise ModelError(f"unknown model_type {model_type!r}: no MoE router adapter; supported: {sorted(ADAPTERS)}")
    return ADAPTERS[model_type]


__all__ = [
    "ADAPTERS",
    "Adapter",
    "CompiledPlan",
    "RouteResult",
    "RouterSite",
    "RouterSpec",
    "RowPlan",
    "activation_eps",
    "apply_logit_interventions",
    "get_adapter",
    "model_type_of",
]
