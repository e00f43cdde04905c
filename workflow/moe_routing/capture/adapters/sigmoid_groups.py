"""sigmoid + bias routers with expert groups: GLM-4.5 (Glm4Moe) and DeepSeek-V3.

Selection uses ``sigmoid(z) + e_score_correction_bias`` within the best ``topk_group`` of
``n_group`` groups (a group scores the sum of its two best selection scores); the combine
weights are ``sigmoid(z)`` of the selected experts, renormalised if ``norm_topk_prob``, times
``routed_scaling_factor``. Because the bias is added before selection, interventions also act on
the selection score (see adapters/base.py).
"""

from __future__ import annotations

import torch

from moe_routing.capture.adapters.base import (
    Adapter,
    RouteResult,
    RouterSpec,
    RowPlan,
    _strictly_above,
    apply_logit_interventions,
    below_min,
)
from moe_routing.core.errors import ModelError


class SigmoidGroupsAdapter(Adapter):
    family = "sigmoid_groups"
    model_types = ("glm4_moe", "deepseek_v3")
    router_classes = {"glm4_moe": "Glm4MoeTopkRouter", "deepseek_v3": "DeepseekV3TopkRouter"}
    # vLLM 0.32 glm4_moe.py / deepseek_v2.py: `self.gate`; DeepSeek-V3 is mapped but not run (its tiny
    # checkpoint does not load in vLLM 0.32)
    vllm_gate_names = {"glm4_moe": "gate", "deepseek_v3": "gate"}
    vllm_verified = ("glm4_moe",)
    # vLLM selects on sigmoid(z) + bias; replaced weights are divided by the routed_scaling_factor vLLM applies later
    vllm_selection_override = True

    def spec_from_config(self, config) -> RouterSpec:
        return RouterSpec(
            num_experts=int(config.n_routed_experts),
            top_k=int(config.num_experts_per_tok),
            norm_topk_prob=bool(config.norm_topk_prob),
            n_group=int(config.n_group),
            topk_group=int(config.topk_group),
            routed_scaling_factor=float(config.routed_scaling_factor),
        )

    # transformers' defaults of first_k_dense_replace when config.json has none
    _first_dense_default = {"glm4_moe": 1, "deepseek_v3": 3}

    def moe_layer_indices(self, config) -> list[int]:
        # the first first_k_dense_replace decoder layers are dense (GLM-4.5-Air: 1 of 46)
        first_dense = getattr(config, "first_k_dense_replace", None)
        if first_dense is None:
            first_dense = self._first_dense_default[config.model_type]
        # DeepSeek's own code and vLLM also require layer % moe_layer_freq == 0, transformers does not:
        # the two backends would route different layers, so only the released value 1 is supported
        freq = getattr(config, "moe_layer_freq", None)
        if freq not in (None, 1):
            raise ModelError(
                f"{config.model_type}: moe_layer_freq={freq} is not supported (transformers and vLLM place its MoE layers differently)"
            )
        return [i for i in super().moe_layer_indices(config) if i >= int(first_dense)]

    def hf_bias(self, router):
        return router.e_score_correction_bias

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        if bias is None:
            bias = torch.zeros(spec.num_experts, dtype=torch.float32, device=logits.device)
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        scores = z.sigmoid()
        scores_for_choice = scores + bias
        per_group = spec.num_experts // spec.n_group
        force_group = None
        if rows is not None:
            s = scores_for_choice
            if bool(rows.activate.any()):
                lifted = _strictly_above(s.max(dim=-1, keepdim=True).values.expand_as(s), rows.eps.expand_as(s))
                s = torch.where(rows.activate, lifted, s)
                force_group = rows.activate.view(-1, spec.n_group, per_group).any(dim=-1)
            if bool(rows.deactivate.any()):
                s = torch.where(rows.deactivate, below_min(scores_for_choice), s)
            scores_for_choice = torch.where(rows.touched[:, None], s, scores_for_choice)
        group_scores = scores_for_choice.view(-1, spec.n_group, per_group).topk(2, dim=-1)[0].sum(dim=-1)
        if force_group is not None:
            group_scores = group_scores.masked_fill(force_group, float("inf"))
        group_idx = torch.topk(group_scores, k=spec.topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores)
        group_mask.scatter_(1, group_idx, 1)
        score_mask = group_mask.unsqueeze(-1).expand(-1, spec.n_group, per_group).reshape(-1, spec.num_experts)
        scores_for_choice = scores_for_choice.masked_fill(~score_mask.bool(), float("-inf"))
        indices = torch.topk(scores_for_choice, k=spec.top_k, dim=-1, sorted=False)[1]
        weights = scores.gather(1, indices)
        if spec.norm_topk_prob:
            denominator = weights.sum(dim=-1, keepdim=True) + 1e-20
            weights /= denominator
        weights = weights * spec.routed_scaling_factor
        return RouteResult(logits=z, indices=indices, weights=weights)
