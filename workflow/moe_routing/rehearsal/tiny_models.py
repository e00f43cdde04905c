"""Tiny random checkpoints of every supported MoE family, saved like hub checkpoints.

``build_tiny_checkpoint(family, out_dir)`` writes ``config.json``, ``model.safetensors``,
``generation_config.json`` and a fast tokenizer with a chat template, so the backends load
it exactly as they load a real model. Used by tests, benchmarks and the demo.

The tokenizer is byte-level (every string encodes, no unknown tokens); pass ``train_texts``
to learn BPE merges on them instead (shorter sequences for a demo model). The chat
template is Qwen-style and honours ``enable_thinking=False`` like Qwen3's.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Iterable, Sequence

from moe_routing.capture.adapters.families import FAMILIES as FAMILY_TABLE
from moe_routing.capture.adapters.families import Family
from moe_routing.core.errors import ConfigError

# config keys of an expert count, in the order a family's config class is searched for one
_EXPERT_KEYS = ("num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts")

# families with a tiny checkpoint: every row of the family table (adapters/families.py)
FAMILIES: dict[str, Family] = FAMILY_TABLE
ALIASES = {
    "qwen3moe": "qwen3_moe",
    "qwen2moe": "qwen2_moe",
    "gptoss": "gpt_oss",
    "glm4moe": "glm4_moe",
    "deepseekv3": "deepseek_v3",
    "deepseekv2": "deepseek_v2",
}

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif -%}"
    "{%- endif -%}"
)


def canonical_family(family: str) -> str:
    key = family.lower().replace("-", "_")
    key = ALIASES.get(key.replace("_", ""), key)
    if key not in FAMILIES:
        raise ConfigError(f"unknown tiny model family {family!r}; choose one of {sorted(FAMILIES)}")
    return key


def build_tokenizer(
    train_texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    *,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    added_tokens: Sequence[str] = (),
    bos: str | None = BOS,
    eos: str = EOS,
    pad: str = PAD,
    chat_template: str = CHAT_TEMPLATE,
):
    """A PreTrainedTokenizerFast: byte-level, optionally with BPE merges learned on ``train_texts``.

    ``special_tokens`` are dropped by ``decode(..., skip_special_tokens=True)``; ``added_tokens``
    are single tokens that stay in decoded text (as Qwen3 keeps ``<think>``).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if train_texts is None:
        vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    else:
        tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if train_texts is not None:
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, special_tokens=[], show_progress=False)
        tok.train_from_iterator(train_texts, trainer=trainer)
    tok.add_special_tokens(list(special_tokens))
    if added_tokens:
        tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in added_tokens])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, padding_side="left")
    fast.chat_template = chat_template
    return fast


def _config_kwargs(
    family: str,
    *,
    vocab: int,
    hidden: int,
    layers: int,
    experts: int,
    top_k: int,
    ids: dict,
    head_dim: int = 32,
    heads: int | None = None,
    kv_heads: int = 1,
    moe_intermediate: int | None = None,
) -> dict:
    import transformers

    row = FAMILIES[family]
    if row.kind == "sparsemixer" and top_k != 2:
        raise ConfigError(f"{family} (sparsemixer) only routes top-2; pass top_k=2")
    heads = heads or max(1, hidden // head_dim)
    moe_intermediate = moe_intermediate or hidden // 2
    cls = getattr(transformers, row.config_class)
    kwargs = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        num_experts_per_tok=top_k,
        tie_word_embeddings=False,
        **ids,
    )
    # every family reads head_dim where its config has one (vLLM's CPU attention takes 32)
    kwargs["head_dim"] = head_dim
    declared = set().union(*(getattr(k, "__annotations__", {}) for k in cls.__mro__))
    kwargs[next((k for k in _EXPERT_KEYS if k in declared), "num_experts")] = experts
    if "moe_intermediate_size" in declared:
        kwargs["moe_intermediate_size"] = moe_intermediate
    extra = row.tiny(layers, experts, top_k, hidden) if callable(row.tiny) else dict(row.tiny)
    return kwargs | extra


def _router_params(model, row: Family):
    """(name, parameter) of the router weights and biases of ``model``, found through the family table."""
    from moe_routing.capture.adapters import get_adapter

    routers = [site.router for site in get_adapter(model).locate_hf(model)]
    for router in routers:
        yield from router.named_parameters()


