"""softmax -> top-k router kinds.

- ``softmax_topk``: softmax over all experts, top-k, renormalised if ``norm_topk_prob`` (Qwen2/3-MoE,
  Qwen3-Next, OLMoE, FlexOlmo, Mixtral, MiniMax, Hunyuan, Jamba).
- ``softmax_bias_topk``: selection on softmax + a per-expert bias, weights the softmax of the
  selected experts over their clamped sum (ERNIE-4.5-MoE).
- ``softmax_groups``: DeepSeek-V2's greedy or group-limited greedy top-k, weights the softmax
  times ``routed_scaling_factor``, not renormalised.
- ``softmax_topk_pnorm``: softmax in the logits' dtype, top-k divided by its p-norm (DBRX).
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


class SoftmaxTopKAdapter(Adapter):
    kind = "softmax_topk"

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        # same op order and dtypes as the transformers routers, so the result is bit-identical
        probs = torch.nn.functional.softmax(z, dtype=torch.float, dim=-1)
        top_value, indices = torch.topk(probs, spec.top_k, dim=-1)
        if spec.norm_topk_prob:
            top_value /= top_value.sum(dim=-1, keepdim=True)
        # most cast back to the logits dtype; Mixtral and MiniMax keep float32 (equal for float32 models)
        if not self.family.weights_float:
            top_value = top_value.to(z.dtype)
        return RouteResult(logits=z, indices=indices, weights=top_value)


class SoftmaxBiasTopKAdapter(Adapter):
    """ERNIE-4.5: ``topk(softmax(z) + e_score_correction_bias)``; the weights ignore the bias."""

    kind = "softmax_bias_topk"
    # vLLM selects on softmax + bias: a deactivated expert's logit alone may not keep it out
    vllm_selection_override = True

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        probs = torch.nn.functional.softmax(z.float(), dim=1, dtype=torch.float)
        choice = probs if bias is None else probs + bias.reshape(-1)
        choice, _ = steer_selection(choice, rows)
        _, indices = torch.topk(choice, spec.top_k, dim=-1)
        weights = torch.gather(probs, dim=-1, index=indices)
        weights = weights / torch.clamp(weights.sum(dim=-1, keepdim=True), min=spec.norm_min)
        return RouteResult(logits=z, indices=indices, weights=weights)


class SoftmaxGroupsAdapter(Adapter):
    """DeepSeek-V2: greedy top-k of the softmax, or within the ``topk_group`` groups of best max score."""

    kind = "softmax_groups"

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        scores = z.softmax(dim=-1, dtype=torch.float32)
        if spec.topk_method == "greedy":
            choice, _ = steer_selection(scores, rows)
            indices = torch.topk(choice, k=spec.top_k, dim=-1, sorted=False)[1]
        elif spec.topk_method == "group_limited_greedy":
            per_group = spec.num_experts // spec.n_group
            choice, force_group = steer_selection(scores, rows, spec.n_group)
            group_scores = choice.view(-1, spec.n_group, per_group).max(dim=-1).values
            if force_group is not None:
                group_scores = group_scores.masked_fill(force_group, float("inf"))
            group_idx = torch.topk(group_scores, k=spec.topk_group, dim=-1, sorted=False)[1]
            group_mask = torch.zeros_like(group_scores)
            group_mask.scatter_(1, group_idx, 1)
            score_mask = group_mask.unsqueeze(-1).expand(-1, spec.n_group, per_group).reshape(-1, spec.num_experts)
            # the model fills masked experts with 0.0; a deactivated expert sits below that
            choice = choice.masked_fill(~score_mask.bool(), 0.0)
            if rows is not None and bool(rows.deactivate.any()):
                choice = torch.where(rows.deactivate & rows.touched[:, None], torch.full_like(choice, -1.0), choice)
            indices = torch.topk(choice, k=spec.top_k, dim=-1, sorted=False)[1]
        else:
            raise ValueError(f"deepseek_v2: unknown topk_method {spec.topk_method!r}")
        weights = scores.gather(1, indices) * spec.routed_scaling_factor
        return RouteResult(logits=z, indices=indices, weights=weights)


class SoftmaxTopKPNormAdapter(Adapter):
    """DBRX: ``softmax`` in the logits' dtype, top-k, divided by the top-k's ``moe_normalize_expert_weights``-norm."""

    kind = "softmax_topk_pnorm"

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        probs = torch.nn.functional.softmax(z, dim=1, dtype=z.dtype)
        top_value, indices = torch.topk(probs, spec.top_k, dim=-1)
        if spec.pnorm is not None:
            top_value = top_value / torch.norm(top_value, p=spec.pnorm, dim=-1, keepdim=True)
        return RouteResult(logits=z, indices=indices, weights=top_value)
