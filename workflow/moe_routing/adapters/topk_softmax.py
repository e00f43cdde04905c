"""top-k -> softmax routers: GPT-OSS (biased router logits; softmax over the k selected logits)."""

from __future__ import annotations

import torch

from moe_routing.adapters.base import Adapter, RouteResult, RouterSpec, RowPlan, apply_logit_interventions


class TopKSoftmaxAdapter(Adapter):
    family = "topk_softmax"
    model_types = ("gpt_oss",)
    router_classes = {"gpt_oss": "GptOssTopKRouter"}
    vllm_gate_names = {"gpt_oss": "router"}  # vLLM 0.32 gpt_oss.py
    vllm_verified = ("gpt_oss",)

    def spec_from_config(self, config) -> RouterSpec:
        return RouterSpec(num_experts=int(config.num_local_experts), top_k=int(config.num_experts_per_tok))

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        # the router's own bias is already inside the logits (F.linear with bias)
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        top_value, indices = torch.topk(z, spec.top_k, dim=-1)
        weights = torch.nn.functional.softmax(top_value, dim=1, dtype=top_value.dtype)
        return RouteResult(logits=z, indices=indices, weights=weights)
