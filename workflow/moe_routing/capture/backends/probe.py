"""The load-time probe: the adapter must replay what the model's own experts receive, layer by layer.

Before the first batch, one short forward pass of fixed token ids runs with hooks on every MoE
block: the router's output (its logits) and the (top_k_index, top_k_weights) the experts module
is called with (Llama-4: the dense scores the block multiplies into the experts' inputs). The
adapter's ``gate`` on those logits must give the same experts and, within the dtype's rounding,
the same weights. Any difference (a family row or a forced ``adapter:`` kind that does not fit
the model) stops the job with one line naming the family and the first MoE layer that differs.
"""

from __future__ import annotations

import torch

from moe_routing.core.errors import ModelError

PROBE_TOKENS = 12
PROBE_SEQS = 2
# |replayed - received| allowed on a combine weight, per weight dtype (same ops on the same device are exact)
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-9, torch.bfloat16: 2e-2, torch.float16: 2e-3}


def probe_ids(vocab_size: int, device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, int(vocab_size), (PROBE_SEQS, PROBE_TOKENS), generator=gen).to(device)


def record_routing(model, adapter, sites, input_ids: torch.Tensor) -> list[dict]:
    """Per MoE layer position: the router's output and the (indices, weights) its experts received, one forward."""
    seen: list[dict] = [{} for _ in sites]
    handles = []

    def on_router(pos):
        def hook(module, args, output):
            seen[pos].setdefault("router", output)

        return hook

    def on_experts(pos):
        def hook(module, args, kwargs):
            vals = list(args) + list(kwargs.values())
            if len(vals) >= 3 and torch.is_tensor(vals[1]) and not vals[1].is_floating_point():
                seen[pos].setdefault("received", (vals[1].detach().clone(), vals[2].detach().clone()))

        return hook

    try:
        for pos, site in enumerate(sites):
            handles.append(site.router.register_forward_hook(on_router(pos)))
            handles.append(site.experts.register_forward_pre_hook(on_experts(pos), with_kwargs=True))
        with torch.inference_mode():
            model(input_ids=input_ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return seen


def _dense(indices: torch.Tensor, weights: torch.Tensor, num_experts: int) -> torch.Tensor:
    idx = indices.detach().cpu().long()
    return torch.zeros(idx.shape[0], num_experts, dtype=torch.float64).scatter(1, idx, weights.detach().cpu().double())


def compare(adapter, spec, site, seen: dict) -> str | None:
    """Why the adapter's replay differs from what this layer's experts received, or None if it does not."""
    if "router" not in seen:
        return "its router was never called"
    out = seen["router"]
    logits, _, _ = adapter.hf_read(out)
    bias = site.bias.to(logits.device) if site.bias is not None else None
    r_idx, r_w = adapter.gate(logits, spec, bias)
    if "received" in seen:
        e_idx, e_w = seen["received"]
        if e_idx.shape != r_idx.shape:
            return (
                f"the experts received top-{e_idx.shape[-1]} indices {tuple(e_idx.shape)}, the adapter gives {tuple(r_idx.shape)}"
            )
        if not torch.equal(e_idx.sort(dim=-1).values.cpu(), r_idx.sort(dim=-1).values.cpu()):
            rows = int((e_idx.sort(dim=-1).values.cpu() != r_idx.sort(dim=-1).values.cpu()).any(dim=-1).sum())
            return f"other experts selected in {rows} of {e_idx.shape[0]} tokens"
        received, tol_dtype = _dense(e_idx, e_w, spec.num_experts), e_w.dtype
    elif "scores" in adapter._names(out):
        scores = out[adapter._names(out).index("scores")]
        received, tol_dtype = scores.detach().cpu().double(), scores.dtype
        if not torch.equal(received != 0, _dense(r_idx, r_w, spec.num_experts) != 0):
            return "other experts selected"
    else:
        return "its experts module was never called with (hidden, top_k_index, top_k_weights)"
    diff = float((received - _dense(r_idx, r_w, spec.num_experts)).abs().max())
    if diff > TOLERANCE.get(tol_dtype, 1e-5):
        return f"combine weights differ by up to {diff:.3g}"
    return None


def probe(model, adapter, spec, sites, device) -> None:
    """ModelError unless the adapter replays every MoE layer's routing (see module docstring)."""
    vocab = getattr(model.config, "vocab_size", None) or model.get_input_embeddings().weight.shape[0]
    seen = record_routing(model, adapter, sites, probe_ids(vocab, device))
    for pos, site in enumerate(sites):
        why = compare(adapter, spec, site, seen[pos])
        if why is not None:
            raise ModelError(
                f"{adapter.family.model_type}: router kind {adapter.kind!r} does not replay the model's own routing "
                f"at layer {site.layer} (the first MoE layer that differs: {why}); fix the family's row in "
                "adapters/families.py or the model's `adapter:` key"
            )
