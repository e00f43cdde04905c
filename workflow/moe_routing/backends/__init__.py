"""Generation backends: batched generation with router capture and per-sequence interventions.

Every backend implements ``Backend`` below; ``load_backend`` picks one by name.
The returned table follows the generations contract (contracts.GENERATIONS_BASE,
plus contracts.ROUTING_COLUMNS when ``capture`` is on) and carries the routing
metadata (contracts.routing_metadata) in its schema.
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


@dataclass
class LoadOptions:
    dtype: str = "auto"  # "auto", "float32", "bfloat16", "float16"
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


def render_prompt(tokenizer, prompt: str, system: str | None, options: GenerationOptions, adapter=None) -> list[int]:
    """Token ids of one item through the model's chat template (thinking off where supported; the
    family's own template variables from ``adapter.chat_template_kwargs()``); every backend renders
    with this, so they feed identical tokens."""
    from jinja2 import TemplateError

    if options.use_chat_template and getattr(tokenizer, "chat_template", None):
        extra = adapter.chat_template_kwargs() if adapter is not None else {}
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                 enable_thinking=options.enable_thinking, **extra)
        except TemplateError:
            if not system:
                raise
            # some templates reject a system role: fold it into the user turn
            merged = [{"role": "user", "content": f"{system}\n\n{prompt}"}]
            text = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True,
                                                 enable_thinking=options.enable_thinking, **extra)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    text = f"{system}\n\n{prompt}" if system else prompt
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def generations_table(tokenizer, rows, prompts, outputs, summaries, metadata: dict[bytes, bytes], adapter=None) -> pa.Table:
    """The generations contract from per-row token ids and (when captured) routing summaries.

    ``output`` is the answer the judges read (``adapter.answer_text``: e.g. GPT-OSS's final channel);
    ``output_token_ids`` are all generated tokens, the ones the routing summaries cover."""
    from moe_routing.contracts import GENERATIONS, GENERATIONS_BASE

    def answer(ids) -> str:
        return adapter.answer_text(tokenizer, ids) if adapter is not None else tokenizer.decode(ids, skip_special_tokens=True)

    data = {
        "item_id": [r["item_id"] for r in rows],
        "lang": [r["lang"] for r in rows],
        "output": [answer(o) for o in outputs],
        "prompt_token_ids": prompts,
        "output_token_ids": outputs,
    }
    if summaries is None:
        return pa.table(data, schema=GENERATIONS_BASE)
    for key in ("weights", "softmax_mean", "freq", "entropy", "consistency"):
        # no rows (an ablation plan that re-asks nothing in this language) -> an empty file, same schema
        data[key] = [a.tolist() for a in summaries.get(key, [])]
    return pa.table(data, schema=GENERATIONS).replace_schema_metadata(metadata)


def load_backend(name: str, model_path: str, options: LoadOptions | None = None) -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    module = importlib.import_module(BACKENDS[name])
    return module.load(model_path, options or LoadOptions())
