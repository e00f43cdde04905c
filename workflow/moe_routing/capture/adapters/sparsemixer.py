"""SparseMixer routers: Phi-3.5-MoE (top-2; inference path of transformers' ``sparsemixer``).

Top-1 is the max logit; its weight is the softmax over the logits within a relative margin
``2 * router_jitter_noise`` of the max. Top-2 repeats this with the first expert masked out.
"""

from __future__ import annotations

import torch

from moe_routing.capture.adapters.base import Adapter, RouteResult, RouterSpec, RowPlan, apply_logit_interventions
from moe_routing.core.errors import ModelError


def sparsemixer_eval(scores: torch.Tensor, jitter_eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(multiplier [T, 2], selected [T, 2]) exactly as transformers' sparsemixer with training=False."""
    threshold, max_ind = scores.max(dim=-1, keepdim=True)
    factor = scores.abs().clamp(min=threshold)
    mask = ((threshold - scores) / factor) > (2 * jitter_eps)
    masked_gates = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    selected = max_ind
    multiplier = masked_gates.gather(dim=-1, index=selected)

    masked_scores = torch.scatter(scores, -1, selected, float("-inf"))
    threshold, max_ind = masked_scores.max(dim=-1, keepdim=True)
    factor = scores.abs().clamp(min=threshold)
    mask = ((threshold - scores) / factor) > (2 * jitter_eps)
    masked_gates_top2 = torch.softmax(masked_scores.masked_fill(mask, float("-inf")), dim=-1)
    selected_top2 = max_ind
    multiplier_top2 = masked_gates_top2.gather(dim=-1, index=selected_top2)
    return torch.concat((multiplier, multiplier_top2), dim=-1), torch.concat((selected, selected_top2), dim=-1)


class SparseMixerAdapter(Adapter):
    kind = "sparsemixer"
    # not served by vLLM: vLLM runs phimoe through its transformers fallback (router inside the HF
    # module, different outputs), so it runs on the hf backend only

    def spec_from_config(self, config) -> RouterSpec:
        if int(config.num_experts_per_tok) != 2:
            raise ModelError(
                f"phimoe: sparsemixer routes top-2 only, config has num_experts_per_tok={config.num_experts_per_tok}"
            )
        return super().spec_from_config(config)

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        weights, indices = sparsemixer_eval(z, spec.jitter_eps)
        return RouteResult(logits=z, indices=indices, weights=weights)
