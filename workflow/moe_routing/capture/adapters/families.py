"""The family table: one row per supported ``model_type``, and everything that reads it.

A row says which router kind replays the family's gating (``kind``: an adapter class in
adapters/__init__.py ``KINDS``), where its routers and experts are in the transformers model
(the MoE block class, the router and experts attributes, the order of the router's outputs), which
decoder layers are MoE (``layers``: a rule of ``LAYER_RULES``), the config keys of its gating
(``spec``) and the extra config keys of its tiny checkpoint (``tiny``). ADAPTERS, model_layout,
tiny_models, the stand-ins, the config schema's ``adapter`` enum and the tests all read it: adding
a family whose router fits a kind is one row here plus its test (docs/adding-a-family.md).

Config values missing from a config.json take transformers' default: the config class's own
class attribute (``Family.default``). A family whose router fits no row can still be tried with a
model's ``adapter:`` key (``adapters.forced_adapter``); the load-time probe (backends/probe.py) checks
every model, table rows included, against what its experts receive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from moe_routing.core.errors import ModelError

ROUTER_OUTPUTS = ("logits", "weights", "indices")


@dataclass(frozen=True)
class Family:
    model_type: str
    kind: str  # router kind: key of adapters.KINDS
    example: str  # a hub checkpoint of the family (README support table)
    config_class: str  # transformers config / causal-LM classes (tiny checkpoints)
    model_class: str
    block: str  # class name of the MoE block (holds the router and the experts)
    router: str = "gate"  # attribute of the block: the router module
    experts: str = "experts"  # attribute of the block: the module called with (hidden, top_k_index, top_k_weights)
    # the router module's return, in order: names of ROUTER_OUTPUTS; ("logits",) for a bare linear whose
    # gating the block does itself; Llama-4 returns ("scores", "logits") with dense [T, E] scores
    outputs: tuple[str, ...] = ROUTER_OUTPUTS
    bias: str | None = None  # selection bias: attribute path on the router module, else on the MoE block
    layers: str = "all"  # MoE-layer rule: key of LAYER_RULES
    # RouterSpec field -> config attribute path (dotted) or a constant, where the defaults of ``spec_values`` differ
    spec: dict = field(default_factory=dict)
    # tiny checkpoints: extra config kwargs, or fn(layers, experts, top_k, hidden) -> kwargs
    tiny: dict | Callable[..., dict] = field(default_factory=dict)
    decoder: str = "model.layers"  # the decoder layers of the causal-LM model
    vllm_gate: str | None = None  # leaf name of the router linear in vLLM's model code; None: not served by vLLM
    vllm_verified: bool = False  # vLLM tokens and summaries checked against transformers (tests/test_vllm_parity.py)
    harmony: bool = False  # speaks the harmony format (adapters/topk_softmax.py)
    weights_float: bool = False  # the router keeps its combine weights in float32 (no cast back to the logits dtype)
    # summaries of a left-padded sequence equal those of the sequence alone within this (MiniMax's lightning
    # attention sums keys over fixed blocks of positions, so padding changes the rounding: ~1e-4)
    padding_atol: float = 1e-5

    def default(self, key: str, fallback: Any = None) -> Any:
        """transformers' default of a config key (the config class attribute), else ``fallback``."""
        import transformers

        cls = getattr(transformers, self.config_class, None) if self.config_class else None
        if cls is None:
            return fallback
        value = getattr(cls, key, fallback)
        return fallback if isinstance(value, property) or callable(value) else value

    def get(self, config, path: str, fallback: Any = None) -> Any:
        """A (dotted) config value; a key missing from a config.json takes transformers' default."""
        obj: Any = config
        parts = path.split(".")
        for n, part in enumerate(parts):
            value = obj.get(part, None) if isinstance(obj, dict) else getattr(obj, part, None)
            if value is None:
                if n == 0:
                    return self.default(part, fallback)
                sub = self.default(parts[0], None)
                if sub is not None and hasattr(sub, part):
                    return getattr(sub, part)
                return fallback
            obj = value
        return obj

    def spec_values(self, config) -> dict:
        """Keyword arguments of RouterSpec for this family's config."""
        values: dict[str, Any] = {
            "num_experts": self._first(config, ("num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts")),
            "top_k": self.get(config, "num_experts_per_tok"),
            "norm_topk_prob": self.get(config, "norm_topk_prob", True),
            "n_group": self.get(config, "n_group", 1) or 1,
            "topk_group": self.get(config, "topk_group", 1) or 1,
            "routed_scaling_factor": self.get(config, "routed_scaling_factor", 1.0) or 1.0,
        }
        for key, source in self.spec.items():
            values[key] = self.get(config, source) if isinstance(source, str) else source
        for key in ("num_experts", "top_k"):
            if not isinstance(values[key], int) or isinstance(values[key], bool):
                raise ModelError(f"{self.model_type}: config gives {key}={values[key]!r}, need one integer for every layer")
        return values

    def _first(self, config, keys):
        for key in keys:
            value = getattr(config, key, None)
            if value is not None:
                return value
        for key in keys:
            value = self.default(key)
            if value is not None:
                return value
        return None

    def num_layers(self, config) -> int:
        """Decoder layers of a config (DBRX names them n_layers)."""
        layers = getattr(config, "num_hidden_layers", None)
        if layers is None:
            layers = getattr(config, "n_layers", None)
        if layers is None:
            raise ModelError(f"model_type {self.model_type!r}: config has no num_hidden_layers")
        return int(layers)

    def moe_layers(self, config) -> list[int]:
        """Decoder layers (0-based) with an MoE block, from the config alone (the family's own rule)."""
        return LAYER_RULES[self.layers](self, config, self.num_layers(config))


