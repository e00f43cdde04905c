"""top-k -> sigmoid routers: Llama-4 (the k largest logits, each weighted by its own sigmoid; no renormalisation).

The router returns dense [T, E] scores (the sigmoid at the selected experts, 0 elsewhere) that the
block multiplies into the experts' inputs; ``Adapter.hf_output`` writes the adapter's weights back
in that form.
"""

from __future__ import annotations

import torch

from moe_routing.capture.adapters.base import Adapter, RouteResult, RouterSpec, RowPlan, apply_logit_interventions


class SigmoidTopKAdapter(Adapter):
    kind = "sigmoid_topk"

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        top_value, indices = torch.topk(z, spec.top_k, dim=1)
        weights = torch.sigmoid(top_value.float()).to(z.dtype)
        return RouteResult(logits=z, indices=indices, weights=weights)
