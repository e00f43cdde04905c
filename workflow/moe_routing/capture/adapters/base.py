"""The adapter API: pure tensor functions for MoE gating and router interventions.

One ``Adapter`` subclass per router family (softmax_topk.py, topk_softmax.py,
sigmoid_groups.py, sparsemixer.py). The math takes tensors and a ``RouterSpec`` only, never
transformers or vLLM module objects, so both backends drive the same code:

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
    router: Any  # nn.Module whose output is (logits, weights, indices)
    experts: Any  # nn.Module that receives (hidden, indices, weights)
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


def below_min(x: torch.Tensor) -> torch.Tensor:
    """Per row, a value strictly below the row's minimum (min - 1, as a float of x's dtype), [T, E]."""
    row_min = x.min(dim=-1, keepdim=True).values
    lowered = row_min - 1.0
    lowered = torch.where(lowered < row_min, lowered, torch.nextafter(row_min, torch.full_like(row_min, -float("inf"))))
    return lowered.expand_as(x)


class Adapter(ABC):
    """One router family. Subclasses set ``family``, ``model_types``, ``router_classes`` and, where vLLM
    serves the family, the ``vllm_*`` attributes."""

    family: str = ""
    model_types: tuple[str, ...] = ()
    # transformers class names of the router modules, per model_type
    router_classes: dict[str, str] = {}
    # vLLM (backends/vllm_worker.py): leaf name of the router linear inside each MoE block of vLLM's
    # model code, per model_type; a model_type missing here is not served by the vLLM backend
    vllm_gate_names: dict[str, str] = {}
    # model_types whose vLLM tokens and summaries were checked against transformers (tests/test_vllm_parity.py)
    vllm_verified: tuple[str, ...] = ()
    # vLLM selects on something other than the logits (sigmoid + bias), so intervened logits alone cannot
    # force a hard selection: on intervened rows the router's own (weights, ids) are replaced by ``route``'s
    vllm_selection_override: bool = False

    @abstractmethod
    def spec_from_config(self, config) -> RouterSpec: ...

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
        transformers' default. Agrees with ``locate_hf`` on the loaded model. This default, every
        decoder layer, holds for OLMoE, Mixtral, GPT-OSS and Phi-3.5-MoE.
        """
        layers = getattr(config, "num_hidden_layers", None)
        if layers is None:
            raise ModelError(f"model_type {getattr(config, 'model_type', None)!r}: config has no num_hidden_layers")
        return list(range(int(layers)))

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
        model_type = model.config.model_type
        cls_name = self.router_classes.get(model_type)
        layers = _decoder_layers(model)
        sites: list[RouterSite] = []
        for i, layer in enumerate(layers):
            for _, module in layer.named_modules():
                if type(module).__name__ == cls_name:
                    parent = _parent_with_experts(layer, module)
                    sites.append(RouterSite(layer=i, router=module, experts=parent.experts, bias=self.hf_bias(module)))
                    break
        if not sites:
            raise ModelError(
                f"model_type {model_type!r}: no MoE router ({cls_name}) in any of the {len(layers)} decoder layers; "
                "is this a dense checkpoint?"
            )
        return sites

    def hf_bias(self, router) -> torch.Tensor | None:
        return None

    # --- vLLM -------------------------------------------------------------------------
    def vllm_gate_name(self, model_type: str) -> str:
        """The router module's leaf name in vLLM's model; ModelError if vLLM does not serve this family here."""
        if model_type not in self.vllm_gate_names:
            raise ModelError(
                f"model_type {model_type!r}: the vLLM backend has no router mapping for it (use the hf backend); "
                f"vLLM-served families: {sorted(self.vllm_gate_names)} in this adapter"
            )
        return self.vllm_gate_names[model_type]

    @staticmethod
    def hf_output(result: RouteResult, original: tuple) -> tuple:
        """The router output tuple the MoE block expects: (logits, weights, indices)."""
        return (result.logits, result.weights, result.indices) + tuple(original[3:])


def _decoder_layers(model):
    for path in ("model.layers", "layers", "model.model.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)
    raise ModelError(f"{type(model).__name__}: cannot find the decoder layers (model.layers)")


def _parent_with_experts(layer, router):
    for _, module in layer.named_modules():
        if any(child is router for child in module.children()) and hasattr(module, "experts"):
            return module
    raise ModelError(f"{type(router).__name__} in {type(layer).__name__} has no sibling `experts` module")
