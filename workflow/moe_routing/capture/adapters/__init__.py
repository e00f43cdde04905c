"""Model adapters: one router kind per family of the family table (families.py), chosen by ``model_type``.

``get_adapter(model_or_config)`` returns the family's adapter; its pure tensor API is documented
in adapters/base.py (shared by the transformers and vLLM backends). ``get_adapter(config, kind=...)``
forces a router kind (the ``adapter:`` key of a model in the workflow config): on a family of the
table it replaces the row's kind, on any other model_type it finds the router by its usual names;
the load-time probe (backends/probe.py) then checks the kind against what the experts receive.
"""

from __future__ import annotations

from dataclasses import replace

from moe_routing.capture.adapters.base import (
    Adapter,
    CompiledPlan,
    RouteResult,
    RouterSite,
    RouterSpec,
    RowPlan,
    activation_eps,
    apply_logit_interventions,
)
from moe_routing.capture.adapters.families import FAMILIES, Family, unknown_family_message
from moe_routing.capture.adapters.sigmoid_groups import SigmoidGroupsAdapter
from moe_routing.capture.adapters.sigmoid_topk import SigmoidTopKAdapter
from moe_routing.capture.adapters.softmax_topk import (
    SoftmaxBiasTopKAdapter,
    SoftmaxGroupsAdapter,
    SoftmaxTopKAdapter,
    SoftmaxTopKPNormAdapter,
)
from moe_routing.capture.adapters.sparsemixer import SparseMixerAdapter
from moe_routing.capture.adapters.topk_softmax import TopKSoftmaxAdapter
from moe_routing.core.errors import ConfigError, ModelError

# router kind -> adapter class (the config schema's `adapter:` enum lists these keys)
KINDS: dict[str, type[Adapter]] = {
    cls.kind: cls
    for cls in (
        SoftmaxTopKAdapter,
        SoftmaxBiasTopKAdapter,
        SoftmaxGroupsAdapter,
        SoftmaxTopKPNormAdapter,
        TopKSoftmaxAdapter,
        SigmoidTopKAdapter,
        SigmoidGroupsAdapter,
        SparseMixerAdapter,
    )
}

ADAPTERS: dict[str, Adapter] = {model_type: KINDS[f.kind](f) for model_type, f in FAMILIES.items()}


def model_type_of(model_or_config) -> str:
    config = getattr(model_or_config, "config", model_or_config)
    # vLLM wraps the transformers config as hf_config
    config = getattr(config, "hf_config", config)
    model_type = getattr(config, "model_type", None)
    if not model_type:
        raise ModelError(f"{type(model_or_config).__name__}: no config.model_type to choose a router adapter from")
    return str(model_type)


def get_adapter(model_or_config, kind: str | None = None) -> Adapter:
    """The adapter for a loaded model (or its config), chosen by ``config.model_type``; ``kind`` forces a router kind."""
    model_type = model_type_of(model_or_config)
    if kind is not None:
        return forced_adapter(model_type, kind)
    if model_type not in ADAPTERS:
        raise ModelError(unknown_family_message(model_type))
    return ADAPTERS[model_type]


def forced_adapter(model_type: str, kind: str) -> Adapter:
    """``kind`` on ``model_type``: the table's row with another kind, or a row that finds the router by name."""
    if kind not in KINDS:
        raise ConfigError(f"adapter: unknown router kind {kind!r}; choose one of {sorted(KINDS)}")
    if model_type in FAMILIES:
        family = replace(FAMILIES[model_type], kind=kind, vllm_gate=None, vllm_verified=False)
    else:
        # block "*": any module with an `experts` child and a `gate`/`router` child; outputs inferred; layers
        # from the model transformers builds for the config (no weights)
        family = Family(model_type, kind, "", "", "", block="*", outputs=(), layers="built")
    return KINDS[kind](family)


__all__ = [
    "ADAPTERS",
    "FAMILIES",
    "KINDS",
    "Adapter",
    "CompiledPlan",
    "RouteResult",
    "RouterSite",
    "RouterSpec",
    "RowPlan",
    "activation_eps",
    "apply_logit_interventions",
    "forced_adapter",
    "get_adapter",
    "model_type_of",
]
