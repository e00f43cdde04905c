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

from moe_routing.core.errors import ConfigError

# family name (the checkpoint's model_type) -> transformers config / model class names
FAMILIES: dict[str, tuple[str, str]] = {
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM"),
    "olmoe": ("OlmoeConfig", "OlmoeForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
    "gpt_oss": ("GptOssConfig", "GptOssForCausalLM"),
    "glm4_moe": ("Glm4MoeConfig", "Glm4MoeForCausalLM"),
    "deepseek_v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM"),
    "phimoe": ("PhimoeConfig", "PhimoeForCausalLM"),
}
ALIASES = {
    "qwen3moe": "qwen3_moe",
    "gptoss": "gpt_oss",
    "glm4moe": "glm4_moe",
    "deepseekv3": "deepseek_v3",
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
    heads = heads or max(1, hidden // head_dim)
    moe_intermediate = moe_intermediate or hidden // 2
    common = dict(
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
    if family == "qwen3_moe":
        return common | dict(
            head_dim=head_dim,
            num_experts=experts,
            moe_intermediate_size=moe_intermediate,
            norm_topk_prob=True,
            decoder_sparse_step=1,
            mlp_only_layers=[],
        )
    if family == "olmoe":
        # OLMoE-1B-7B keeps norm_topk_prob off: the adapter must not renormalise
        return common | dict(num_experts=experts, norm_topk_prob=False)
    if family == "mixtral":
        return common | dict(head_dim=head_dim, num_local_experts=experts)
    if family == "phimoe":
        if top_k != 2:
            raise ConfigError("phimoe (sparsemixer) only routes top-2; pass top_k=2")
        return common | dict(num_local_experts=experts, router_jitter_noise=0.01, input_jitter_noise=0.0)
    if family == "gpt_oss":
        return common | dict(
            head_dim=head_dim,
            num_local_experts=experts,
            sliding_window=64,
            layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
        )
    groups = 2 if experts % 2 == 0 and experts // 2 >= max(2, top_k) else 1
    sigmoid_common = dict(
        n_routed_experts=experts,
        moe_intermediate_size=moe_intermediate,
        n_shared_experts=1,
        n_group=groups,
        topk_group=1,
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
        first_k_dense_replace=1 if layers > 1 else 0,
    )
    if family == "glm4_moe":
        return common | sigmoid_common | dict(head_dim=head_dim, partial_rotary_factor=0.5, num_nextn_predict_layers=0)
    if family == "deepseek_v3":
        return (
            common
            | sigmoid_common
            | dict(
                num_key_value_heads=heads,
                kv_lora_rank=16,
                q_lora_rank=None,
                qk_rope_head_dim=16,
                qk_nope_head_dim=16,
                v_head_dim=head_dim,
                head_dim=16,
                rope_interleave=True,
                num_nextn_predict_layers=0,
            )
        )
    raise AssertionError(family)


def _spread_routers(model, seed: int) -> None:
    """Make random routing peaky: the default init (std 0.02) gives near-uniform, tie-prone logits."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            leaf = name.rsplit(".", 2)
            if len(leaf) >= 2 and leaf[-2] in ("gate", "router") and leaf[-1] == "weight":
                fan_in = param.shape[-1]
                param.copy_(torch.randn(param.shape, generator=gen) * (2.0 / fan_in**0.5))
            if len(leaf) >= 2 and leaf[-2] == "router" and leaf[-1] == "bias":
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
        for name, buf in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                # nonzero so tests exercise the bias-before-selection path
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
    config_cls_name, model_cls_name = FAMILIES[family]
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
