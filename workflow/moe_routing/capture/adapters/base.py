"""The adapter API: pure tensor functions for MoE gating and router interventions.

One ``Adapter`` subclass per router kind (softmax_topk.py, topk_softmax.py, sigmoid_topk.py,
sigmoid_groups.py, sparsemixer.py), one instance per model family: its row of the family table
(families.py) says where the family keeps its routers and which config keys its gating reads.
The math takes tensors and a ``RouterSpec`` only, never transformers or vLLM module objects, so
both backends drive the same code:

    spec = adapter.spec_from_config(config)            # top_k, E, norm_topk_prob, groups, ...
    indices, weights = adapter.gate(logits, spec, bias)  # the model's own selection, exactly
    rows = plan.rows(layer_pos, row_seq)                # per-row interventions (or None)
    result = adapter.route(logits, spec, bias, rows)    # intervened logits, indices, weights

Shapes: ``logits`` [T, E] (T = rows of the flattened batch, pad rows included), ``indices``
[T, k] int64, ``weights`` [T, k] in the dtype the model's experts module receives.
``bias`` is the per-layer selection bias of sigmoid+bias families (``e_score_correction_bias``,
[E]), else None. ``row_seq`` [T] int64 maps each row to its sequence's position in the batch:
a batch of B sequences flattened as [B, S_len] gives ``row_seq = arange(B).repeat_interleave(S_len)``;
vLLM's packed rows give it from ``query_start_loc``.

Interventions (METHOD "Interventions on the router"), applied per row before gating, in this
order, all computed from the same token's logits:
  soft:        z_k <- z_k + lambda * std(z)        (population std over the E logits)
  activate:    z_k <- max(z') + |eps_k|            (eps ~ N(0, 1e-6) per (layer, expert), seeded;
                                                    bumped to the next float if it rounds to max)
  deactivate:  z_k <- min(z') - 1                  (strictly below every other logit)
Sigmoid+bias families select on ``sigmoid(z) + bias``: there the selection score of a
deactivated expert is also pushed below the row's minimum, an activated one above the maximum,
and its group is forced into the chosen groups. Deactivation holds as long as at least k experts
of the row stay active. Rows of sequences with no intervention are returned bit-identical.

HF-specific location of routers lives in ``Adapter.locate_hf`` (see ``RouterSite``). Family
conventions of prompts and answers, which both backends share, are ``chat_template_kwargs``
(extra chat-template variables) and ``answer_text`` (the answer in the generated tokens).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from moe_routing.capture.adapters.families import Family
from moe_routing.core.errors import ModelError

ACTIVATE_EPS_STD = 1e-6


@dataclass(frozen=True)
class RouterSpec:
    """Config values the gating of one model needs (same for every MoE layer)."""

    num_experts: int
    top_k: int
    norm_topk_prob: bool = True
    n_group: int = 1
    topk_group: int = 1
    routed_scaling_factor: float = 1.0
    jitter_eps: float = 0.0
    norm_min: float = 0.0  # ERNIE-4.5: the renormalising sum is clamped to at least this
    pnorm: float | None = None  # DBRX: top-k weights divided by their p-norm (None: not renormalised)
    topk_method: str = "greedy"  # DeepSeek-V2: "greedy" or "group_limited_greedy"


@dataclass
class RouteResult:
    logits: torch.Tensor  # [T, E] after interventions (the input itself when there are none)
    indices: torch.Tensor  # [T, k] int64
    weights: torch.Tensor  # [T, k]


@dataclass
class RowPlan:
    """Interventions for the rows of one router call at one layer (see ``CompiledPlan.rows``)."""

    deactivate: torch.Tensor  # [T, E] bool
    activate: torch.Tensor  # [T, E] bool
    soft: torch.Tensor  # [T, E] float64: lambda, 0 where no soft intervention
    eps: torch.Tensor  # [E] float64, >= 0: the activation margin of each expert at this layer
    touched: torch.Tensor  # [T] bool: rows with any intervention


@dataclass
class RouterSite:
    """One MoE layer of a loaded transformers model."""

    layer: int  # model layer index (decoder layer number)
    router: Any  # nn.Module whose output holds the logits (Family.outputs says in which order)
    experts: Any  # nn.Module that receives (hidden, indices, weights) (Llama-4: the routed inputs only)
    bias: torch.Tensor | None = None  # selection bias (sigmoid+bias families)


@dataclass
class CompiledPlan:
    """Per-sequence interventions of one batch, as dense [S, L, E] tensors over MoE layer positions."""

    deactivate: torch.Tensor  # [S, L, E] bool
    activate: torch.Tensor  # [S, L, E] bool
    soft: torch.Tensor  # [S, L, E] float64
    eps: torch.Tensor  # [L, E] float64
    layer_touched: torch.Tensor = field(init=False)  # [L] bool

    def __post_init__(self) -> None:
        any_mode = self.deactivate | self.activate | (self.soft != 0)
        self.layer_touched = any_mode.any(dim=(0, 2)).cpu()
        self._seq_touched = any_mode.any(dim=2)  # [S, L]

    def to(self, device) -> "CompiledPlan":
        """The same plan with its tensors on ``device`` (the per-layer touched flags stay on the host)."""
        touched = self.layer_touched
        moved = CompiledPlan(self.deactivate.to(device), self.activate.to(device), self.soft.to(device), self.eps.to(device))
        moved.layer_touched = touched
        return moved

    def rows(self, layer_pos: int, row_seq: torch.Tensor) -> RowPlan | None:
        """The plan for one router call: None when no sequence of the batch is touched at this layer."""
        if not bool(self.layer_touched[layer_pos]):
            return None
        idx = row_seq.to(self.deactivate.device)
        return RowPlan(
            deactivate=self.deactivate[idx, layer_pos],
            activate=self.activate[idx, layer_pos],
            soft=self.soft[idx, layer_pos],
            eps=self.eps[layer_pos],
            touched=self._seq_touched[idx, layer_pos],
        )


def activation_eps(num_layers: int, num_experts: int, seed: int) -> torch.Tensor:
    """|eps| per (MoE layer position, expert): drawn once from ``seed`` so any batching gives the same values."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn((num_layers, num_experts), generator=gen, dtype=torch.float64).abs() * ACTIVATE_EPS_STD


