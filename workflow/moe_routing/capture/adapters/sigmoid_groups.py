"""sigmoid + bias routers with expert groups: DeepSeek-V3, GLM-4.5 (Glm4Moe), dots.llm1 and the other copies of DeepSeek-V3's router.

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
    apply_logit_interventions,
    steer_selection,
)


class SigmoidGroupsAdapter(Adapter):
    kind = "sigmoid_groups"
    # vLLM selects on sigmoid(z) + bias; replaced weights are divided by the routed_scaling_factor vLLM applies later
    vllm_selection_override = True

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        if bias is None:
            bias = torch.zeros(spec.num_experts, dtype=torch.float32, device=logits.device)
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        # float32 as the routers compute it (DeepSeek-V3's logits already are; MiniMax-M2 casts them)
        scores = z.float().sigmoid()
        scores_for_choice = scores + bias
        per_group = spec.num_experts // spec.n_group
        scores_for_choice, force_group = steer_selection(scores_for_choice, rows, spec.n_group)
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