# --- MoE-layer rules: (family, config, num_layers) -> MoE layers ---------------------------------
def _all(f: Family, config, n: int) -> list[int]:
    return list(range(n))


def _sparse_step(f: Family, config, n: int) -> list[int]:
    # Qwen2/3-MoE, Qwen3-Next: dense in mlp_only_layers, where (i + 1) % decoder_sparse_step != 0, everywhere without experts
    experts = f._first(config, ("num_experts", "num_local_experts"))
    step = int(f.get(config, "decoder_sparse_step", 1))
    if step < 1:
        raise ModelError(f"{f.model_type}: decoder_sparse_step={step}, must be >= 1")
    dense = set(f.get(config, "mlp_only_layers", None) or [])
    return [i for i in range(n) if int(experts or 0) > 0 and i not in dense and (i + 1) % step == 0]


def _first_k_dense(f: Family, config, n: int) -> list[int]:
    # DeepSeek-V2/V3, GLM-4.5, dots1: the first first_k_dense_replace layers are dense
    first_dense = int(f.get(config, "first_k_dense_replace", 0) or 0)
    # DeepSeek's own code and vLLM also require layer % moe_layer_freq == 0, transformers does not:
    # the two backends would route different layers, so only the released value 1 is supported
    freq = getattr(config, "moe_layer_freq", None)
    if freq not in (None, 1):
        raise ModelError(
            f"{f.model_type}: moe_layer_freq={freq} is not supported (transformers and vLLM place its MoE layers differently)"
        )
    return [i for i in range(n) if i >= first_dense]


def _start_interval(f: Family, config, n: int) -> list[int]:
    # ERNIE-4.5-MoE: (i + 1) % moe_layer_interval == 0 and moe_layer_start_index <= i <= moe_layer_end_index (-1: last)
    start = int(f.get(config, "moe_layer_start_index", 1))
    end = int(f.get(config, "moe_layer_end_index", -1))
    end = n - 1 if end == -1 else end
    interval = int(f.get(config, "moe_layer_interval", 1))
    if interval < 1:
        raise ModelError(f"{f.model_type}: moe_layer_interval={interval}, must be >= 1")
    return [i for i in range(n) if (i + 1) % interval == 0 and start <= i <= end]


