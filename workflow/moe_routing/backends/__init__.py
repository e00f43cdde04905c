"""Generation backends: batched generation with router capture and per-sequence interventions.

Every backend implements ``Backend`` below; ``load_backend`` picks one by name.
The returned table follows the generations contract (contracts.GENERATIONS_BASE,
plus contracts.ROUTING_COLUMNS when ``capture`` is on) and carries in its schema how
it was made (contracts.run_metadata: backend, device, load and generation seconds),
the model and its dtype, and with capture the routing metadata (contracts.routing_metadata).

``dtype: auto`` is resolved here, once for both backends (``resolve_dtype``): the
checkpoint's own dtype, so switching backends never changes the numbers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl
import pyarrow as pa

from moe_routing.errors import ConfigError

BACKENDS = {"hf": "moe_routing.backends.hf", "vllm": "moe_routing.backends.vllm"}


@dataclass
class GenerationOptions:
    batch_size: int = 16
    # 0 = prefill only: route the prompt, generate nothing (parallel corpora like FLORES)
    max_new_tokens: int = 32
    capture: bool = True
    seed: int = 0
    consistency_pairs: int = 500
    # passed to the chat template where it supports it (Qwen3: enable_thinking)
    enable_thinking: bool = False
    use_chat_template: bool = True
    # keep generating past end-of-sequence up to max_new_tokens (benchmarks: fixed token counts)
    ignore_eos: bool = False


DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class LoadOptions:
    dtype: str = "auto"  # "auto" (see resolve_dtype) or one of DTYPES
    device: str = "auto"  # "auto", "cpu", "cuda"
    trust_remote_code: bool = False
    extra: dict = field(default_factory=dict)  # backend-specific (e.g. vLLM gpu_memory_utilization)


class Backend(Protocol):
    name: str
    model_path: str
    load_seconds: float

    def generate(
        self,
        items: pl.DataFrame,
        interventions: pl.DataFrame | None = None,
        options: GenerationOptions | None = None,
    ) -> pa.Table:
        """items: the items contract; interventions: the interventions contract (``*`` = every item)."""
        ...


ITEM_COLUMNS = ("item_id", "lang", "prompt", "system")


def check_request(
    items: pl.DataFrame,
    interventions: pl.DataFrame | None,
    options: GenerationOptions | None,
    moe_layers: list[int],
    num_experts: int,
) -> tuple[GenerationOptions, pl.DataFrame | None]:
    """The checks every backend makes before generating; returns the options and the interventions
    (None when there are none)."""
    from moe_routing import interventions as iv
    from moe_routing.errors import ContractError

    opts = options or GenerationOptions()
    missing = [c for c in ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise ContractError(f"items: missing column(s) {missing}; has {items.columns}")
    if opts.batch_size < 1 or opts.max_new_tokens < 0:
        raise ConfigError("batch_size must be >= 1 and max_new_tokens >= 0")
    if interventions is not None:
        interventions = iv.check_interventions(interventions)
        iv.validate(interventions, moe_layers, num_experts)
        if interventions.height == 0:
            interventions = None
    return opts, interventions


def render_prompt(tokenizer, prompt: str, system: str | None, options: GenerationOptions) -> list[int]:
    """Token ids of one item through the model's chat template (thinking off where supported); every
    backend renders with this, so they feed identical tokens."""
    from jinja2 import TemplateError

    if options.use_chat_template and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                 enable_thinking=options.enable_thinking)
        except TemplateError:
            if not system:
                raise
            # some templates reject a system role: fold it into the user turn
            merged = [{"role": "user", "content": f"{system}\n\n{prompt}"}]
            text = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True,
                                                 enable_thinking=options.enable_thinking)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    text = f"{system}\n\n{prompt}" if system else prompt
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(requested: str, config, device: str) -> str:
    """The weights dtype a backend loads, one of DTYPES.

    ``auto`` is the checkpoint's own dtype (config.json ``dtype``, ``torch_dtype`` in older files); a
    config that names none (or a dtype outside DTYPES) gets float32 on CPU and bfloat16 on a GPU. Both
    backends pass the result explicitly: vLLM's own ``auto`` would run a float32 checkpoint in
    bfloat16 and shift routing summaries by ~1e-2 against transformers.
    """
    if requested != "auto":
        if requested not in DTYPES:
            raise ConfigError(f"dtype must be auto or one of {list(DTYPES)}, got {requested!r}")
        return requested
    for source in (config, getattr(config, "text_config", None)):
        found = getattr(source, "dtype", None) or getattr(source, "torch_dtype", None)
        name = str(found).removeprefix("torch.") if found is not None else None
        if name in DTYPES:
            return name
    return "float32" if resolve_device(device) == "cpu" else "bfloat16"


def backend_metadata(backend) -> dict[bytes, bytes]:
    """Schema metadata of the generations a loaded backend writes now (its last generate's seconds)."""
    from moe_routing.contracts import routing_metadata, run_metadata

    return routing_metadata(backend.model_path, backend.moe_layers, backend.num_experts, backend.top_k,
                            backend.dtype) | run_metadata(backend.name, str(backend.device), backend.load_seconds,
                                                          backend.generate_seconds)


def generations_table(tokenizer, rows, prompts, outputs, summaries, metadata: dict[bytes, bytes]) -> pa.Table:
    """The generations contract from per-row token ids and (when captured) routing summaries; ``metadata``
    (contracts.routing_metadata | run_metadata) goes into the schema, without the routing keys when there
    is no capture."""
    from moe_routing.contracts import GENERATIONS, GENERATIONS_BASE, ROUTING_KEYS

    data = {
        "item_id": [r["item_id"] for r in rows],
        "lang": [r["lang"] for r in rows],
        "output": [tokenizer.decode(o, skip_special_tokens=True) for o in outputs],
        "prompt_token_ids": prompts,
        "output_token_ids": outputs,
    }
    if summaries is None:
        kept = {k: v for k, v in metadata.items() if k not in ROUTING_KEYS}
        return pa.table(data, schema=GENERATIONS_BASE).replace_schema_metadata(kept)
    for key in ("weights", "softmax_mean", "freq", "entropy", "consistency"):
        # no rows (an ablation plan that re-asks nothing in this language) -> an empty file, same schema
        data[key] = [a.tolist() for a in summaries.get(key, [])]
    return pa.table(data, schema=GENERATIONS).replace_schema_metadata(metadata)


def load_backend(name: str, model_path: str, options: LoadOptions | None = None) -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    module = importlib.import_module(BACKENDS[name])
    return module.load(model_path, options or LoadOptions())