def _spread_routers(model, seed: int) -> None:
    """Make random routing peaky: the default init (std 0.02) gives near-uniform, tie-prone logits.

    Every router weight (``gate``, ``router``, ``wg``, ``layer``, ...) is found through the family
    table; its biases get small random values, and so do selection biases (``e_score_correction_bias``).
    """
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    row = FAMILIES[model.config.model_type]
    with torch.no_grad():
        for name, param in _router_params(model, row):
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "weight" and param.dim() == 2:
                fan_in = param.shape[-1]
                param.copy_(torch.randn(param.shape, generator=gen) * (2.0 / fan_in**0.5))
            elif leaf == "bias":
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
            elif leaf == "e_score_correction_bias":
                # nonzero so tests exercise the bias-before-selection path
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05)
        for name, buf in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.05)


def build_tiny_model(
    family: str,
    tokenizer,
    *,
    hidden: int = 64,
    layers: int = 2,
    experts: int = 8,
    top_k: int = 2,
    seed: int = 0,
    config_overrides: dict | None = None,
    head_dim: int = 32,
    heads: int | None = None,
    kv_heads: int = 1,
    moe_intermediate: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
):
    """A random ``family`` model sized for ``tokenizer``, routers spread (see ``build_tiny_checkpoint``
    for the sizes, ``dtype`` and ``device``). ``config_overrides`` replace keys of the family's tiny
    config (e.g. a real layer layout)."""
    import torch
    import transformers

    family = canonical_family(family)
    if hidden % 32 or hidden <= 0:
        raise ConfigError(f"hidden must be a positive multiple of 32, got {hidden}")
    if not 1 <= top_k <= experts:
        raise ConfigError(f"need 1 <= top_k <= experts, got top_k={top_k}, experts={experts}")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config_cls_name, model_cls_name = FAMILIES[family].config_class, FAMILIES[family].model_class
    kwargs = _config_kwargs(
        family,
        vocab=len(tokenizer),
        hidden=hidden,
        layers=layers,
        experts=experts,
        top_k=top_k,
        ids=ids,
        head_dim=head_dim,
        heads=heads,
        kv_heads=kv_heads,
        moe_intermediate=moe_intermediate,
    )
    config = getattr(transformers, config_cls_name)(**(kwargs | (config_overrides or {})))
    torch.manual_seed(seed)
    with torch.device(device):
        model = getattr(transformers, model_cls_name)(config).to(torch.float32).eval()
    _spread_routers(model, seed)
    return model.to(getattr(torch, dtype))


def save_checkpoint(model, tokenizer, out_dir: str | Path, *, info: dict, generation: dict | None = None) -> Path:
    """Save like a hub checkpoint (safetensors, tokenizer, generation config) plus ``tiny_model.json`` = ``info``.

    ``generation`` overrides the generation config (default: greedy, stop at the tokenizer's eos).
    """
    from transformers import GenerationConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = dict(
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model.generation_config = GenerationConfig(**(gen | (generation or {})))
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "tiny_model.json").write_text(json.dumps(info) + "\n")
    return out


# recorded in tiny_model.json always / only where not the default (so default-sized files stay as they were)
_SHAPE = ("hidden", "layers", "experts", "top_k", "seed")
_SIZES = ("head_dim", "heads", "kv_heads", "moe_intermediate", "dtype")


def build_tiny_checkpoint(
    family: str, out_dir: str | Path, *, train_texts: Iterable[str] | None = None, vocab_size: int = 512, **shape
) -> Path:
    """Write a random tiny checkpoint of ``family`` (a model_type, e.g. ``qwen3_moe``) to ``out_dir``.

    ``shape`` are ``build_tiny_model``'s keyword options: hidden (a multiple of 32: head_dim is 32
    where the config has one, for vLLM's CPU attention), layers, experts, top_k, seed; for real layer
    shapes (benchmarks/gpu_check.sh) ``heads`` (default hidden // head_dim), ``kv_heads``, ``head_dim``
    and ``moe_intermediate`` (default hidden // 2), e.g. Qwen3-30B-A3B: hidden 2048, 128 experts, top-8,
    heads 32, kv_heads 4, head_dim 128, moe_intermediate 768; ``dtype`` of the saved weights and the
    ``device`` that builds them (``cuda`` is much faster at that size). Identical arguments give
    identical weights. Returns ``out_dir``.
    """
    family = canonical_family(family)
    tokenizer = build_tokenizer(train_texts, vocab_size)
    model = build_tiny_model(family, tokenizer, **shape)
    defaults = {k: p.default for k, p in inspect.signature(build_tiny_model).parameters.items()}
    values = {k: shape.get(k, defaults[k]) for k in (*_SHAPE, *_SIZES)}
    info = {"family": family, **{k: values[k] for k in _SHAPE}}
    info |= {k: values[k] for k in _SIZES if values[k] != defaults[k]}
    return save_checkpoint(model, tokenizer, out_dir, info=info)
