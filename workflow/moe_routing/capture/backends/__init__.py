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
from dataclasses import dataclass, field, replace
from typing import Protocol

import polars as pl
import pyarrow as pa

from moe_routing.core.errors import ConfigError, ModelError

BACKENDS = {"hf": "moe_routing.capture.backends.hf", "vllm": "moe_routing.capture.backends.vllm"}


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
    # the chat template's generation prompt (assistant header; Qwen3 thinking off: an empty think
    # block): None = only when tokens are generated, so prefill-only capture routes the conversation
    # alone, as the routing paper's public code does
    generation_prompt: bool | None = None
    # which routed tokens count: "all" (every token fed to the model) or "content" (the item's own
    # text: prompt and assistant turn, not template or special tokens; generated tokens all count)
    token_scope: str = "all"

    def adds_generation_prompt(self) -> bool:
        return self.max_new_tokens > 0 if self.generation_prompt is None else bool(self.generation_prompt)


DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class LoadOptions:
    dtype: str = "auto"  # "auto" (see resolve_dtype) or one of DTYPES
    device: str = "auto"  # "auto", "cpu", "cuda"
    trust_remote_code: bool = False
    adapter: str | None = None  # force a router kind (adapters.KINDS) instead of the family table's; the probe checks it
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

    def score_choices(
        self,
        items: pl.DataFrame,
        interventions: pl.DataFrame | None = None,
        options: GenerationOptions | None = None,
    ) -> pa.Table:
        """Multiple choice by log-likelihood (``choice_requests``); the generations contract with
        ``output`` = the chosen letter, routing captured on the prompt alone. Optional per backend."""
        ...


ITEM_COLUMNS = ("item_id", "lang", "prompt", "system")
TOKEN_SCOPES = ("all", "content")
# what a backend declares it handles beyond plain generation (check_request's ``features``)
CONTENT_SCOPE, ASSISTANT_TURN = "content_scope", "assistant_turn"


def item_rows(items: pl.DataFrame) -> list[dict]:
    """The item columns a backend reads, as dicts; ``assistant`` is None where the column is absent."""
    rows = items.select(ITEM_COLUMNS).to_dicts()
    assistant = items["assistant"].to_list() if "assistant" in items.columns else [None] * len(rows)
    for r, a in zip(rows, assistant):
        r["assistant"] = a or None
    return rows