def _period_offset(f: Family, config, n: int) -> list[int]:
    # Jamba: i % expert_layer_period == expert_layer_offset, when num_experts > 1
    period = int(f.get(config, "expert_layer_period", 2))
    offset = int(f.get(config, "expert_layer_offset", 1))
    if period < 1:
        raise ModelError(f"{f.model_type}: expert_layer_period={period}, must be >= 1")
    experts = int(f.get(config, "num_experts", 1))
    return [i for i in range(n) if experts > 1 and i % period == offset]


def _interleave(f: Family, config, n: int) -> list[int]:
    # Llama-4: config.moe_layers, else every interleave_moe_layer_step-th layer from step - 1
    listed = getattr(config, "moe_layers", None)
    if listed is not None:
        return sorted(int(i) for i in listed if 0 <= int(i) < n)
    step = int(f.get(config, "interleave_moe_layer_step", 1))
    if step < 1:
        raise ModelError(f"{f.model_type}: interleave_moe_layer_step={step}, must be >= 1")
    return list(range(step - 1, n, step))


def _mlp_layer_types(f: Family, config, n: int) -> list[int]:
    # GLM-4.7-Flash, EXAONE-MoE, MiMo-V2, Kimi-Linear, DeepSeek-V3.2, ...: config.mlp_layer_types[i] == "sparse";
    # without the key, the config class's own default pattern (its __post_init__, which differs per family)
    types_ = getattr(config, "mlp_layer_types", None)
    if types_ is None:
        types_ = _transformers_config(f, config).mlp_layer_types
    if len(types_) != n:
        raise ModelError(f"{f.model_type}: mlp_layer_types has {len(types_)} entries for {n} layers")
    return [i for i, kind in enumerate(types_) if kind == "sparse"]


