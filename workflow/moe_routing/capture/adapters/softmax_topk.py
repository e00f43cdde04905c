"""softmax -> top-k routers: Qwen3-MoE (renormalised top-k), OLMoE (norm_topk_prob as configured), Mixtral (always renormalised)."""

from __future__ import annotations

import torch

from moe_routing.capture.adapters.base import Adapter, RouteResult, RouterSpec, RowPlan, apply_logit_interventions
from moe_routing.core.errors import ModelError


class SoftmaxTopKAdapter(Adapter):
    family = "softmax_topk"
    model_types = ("qwen3_moe", "olmoe", "mixtral")
    router_classes = {"qwen3_moe": "Qwen3MoeTopKRouter", "olmoe": "OlmoeTopKRouter", "mixtral": "MixtralTopKRouter"}
    # vLLM 0.32 qwen3_moe.py / olmoe.py: `self.gate`
    vllm_gate_names = {"qwen3_moe": "gate", "olmoe": "gate"}
    vllm_verified = ("qwen3_moe", "olmoe")

    def spec_from_config(self, config) -> RouterSpec:
        num_experts = getattr(config, "num_experts", None) or config.num_local_experts
        # Mixtral has no norm_topk_prob and always renormalises
        norm = bool(getattr(config, "norm_topk_prob", True)) if config.model_type != "mixtral" else True
        return RouterSpec(num_experts=int(num_experts), top_k=int(config.num_experts_per_tok), norm_topk_prob=norm)

    def moe_layer_indices(self, config) -> list[int]:
        layers = super().moe_layer_indices(config)
        if config.model_type != "qwen3_moe":
            return layers
        # Qwen3MoeDecoderLayer: a dense MLP in mlp_only_layers, where (i + 1) % decoder_sparse_step != 0,
        # and everywhere if num_experts is 0 (transformers' defaults: 1, [], 128)
        experts = getattr(config, "num_experts", None)
        experts = getattr(config, "num_local_experts", 128) if experts is None else experts
        step = getattr(config, "decoder_sparse_step", None)
        step = 1 if step is None else int(step)
        if step < 1:
            raise ModelError(f"qwen3_moe: decoder_sparse_step={step}, must be >= 1")
        dense = set(getattr(config, "mlp_only_layers", None) or [])
        return [i for i in layers if int(experts) > 0 and i not in dense and (i + 1) % step == 0]

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        # same op order and dtypes as the transformers routers, so the result is bit-identical
        probs = torch.nn.functional.softmax(z, dtype=torch.float, dim=-1)
        top_value, indices = torch.topk(probs, spec.top_k, dim=-1)
        if spec.norm_topk_prob:
            top_value /= top_value.sum(dim=-1, keepdim=True)
        # Qwen3-MoE / OLMoE cast back to the logits dtype; Mixtral keeps float32 (equal for float32 models)
        if not self._keeps_float:
            top_value = top_value.to(z.dtype)
        return RouteResult(logits=z, indices=indices, weights=top_value)

    _keeps_float = False


class MixtralAdapter(SoftmaxTopKAdapter):
    model_types = ("mixtral",)
    router_classes = {"mixtral": "MixtralTopKRouter"}
    vllm_gate_names = {"mixtral": "gate"}  # vLLM 0.32 mixtral.py
    vllm_verified = ("mixtral",)
    _keeps_float = True