def check_request(
    items: pl.DataFrame,
    interventions: pl.DataFrame | None,
    options: GenerationOptions | None,
    moe_layers: list[int],
    num_experts: int,
    features: frozenset[str] = frozenset(),
) -> tuple[GenerationOptions, pl.DataFrame | None]:
    """The checks every backend makes before generating; returns the options and the interventions
    (None when there are none). ``features``: CONTENT_SCOPE, ASSISTANT_TURN if the backend handles them."""
    from moe_routing.capture import interventions as iv
    from moe_routing.core.errors import ContractError

    opts = options or GenerationOptions()
    missing = [c for c in ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise ContractError(f"items: missing column(s) {missing}; has {items.columns}")
    if opts.batch_size < 1 or opts.max_new_tokens < 0:
        raise ConfigError("batch_size must be >= 1 and max_new_tokens >= 0")
    if opts.token_scope not in TOKEN_SCOPES:
        raise ConfigError(f"token_scope must be one of {TOKEN_SCOPES}, got {opts.token_scope!r}")
    if opts.token_scope == "content" and CONTENT_SCOPE not in features:
        raise ConfigError("this backend does not implement token_scope 'content' (per-token content masks); use 'all'")
    if "assistant" in items.columns:
        text = pl.col("assistant").cast(pl.String)
        answered = items.filter(text.is_not_null() & (text != ""))
        if answered.height and ASSISTANT_TURN not in features:
            raise ConfigError(
                f"items carry an assistant turn (e.g. item {answered['item_id'][0]!r}) that this backend does not render"
            )
        if answered.height and opts.max_new_tokens > 0:
            raise ConfigError(
                f"item {answered['item_id'][0]!r} has a teacher-forced assistant turn: that is prefill only, set max_new_tokens 0"
            )
    if interventions is not None:
        interventions = iv.check_interventions(interventions)
        iv.validate(interventions, moe_layers, num_experts)
        if interventions.height == 0:
            interventions = None
    return opts, interventions


@dataclass
class Rendered:
    """One item through the template: token ids, the text they encode, and which of them are the
    item's own text (``content``; None when every token counts)."""

    ids: list[int]
    text: str
    content: list[bool] | None = None


def _messages(prompt: str, system: str | None, assistant: str | None, fold_system: bool) -> list[dict]:
    if fold_system and system:
        msgs = [{"role": "user", "content": f"{system}\n\n{prompt}"}]
    else:
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return msgs + ([{"role": "assistant", "content": assistant}] if assistant else [])


def render_text(
    tokenizer, prompt: str, system: str | None, options: GenerationOptions, assistant: str | None = None, adapter=None
) -> tuple[str, bool]:
    """(text, special): the rendered conversation, and whether its ids need the tokenizer's special
    tokens (plain text without a chat template gets them, e.g. BOS; a rendered template has its own).
    The family's own template variables come from ``adapter.chat_template_kwargs()`` (GPT-OSS: low reasoning)."""
    from jinja2 import TemplateError

    if options.use_chat_template and not getattr(tokenizer, "chat_template", None):
        # plain text instead would change the prompt and the answers without a word
        raise ModelError(
            "the tokenizer has no chat template; give the model one, or set the dataset's chat_template: false "
            "(generate --no-chat-template) to feed the plain prompt text"
        )
    if options.use_chat_template:
        # a teacher-forced assistant turn ends the conversation: no generation prompt after it
        kwargs = {
            "tokenize": False,
            "add_generation_prompt": options.adds_generation_prompt() and not assistant,
            "enable_thinking": options.enable_thinking,
            **(adapter.chat_template_kwargs() if adapter else {}),
        }
        try:
            return tokenizer.apply_chat_template(_messages(prompt, system, assistant, False), **kwargs), False
        except TemplateError:
            if not system:
                raise
            # some templates reject a system role: fold it into the user turn
            return tokenizer.apply_chat_template(_messages(prompt, system, assistant, True), **kwargs), False
    text = f"{system}\n\n{prompt}" if system else prompt
    return (f"{text}\n\n{assistant}" if assistant else text), True


def check_prompt_lengths(rows: list[dict], lengths: list[int], new_tokens: int, limit: int | None) -> None:
    """Each prompt and its new tokens fit the model's positions (``max_position_embeddings``): a longer one would
    fail deep in the model, or be cut, so the first too long is named before any batch runs."""
    if not limit:
        return
    for row, n in zip(rows, lengths):
        if n + new_tokens > limit:
            raise ModelError(
                f"item {row['item_id']!r} ({row['lang']}): its prompt is {n} tokens, and with {new_tokens} new tokens "
                f"it exceeds the model's {limit} positions; shorten it or leave it out"
            )


def _find(text: str, part: str, start: int) -> tuple[int, int]:
    # templates may trim what they insert (the demo's `| trim`, Qwen3's lstrip of the answer)
    for cand in (part, part.strip(), part.strip("\n"), part.lstrip("\n")):
        at = text.find(cand, start) if cand else -1
        if at >= 0:
            return at, at + len(cand)
    raise ConfigError(
        f"token_scope content: the chat template changes the item text, which cannot be found in "
        f"the rendered prompt (looked for {part[:40]!r}); use token_scope all"
    )


def content_spans(text: str, prompt: str, system: str | None, assistant: str | None) -> list[tuple[int, int]]:
    """Character spans of the item's own text (prompt, then the assistant turn) in the rendered text;
    the system prompt is searched first so that text repeated from it is not taken for the prompt."""
    start = _find(text, system, 0)[1] if system and system in text else 0
    spans = [_find(text, prompt, start)]
    if assistant:
        spans.append(_find(text, assistant, spans[0][1]))
    return spans


def _encode(tokenizer, text: str, special: bool, spans: list[tuple[int, int]] | None) -> Rendered:
    if spans is None:
        return Rendered(tokenizer(text, add_special_tokens=special)["input_ids"], text)
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("token_scope content needs a fast tokenizer (offset mapping)")
    enc = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
    content = [e > s and any(s < b and e > a for a, b in spans) for s, e in enc["offset_mapping"]]
    return Rendered(enc["input_ids"], text, content)


def render(
    tokenizer, prompt: str, system: str | None, options: GenerationOptions, assistant: str | None = None, adapter=None
) -> Rendered:
    """One item through the model's chat template (thinking off where supported): system, user turn,
    the assistant turn when given (teacher forcing), the generation prompt when
    ``options.adds_generation_prompt()``. Every backend renders with this, so they feed identical
    tokens. With ``token_scope`` "content" a token is content when its characters overlap the
    prompt or the assistant text (tokenizer offset mapping: special tokens cover no characters)."""
    text, special = render_text(tokenizer, prompt, system, options, assistant, adapter)
    spans = content_spans(text, prompt, system, assistant) if options.token_scope == "content" else None
    return _encode(tokenizer, text, special, spans)


def render_prompt(
    tokenizer, prompt: str, system: str | None, options: GenerationOptions, assistant: str | None = None, adapter=None
) -> list[int]:
    """Token ids of one item (``render``)."""
    return render(tokenizer, prompt, system, options, assistant, adapter).ids


def choice_requests(
    tokenizer, prompt: str, system: str | None, n_choices: int, options: GenerationOptions, adapter=None
) -> tuple[Rendered, list[list[int]]]:
    """(context, continuation ids per choice) for multiple choice the LM Evaluation Harness way: the
    continuation is the target delimiter + the letter (" A" on plain text, "A" after a chat
    template's generation prompt); trailing whitespace of the context moves to the continuations;
    a continuation's ids are the whole text's ids after the context's own ids. The answer takes the
    place of a generated one: the generation prompt is there unless ``generation_prompt`` is False."""
    from moe_routing.data.items import MC_LETTERS

    opts = replace(options, generation_prompt=options.generation_prompt is not False)
    text, special = render_text(tokenizer, prompt, system, opts, adapter=adapter)
    context = text.rstrip()
    tail = text[len(context) :] + ("" if not special else " ")
    spans = content_spans(context, prompt, system, None) if options.token_scope == "content" else None
    ctx = _encode(tokenizer, context, special, spans)
    conts = [
        tokenizer(context + tail + letter, add_special_tokens=special)["input_ids"][len(ctx.ids) :]
        for letter in MC_LETTERS[:n_choices]
    ]
    return ctx, conts


def scoring_requests(
    tokenizer, items: pl.DataFrame, rows: list[dict], options: GenerationOptions, adapter=None
) -> tuple[list[Rendered], list[list[list[int]]]]:
    """``choice_requests`` of every item (``item_rows(items)``): the contexts, and per item the
    continuation ids of each choice. Every backend's ``score_choices`` scores these."""
    choices = items["choices"].to_list() if "choices" in items.columns else [None] * len(rows)
    contexts, conts = [], []
    for r, ch in zip(rows, choices):
        if not ch:
            raise ConfigError(f"item {r['item_id']!r} ({r['lang']}) has no choices to score")
        if r["assistant"]:
            raise ConfigError(f"item {r['item_id']!r} has an assistant turn; choices are scored after the user turn")
        ctx, cont = choice_requests(tokenizer, r["prompt"], r["system"], len(ch), options, adapter)
        contexts.append(ctx)
        conts.append(cont)
    return contexts, conts


class RoutingBackend:
    """What both backends share: the request checks (both handle token scope "content" and assistant
    turns), the schema metadata, and multiple choice by log-likelihood built on the backend's own
    ``_score(items, interventions, options) -> (rows, contexts, scores, summaries)``."""

    FEATURES = frozenset({CONTENT_SCOPE, ASSISTANT_TURN})

    def render(self, prompt: str, system: str | None, options: GenerationOptions, assistant: str | None = None) -> list[int]:
        """Token ids of one item (``render``, with the family's template variables): what both backends feed."""
        return render(self.tokenizer, prompt, system, options, assistant, self.adapter).ids

    def routing_metadata(self) -> dict[bytes, bytes]:
        return backend_metadata(self)

    def _check(self, items, interventions, options):
        return check_request(items, interventions, options, self.moe_layers, self.num_experts, features=self.FEATURES)

    def _rendered_items(self, items, interventions, options):
        """The first step of both backends' ``generate``: checked options and interventions, the item rows, their prompts."""
        opts, interventions = self._check(items, interventions, options)
        rows = item_rows(items)
        rendered = [render(self.tokenizer, r["prompt"], r["system"], opts, r["assistant"], self.adapter) for r in rows]
        return opts, interventions, rows, rendered

    def score_choices(
        self,
        items: pl.DataFrame,
        interventions: pl.DataFrame | None = None,
        options: GenerationOptions | None = None,
    ) -> pa.Table:
        """Multiple choice by log-likelihood (``choice_requests``); ``output`` is the letter of the most
        likely choice (the first on ties), routing is captured on the context alone."""
        rows, contexts, scores, summaries = self._score(items, interventions, options)
        return choices_table(self.tokenizer, rows, contexts, scores, summaries, self.routing_metadata())

    def choice_logprobs(
        self,
        items: pl.DataFrame,
        interventions: pl.DataFrame | None = None,
        options: GenerationOptions | None = None,
    ) -> list[list[float]]:
        """Per item, the summed log-probability of each choice's continuation (``score_choices``)."""
        return self._score(items, interventions, options)[2]


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
    from moe_routing.core.contracts import routing_metadata, run_metadata

    return routing_metadata(
        backend.model_path, backend.moe_layers, backend.num_experts, backend.top_k, backend.dtype
    ) | run_metadata(backend.name, str(backend.device), backend.load_seconds, backend.generate_seconds)


def generations_table(tokenizer, rows, prompts, outputs, summaries, metadata: dict[bytes, bytes], adapter=None) -> pa.Table:
    """The generations contract from per-row token ids and (when captured) routing summaries; ``metadata``
    (contracts.routing_metadata | run_metadata) goes into the schema, without the routing keys when there
    is no capture. ``output`` is the answer the judges read (``adapter.answer_text``: GPT-OSS's final
    channel); ``output_token_ids`` are all generated tokens, the ones the routing summaries cover."""
    from moe_routing.core.contracts import GENERATIONS, GENERATIONS_BASE, ROUTING_COLUMNS, ROUTING_KEYS

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
        kept = {k: v for k, v in metadata.items() if k not in ROUTING_KEYS}
        return pa.table(data, schema=GENERATIONS_BASE).replace_schema_metadata(kept)
    for key in ROUTING_COLUMNS.names:
        # no rows (an ablation plan that re-asks nothing in this language) -> an empty file, same schema
        data[key] = [a.tolist() for a in summaries.get(key, [])]
    return pa.table(data, schema=GENERATIONS).replace_schema_metadata(metadata)


def choices_table(
    tokenizer, rows, contexts: list[Rendered], scores: list[list[float]], summaries, metadata: dict[bytes, bytes]
) -> pa.Table:
    """The generations contract of scored multiple choice: ``output`` = the letter of the highest
    summed log-probability (the first on ties), no output tokens, routing of the contexts."""
    from moe_routing.data.items import MC_LETTERS

    picks = [MC_LETTERS[max(range(len(sc)), key=lambda c: (sc[c], -c))] for sc in scores]
    table = generations_table(tokenizer, rows, [c.ids for c in contexts], [[] for _ in rows], summaries, metadata)
    return table.set_column(table.schema.get_field_index("output"), "output", pa.array(picks, pa.string()))


def load_backend(name: str, model_path: str, options: LoadOptions | None = None) -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    module = importlib.import_module(BACKENDS[name])
    return module.load(model_path, options or LoadOptions())