def _transformers_config(f: Family, config):
    """The transformers config of a config.json read as attributes (defaults and derived keys filled in)."""
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(config, PretrainedConfig):
        return config
    raw = {k: v for k, v in vars(config).items() if k not in ("architectures", "model_type", "transformers_version")}
    try:
        return AutoConfig.for_model(f.model_type, **raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model_type {f.model_type!r}: transformers cannot read this config ({exc})") from None


def _built(f: Family, config, n: int) -> list[int]:
    # a family not in the table (``adapter:`` forced): the MoE blocks of the model transformers builds for
    # this config, on the meta device (no memory, no weights)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from moe_routing.capture.adapters import KINDS

    raw = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    raw = {k: v for k, v in raw.items() if k not in ("architectures", "model_type", "transformers_version")}
    try:
        cfg = AutoConfig.for_model(f.model_type, **raw)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model_type {f.model_type!r}: transformers cannot build it from this config ({exc})") from None
    return [site.layer for site in KINDS[f.kind](f).locate_hf(model)]


LAYER_RULES: dict[str, Callable[[Family, Any, int], list[int]]] = {
    "all": _all,
    "sparse_step": _sparse_step,
    "first_k_dense": _first_k_dense,
    "start_interval": _start_interval,
    "period_offset": _period_offset,
    "interleave": _interleave,
    "mlp_layer_types": _mlp_layer_types,
    "built": _built,
}


# --- tiny-config extras -------------------------------------------------------------------------
def _sigmoid_tiny(layers: int, experts: int, top_k: int, hidden: int) -> dict:
    groups = 2 if experts % 2 == 0 and experts // 2 >= max(2, top_k) else 1
    return dict(
        n_routed_experts=experts,
        n_shared_experts=1,
        n_group=groups,
        topk_group=1,
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
        first_k_dense_replace=1 if layers > 1 else 0,
        num_nextn_predict_layers=0,
    )


def _mla_tiny(heads: int) -> dict:
    return dict(
        num_key_value_heads=heads,
        kv_lora_rank=16,
        q_lora_rank=None,
        qk_rope_head_dim=16,
        qk_nope_head_dim=16,
        v_head_dim=32,
        head_dim=16,
    )


_FAMILY_ROWS = (
    # softmax -> top-k
    Family("qwen3_moe", "softmax_topk", "Qwen/Qwen3-30B-A3B", "Qwen3MoeConfig", "Qwen3MoeForCausalLM", "Qwen3MoeSparseMoeBlock",
           layers="sparse_step", tiny=dict(norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[]),
           vllm_gate="gate", vllm_verified=True),
    Family("qwen2_moe", "softmax_topk", "Qwen/Qwen1.5-MoE-A2.7B", "Qwen2MoeConfig", "Qwen2MoeForCausalLM", "Qwen2MoeSparseMoeBlock",
           layers="sparse_step", tiny=dict(norm_topk_prob=False, shared_expert_intermediate_size=64),
           vllm_gate="gate", vllm_verified=True),
    Family("qwen3_next", "softmax_topk", "Qwen/Qwen3-Next-80B-A3B-Instruct", "Qwen3NextConfig", "Qwen3NextForCausalLM",
           "Qwen3NextSparseMoeBlock", layers="sparse_step",
           # not mapped for vLLM: vLLM 0.32's CPU gated-delta-net attention runs bfloat16 only, parity is checked at float32
           tiny=lambda layers, experts, top_k, hidden: dict(
               norm_topk_prob=True, shared_expert_intermediate_size=64, linear_num_key_heads=1, linear_num_value_heads=2,
               linear_key_head_dim=16, linear_value_head_dim=16,
               layer_types=["linear_attention" if i % 2 == 0 else "full_attention" for i in range(layers)])),
    Family("olmoe", "softmax_topk", "allenai/OLMoE-1B-7B-0125-Instruct", "OlmoeConfig", "OlmoeForCausalLM", "OlmoeSparseMoeBlock",
           # OLMoE-1B-7B keeps norm_topk_prob off: the adapter must not renormalise
           tiny=dict(norm_topk_prob=False), vllm_gate="gate", vllm_verified=True),
    Family("flex_olmo", "softmax_topk", "allenai/FlexOlmo-7x7B-1T", "FlexOlmoConfig", "FlexOlmoForCausalLM", "FlexOlmoSparseMoeBlock",
           tiny=dict(norm_topk_prob=False)),
    Family("mixtral", "softmax_topk", "mistralai/Mixtral-8x7B-Instruct-v0.1", "MixtralConfig", "MixtralForCausalLM",
           "MixtralSparseMoeBlock", spec={"norm_topk_prob": True}, weights_float=True, vllm_gate="gate", vllm_verified=True),
    Family("minimax", "softmax_topk", "MiniMaxAI/MiniMax-Text-01", "MiniMaxConfig", "MiniMaxForCausalLM", "MiniMaxSparseMoeBlock",
           spec={"norm_topk_prob": True}, weights_float=True, padding_atol=1e-3,
           tiny=lambda layers, experts, top_k, hidden: dict(
               layer_types=["linear_attention" if i % 2 == 0 else "full_attention" for i in range(layers)])),
    Family("hunyuan_v1_moe", "softmax_topk", "tencent/Hunyuan-A13B-Instruct", "HunYuanMoEV1Config", "HunYuanMoEV1ForCausalLM",
           "HunYuanMoEV1Moe", spec={"norm_topk_prob": True, "top_k": "moe_topk"},
           tiny=lambda layers, experts, top_k, hidden: dict(moe_topk=top_k, num_shared_expert=1)),
    Family("jamba", "softmax_topk", "ai21labs/AI21-Jamba-Mini-1.7", "JambaConfig", "JambaForCausalLM", "JambaSparseMoeBlock",
           router="router", outputs=("logits",), layers="period_offset", spec={"norm_topk_prob": False},
           tiny=dict(use_mamba_kernels=False, expert_layer_period=2, expert_layer_offset=1, attn_layer_period=2,
                     attn_layer_offset=1, mamba_d_state=8, mamba_expand=1, mamba_dt_rank=8)),
    # softmax -> top-k with a selection bias (ERNIE-4.5: selects on softmax + e_score_correction_bias)
    Family("ernie4_5_moe", "softmax_bias_topk", "baidu/ERNIE-4.5-21B-A3B-PT", "Ernie4_5_MoeConfig", "Ernie4_5_MoeForCausalLM",
           "Ernie4_5_MoeSparseMoeBlock", bias="moe_statics.e_score_correction_bias", layers="start_interval",
           spec={"norm_min": "moe_norm_min"}, tiny=dict(moe_num_shared_experts=1, moe_layer_start_index=1),
           # vLLM's CPU router drops the bias: the adapter selects every row there (vllm_worker.cpu_router_unfit)
           vllm_gate="gate", vllm_verified=True),
    # softmax -> top-k within groups, scaled (DeepSeek-V2)
    Family("deepseek_v2", "softmax_groups", "deepseek-ai/DeepSeek-V2-Lite-Chat", "DeepseekV2Config", "DeepseekV2ForCausalLM",
           "DeepseekV2Moe", layers="first_k_dense", spec={"topk_method": "topk_method"},
           tiny=lambda layers, experts, top_k, hidden: _sigmoid_tiny(layers, experts, top_k, hidden)
           | _mla_tiny(max(1, hidden // 32)) | dict(topk_method="group_limited_greedy", routed_scaling_factor=1.5)
           # vLLM's CPU MLA decode kernel takes kv_lora_rank 512 + qk_rope_head_dim 64 only; with them it loads
           # and selects the same experts, but its combine weights differ from transformers' by ~4e-3: not mapped
           | dict(kv_lora_rank=512, qk_rope_head_dim=64)),
    # softmax -> top-k, renormalised by a p-norm (DBRX: the block gates the bare router linear)
    Family("dbrx", "softmax_topk_pnorm", "databricks/dbrx-instruct", "DbrxConfig", "DbrxForCausalLM", "DbrxFFN",
           router="router", outputs=("logits",), decoder="transformer.blocks",
           tiny=lambda layers, experts, top_k, hidden: dict(
               d_model=hidden, n_layers=layers, n_heads=max(1, hidden // 32),
               attn_config=dict(kv_n_heads=1, rope_theta=10000.0, clip_qkv=8.0),
               ffn_config=dict(hidden_size=hidden, ffn_hidden_size=hidden, moe_num_experts=experts, moe_top_k=top_k)),
           spec={"num_experts": "ffn_config.moe_num_experts", "top_k": "ffn_config.moe_top_k",
                 "pnorm": "ffn_config.moe_normalize_expert_weights"}),
    # top-k -> softmax
    Family("gpt_oss", "topk_softmax", "openai/gpt-oss-20b", "GptOssConfig", "GptOssForCausalLM", "GptOssMLP", router="router",
           tiny=lambda layers, experts, top_k, hidden: dict(
               sliding_window=64, layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]),
           harmony=True, vllm_gate="router", vllm_verified=True),
    Family("granitemoe", "topk_softmax", "ibm-granite/granite-3.1-3b-a800m-instruct", "GraniteMoeConfig",
           "GraniteMoeForCausalLM", "GraniteMoeMoE", router="router", outputs=("indices", "weights", "logits"), vllm_gate="gate",
           vllm_verified=True),
    Family("granitemoeshared", "topk_softmax", "ibm-research/moe-7b-1b-active-shared-experts", "GraniteMoeSharedConfig",
           "GraniteMoeSharedForCausalLM", "GraniteMoeSharedMoE", router="router", outputs=("indices", "weights", "logits"), vllm_gate="gate",
           vllm_verified=True,
           tiny=dict(shared_intermediate_size=64)),
    # sigmoid of the top-k logits (Llama-4)
    Family("llama4_text", "sigmoid_topk", "meta-llama/Llama-4-Scout-17B-16E-Instruct", "Llama4TextConfig", "Llama4ForCausalLM",
           "Llama4TextMoe", router="router", outputs=("scores", "logits"), layers="interleave",
           # not mapped for vLLM: its chunked local attention splits requests into virtual batches (query_start_loc
           # has more entries than requests), which the worker's row -> request mapping does not follow
           tiny=dict(intermediate_size_mlp=128, interleave_moe_layer_step=1, attention_chunk_size=64)),
    # sigmoid + bias, groups
    Family("deepseek_v3", "sigmoid_groups", "deepseek-ai/DeepSeek-V3", "DeepseekV3Config", "DeepseekV3ForCausalLM", "DeepseekV3MoE",
           bias="e_score_correction_bias", layers="first_k_dense",
           tiny=lambda layers, experts, top_k, hidden: _sigmoid_tiny(layers, experts, top_k, hidden)
           | _mla_tiny(max(1, hidden // 32)) | dict(rope_interleave=True),
           # mapped, not run: its tiny checkpoint does not load in vLLM 0.32
           vllm_gate="gate"),
    Family("glm4_moe", "sigmoid_groups", "zai-org/GLM-4.5-Air", "Glm4MoeConfig", "Glm4MoeForCausalLM", "Glm4MoeMoE",
           bias="e_score_correction_bias", layers="first_k_dense",
           tiny=lambda layers, experts, top_k, hidden: _sigmoid_tiny(layers, experts, top_k, hidden)
           | dict(partial_rotary_factor=0.5),
           vllm_gate="gate", vllm_verified=True),
    Family("dots1", "sigmoid_groups", "rednote-hilab/dots.llm1.inst", "Dots1Config", "Dots1ForCausalLM", "Dots1MoE",
           bias="e_score_correction_bias", layers="first_k_dense", tiny=_sigmoid_tiny),
    Family("glm4_moe_lite", "sigmoid_groups", "zai-org/GLM-4.7-Flash", "Glm4MoeLiteConfig", "Glm4MoeLiteForCausalLM",
           "Glm4MoeLiteMoE", bias="e_score_correction_bias", layers="mlp_layer_types",
           tiny=lambda layers, experts, top_k, hidden: _sigmoid_tiny(layers, experts, top_k, hidden)
           | _mla_tiny(max(1, hidden // 32))),
    Family("exaone_moe", "sigmoid_groups", "LGAI-EXAONE/K-EXAONE-236B-A23B", "ExaoneMoeConfig", "ExaoneMoeForCausalLM",
           "ExaoneMoeSparseMoEBlock", bias="e_score_correction_bias", layers="mlp_layer_types", tiny=_sigmoid_tiny),
    Family("mimo_v2_flash", "sigmoid_groups", "XiaomiMiMo/MiMo-V2-Flash", "MiMoV2FlashConfig", "MiMoV2FlashForCausalLM",
           "MiMoV2FlashMoE", bias="e_score_correction_bias", layers="mlp_layer_types", tiny=_sigmoid_tiny),
    Family("solar_open", "sigmoid_groups", "upstage/Solar-Open-100B", "SolarOpenConfig", "SolarOpenForCausalLM", "SolarOpenMoE",
           bias="e_score_correction_bias", tiny=_sigmoid_tiny),
    Family("axk1", "sigmoid_groups", "skt/A.X-K1", "AXK1Config", "AXK1ForCausalLM", "AXK1MoE",
           bias="e_score_correction_bias", layers="first_k_dense",
           tiny=lambda layers, experts, top_k, hidden: _sigmoid_tiny(layers, experts, top_k, hidden)
           | _mla_tiny(max(1, hidden // 32)) | dict(q_lora_rank=16)),
    Family("deepseek_v32", "sigmoid_groups", "deepseek-ai/DeepSeek-V3.2-Exp", "DeepseekV32Config", "DeepseekV32ForCausalLM",
           "DeepseekV32MoE", bias="e_score_correction_bias", layers="mlp_layer_types",
           tiny=lambda layers, experts, top_k, hidden: _sigmoid_tiny(layers, experts, top_k, hidden)
           | _mla_tiny(max(1, hidden // 32)) | dict(q_lora_rank=16)),
    Family("glm_moe_dsa", "sigmoid_groups", "zai-org/GLM-5", "GlmMoeDsaConfig", "GlmMoeDsaForCausalLM", "GlmMoeDsaMoE",
           bias="e_score_correction_bias", layers="mlp_layer_types",
           tiny=lambda layers, experts, top_k, hidden: _sigmoid_tiny(layers, experts, top_k, hidden)
           | _mla_tiny(max(1, hidden // 32)) | dict(q_lora_rank=16)),
    Family("hy_v4", "sigmoid_groups", "tencent/Hy4-preview", "HYV4Config", "HYV4ForCausalLM", "HYV4MoE",
           bias="e_score_correction_bias", layers="mlp_layer_types", tiny=_sigmoid_tiny),
    Family("mellum", "softmax_topk", "JetBrains/Mellum2-12B-A2.5B-Base", "MellumConfig", "MellumForCausalLM",
           "MellumSparseMoeBlock", layers="mlp_layer_types"),
    Family("granitemoehybrid", "topk_softmax", "ibm-granite/granite-4.0-h-tiny", "GraniteMoeHybridConfig",
           "GraniteMoeHybridForCausalLM", "GraniteMoeHybridMoE", router="router", outputs=("indices", "weights", "logits"),
           vllm_gate="gate", vllm_verified=True,
           # the default (0, inf) does not survive config.json (Infinity); generation needs an attention layer
           tiny=lambda layers, experts, top_k, hidden: dict(
               time_step_limit=[0.0, 100.0], mamba_n_heads=4, mamba_d_head=32, mamba_d_state=8, mamba_n_groups=1,
               layer_types=["full_attention" if i % 2 else "linear_attention" for i in range(layers)])),
    # sigmoid + bias without groups (n_group 1), renormalised; the bias is a buffer of the MoE block
    Family("minimax_m2", "sigmoid_groups", "MiniMaxAI/MiniMax-M2", "MiniMaxM2Config", "MiniMaxM2ForCausalLM",
           "MiniMaxM2SparseMoeBlock", bias="e_score_correction_bias", spec={"norm_topk_prob": True},
           # keys of the released config.json that vLLM reads and transformers' config does not write
           # (rotary_dim: the tiny head_dim 32 with transformers' partial_rotary_factor 1.0)
           tiny=dict(rotary_dim=32, scoring_func="sigmoid", use_routing_bias=True),
           # vLLM's CPU router has no sigmoid top-k without groups: the adapter selects every row there
           vllm_gate="gate", vllm_verified=True),
    Family("hy_v3", "sigmoid_groups", "tencent/Hy3-preview", "HYV3Config", "HYV3ForCausalLM", "HYV3MoE",
           bias="e_score_correction_bias", layers="mlp_layer_types",
           spec={"norm_topk_prob": True, "routed_scaling_factor": "router_scaling_factor"},
           tiny=dict(router_scaling_factor=2.5)),
    # sigmoid (of soft-capped logits) + bias, renormalised: sorted top-k, the same experts
    Family("laguna", "sigmoid_groups", "poolside/laguna-XS.2", "LagunaConfig", "LagunaForCausalLM", "LagunaSparseMoeBlock",
           bias="e_score_correction_bias", layers="mlp_layer_types", spec={"norm_topk_prob": True},
           tiny=dict(router_logit_softcapping=2.0)),
    # sparsemixer
    Family("phimoe", "sparsemixer", "microsoft/Phi-3.5-MoE-instruct", "PhimoeConfig", "PhimoeForCausalLM", "PhimoeSparseMoeBlock",
           router="router", spec={"jitter_eps": "router_jitter_noise"}, tiny=dict(router_jitter_noise=0.01, input_jitter_noise=0.0)),
)  # fmt: skip

FAMILIES: dict[str, Family] = {f.model_type: f for f in _FAMILY_ROWS}


def family_of(model_type: str) -> Family:
    if model_type not in FAMILIES:
        raise ModelError(unknown_family_message(model_type))
    return FAMILIES[model_type]


def unknown_family_message(model_type: str) -> str:
    return (
        f"unknown model_type {model_type!r}: no MoE router adapter; supported families: {', '.join(sorted(FAMILIES))}; "
        "to try an existing router kind on it, set `adapter:` on the model (the load-time probe checks it)"
    )