def _strictly_above(base: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """base + margin, but never equal to base after rounding to base's dtype."""
    raised = (base.double() + margin).to(base.dtype)
    bumped = torch.nextafter(base, torch.full_like(base, float("inf")))
    return torch.where(raised > base, raised, bumped)


def apply_logit_interventions(logits: torch.Tensor, rows: RowPlan) -> torch.Tensor:
    """Soft, activate, deactivate on [T, E] logits (see module docstring); untouched rows are unchanged."""
    z = logits
    z64 = z.double()
    if bool((rows.soft != 0).any()):
        std = z64.std(dim=-1, correction=0, keepdim=True)
        z64 = z64 + rows.soft * std
    z_soft = z64.to(z.dtype)
    out = z_soft
    if bool(rows.activate.any()):
        row_max = out.max(dim=-1, keepdim=True).values.expand_as(out)
        lifted = _strictly_above(row_max, rows.eps.expand_as(out))
        out = torch.where(rows.activate, lifted, out)
    if bool(rows.deactivate.any()):
        out = torch.where(rows.deactivate, below_min(z_soft), out)
    # rows of untouched sequences keep their exact original bits
    return torch.where(rows.touched[:, None], out, logits)


def steer_selection(scores: torch.Tensor, rows: RowPlan | None, n_group: int = 1):
    """Interventions on a selection score that is not the logits (softmax or sigmoid plus a bias):
    a deactivated expert's score below the row's minimum, an activated one's above its maximum.
    Returns the scores and, per row, the groups an activated expert forces in ([T, n_group] bool, or None)."""
    if rows is None:
        return scores, None
    s, force_group = scores, None
    if bool(rows.activate.any()):
        lifted = _strictly_above(s.max(dim=-1, keepdim=True).values.expand_as(s), rows.eps.expand_as(s))
        s = torch.where(rows.activate, lifted, s)
        force_group = rows.activate.view(rows.activate.shape[0], n_group, -1).any(dim=-1)
    if bool(rows.deactivate.any()):
        s = torch.where(rows.deactivate, below_min(scores), s)
    return torch.where(rows.touched[:, None], s, scores), force_group


def below_min(x: torch.Tensor) -> torch.Tensor:
    """Per row, a value strictly below the row's minimum (min - 1, as a float of x's dtype), [T, E]."""
    row_min = x.min(dim=-1, keepdim=True).values
    lowered = row_min - 1.0
    lowered = torch.where(lowered < row_min, lowered, torch.nextafter(row_min, torch.full_like(row_min, -float("inf"))))
    return lowered.expand_as(x)


class Adapter(ABC):
    """One router kind, instantiated for one model family (its row of families.FAMILIES)."""

    kind: str = ""
    # vLLM selects on something other than the logits (sigmoid + bias), so intervened logits alone cannot
    # force a hard selection: on intervened rows the router's own (weights, ids) are replaced by ``route``'s
    vllm_selection_override: bool = False

    def __init__(self, family: Family):
        self.family = family

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.family.model_type})"

    @property
    def vllm_gate_names(self) -> dict[str, str]:
        """vLLM (backends/vllm_worker.py): leaf name of the router linear in vLLM's model code, per model_type."""
        return {self.family.model_type: self.family.vllm_gate} if self.family.vllm_gate else {}

    @property
    def vllm_verified(self) -> tuple[str, ...]:
        return (self.family.model_type,) if self.family.vllm_verified else ()

    def spec_from_config(self, config) -> RouterSpec:
        return RouterSpec(**self.family.spec_values(config))

    @abstractmethod
    def route(
        self, logits: torch.Tensor, spec: RouterSpec, bias: torch.Tensor | None = None, rows: RowPlan | None = None
    ) -> RouteResult:
        """Intervene (if ``rows``) and gate exactly as the model does."""

    def gate(self, logits: torch.Tensor, spec: RouterSpec, bias: torch.Tensor | None = None):
        """The model's own (indices, weights) for these logits."""
        r = self.route(logits, spec, bias, None)
        return r.indices, r.weights

    def moe_layer_indices(self, config) -> list[int]:
        """Decoder layers (0-based) that have an MoE router, from the config alone (no weights).

        ``config`` is a transformers config or the checkpoint's config.json as attributes
        (``types.SimpleNamespace(**json.load(f))``); a key missing from config.json means
        transformers' default. Agrees with ``locate_hf`` on the loaded model (the family's layer rule).
        """
        return self.family.moe_layers(config)

    # --- prompts and answers -------------------------------------------------------
    def chat_template_kwargs(self) -> dict:
        """Variables this family's chat template reads beyond ``enable_thinking`` (none by default)."""
        return {}

    def answer_text(self, tokenizer, output_ids: list[int]) -> str:
        """The answer in the generated tokens, as the judges read it: the decoded text without special tokens."""
        return tokenizer.decode(output_ids, skip_special_tokens=True)

    # --- transformers ---------------------------------------------------------------
    def locate_hf(self, model) -> list[RouterSite]:
        """MoE routers of a transformers model, in layer order; ModelError if there are none."""
        f = self.family
        layers = _decoder_layers(model, f.decoder)
        sites: list[RouterSite] = []
        for i, layer in enumerate(layers):
            for _, module in layer.named_modules():
                if _is_block(module, f):
                    router = getattr(module, f.router, None) if f.block != "*" else _generic_router(module)
                    experts = getattr(module, f.experts)
                    sites.append(RouterSite(layer=i, router=router, experts=experts, bias=self.hf_bias(router, module)))
                    break
        if not sites:
            raise ModelError(
                f"model_type {f.model_type!r}: no MoE block ({f.block}) in any of the {len(layers)} decoder layers; "
                "is this a dense checkpoint?"
            )
        return sites

    def hf_bias(self, router, block=None) -> torch.Tensor | None:
        """The selection bias (the family's ``bias`` path on the router module, else on its MoE block), squeezed to [E]."""
        if not self.family.bias:
            return None
        for obj in (router, block):
            for part in self.family.bias.split("."):
                obj = getattr(obj, part, None)
            if obj is not None:
                return obj.detach().reshape(-1)
        raise ModelError(f"{self.family.model_type}: no selection bias {self.family.bias!r} on the router or its MoE block")

    def hf_read(self, output) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(logits, weights, indices) of a router module's output; weights and indices None where the
        router does not return them (the block gates the logits itself, or returns dense scores)."""
        names = self._names(output)
        if names == ("logits",):
            return (output if torch.is_tensor(output) else output[0]), None, None
        got = dict(zip(names, output))
        return got["logits"], got.get("weights"), got.get("indices")

    def hf_output(self, result: RouteResult, original):
        """The router output the MoE block expects, carrying ``result`` (weights in the router's own dtype)."""
        names = self._names(original)
        if names == ("logits",) and torch.is_tensor(original):
            return result.logits
        out = list(original)
        for n, name in enumerate(names):
            if name == "logits":
                out[n] = result.logits
            elif name == "weights":
                out[n] = result.weights.to(original[n].dtype)
            elif name == "indices":
                out[n] = result.indices
            elif name == "scores":  # dense [T, E]: the weights at the selected experts, 0 elsewhere
                out[n] = torch.zeros_like(original[n]).scatter(1, result.indices, result.weights.to(original[n].dtype))
        return tuple(out)

    def _names(self, output) -> tuple[str, ...]:
        if self.family.outputs:
            return self.family.outputs
        return _infer_outputs(output)

    # --- vLLM -------------------------------------------------------------------------
    def vllm_gate_name(self, model_type: str) -> str:
        """The router module's leaf name in vLLM's model; ModelError if vLLM does not serve this family here."""
        if model_type not in self.vllm_gate_names:
            raise ModelError(
                f"model_type {model_type!r}: the vLLM backend has no router mapping for it (use the hf backend); "
                "families.FAMILIES says which families vLLM serves"
            )
        return self.vllm_gate_names[model_type]


def _is_block(module, family: Family) -> bool:
    if family.block != "*":
        return type(module).__name__ == family.block
    return hasattr(module, "experts") and _generic_router(module) is not None


def _generic_router(module):
    # a family not in the table (``adapter:`` forced): the block's router child is named gate or router
    for name in ("gate", "router"):
        child = getattr(module, name, None)
        if child is not None and hasattr(child, "forward"):
            return child
    return None


def _infer_outputs(output) -> tuple[str, ...]:
    """Router outputs of a family not in the table, by dtype and shape: int64 = indices, the widest float = logits."""
    if torch.is_tensor(output):
        return ("logits",)
    tensors = [t for t in output if torch.is_tensor(t)]
    if len(tensors) != len(output) or len(output) not in (2, 3):
        raise ModelError("router returns something other than (logits, weights, indices) tensors: add the family to the table")
    names = ["weights"] * len(output)
    floats = [n for n, t in enumerate(output) if t.is_floating_point()]
    for n, t in enumerate(output):
        if not t.is_floating_point():
            names[n] = "indices"
    widest = max(floats, key=lambda n: output[n].shape[-1])
    names[widest] = "logits"
    if len(output) == 2:
        return tuple("scores" if nm == "weights" else nm for nm in names)
    return tuple(names)


def _decoder_layers(model, path: str = "model.layers"):
    for candidate in (path, "model.layers", "layers", "model.model.layers", "model.language_model.layers"):
        obj = model
        try:
            for part in candidate.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)
    raise ModelError(f"{type(model).__name__}: cannot find the decoder layers ({path})")
