"""The demo model, constructed rather than trained: a real ``Qwen3MoeForCausalLM`` whose weights plant
known mechanisms, so every stage's result can be scored against the truth (``demo_truth``).

Training a tiny MoE amplified float32 rounding into a different model on every CPU (AVX2 or AVX-512
kernels gave other facts, other experts). Here every weight is set by hand from the demo world:

- **Residual stream.** One constant *bias* dimension (every token embedding holds ``BIAS``; the
  layer norms' weights undo its scale, so a normed state is the raw state up to a factor within
  0.2 % of 1) plus named feature dimensions (``Layout``). Every constant term of every map reads
  the bias dimension, so no decision depends on that factor.
- **Token embeddings** carry disjoint features: an entity's ±1 code (16 dimensions), the language
  of a word found in one language's templates only, *task* for words of the word problems only,
  digits with their value, the three *slot* tokens that end every question (``?``, ``<|end|>``,
  ``<|assistant|>``), and *ends* for tokens after which the answer is over.
- **Attention** in the first layer: four heads whose query is the bias and whose key is one
  feature (entity, language word, task word, digit), scaled so that a position attends only to
  the earlier tokens that have it (exactly, after float32 rounding) and copies their mean value:
  the entity's code, the language, the task flag, the mean digit. In the last layer one head
  averages the *evidence* over the slot positions. Keys and queries live on the slowest RoPE pair
  with a huge base, so positions do not matter. Other heads are zero.
- **Routing** is top-1 (``norm_topk_prob``: every combine weight is exactly 1), with logit margins
  of several units (``margins`` in the truth file). First and last MoE layer: the expert of the
  context's language (*language experts*), a null expert before any language word. Middle layers:
  a fact's planted expert at each slot position where the fact is known in the prompt's language,
  the task experts at word-problem positions (in two layers), a null expert elsewhere.
- **Knowledge.** The first layer's expert of language ``l`` has one SwiGLU unit per (fact known in
  ``l``, slot): it fires only when the context holds that entity's code *and* the position is that
  slot, and writes a one-hot *route* for each middle layer. So a fact reaches its planted experts
  only in the languages where it is known. Each planted expert writes one unit of evidence.
- **Answer.** The last layer averages the evidence over the slot positions; the answer token's
  logit is the entity match plus the evidence, against the don't-know token ``?`` at the threshold
  ``EVIDENCE_THRESHOLD`` of the full evidence: deactivate enough of a fact's planted experts and
  it is answered ``?``. Word problems: the task expert of the first task layer writes a flag, the
  one of the second (gated on the flag) writes the digits' sum; number tokens peak at that sum
  (``-(n - s)²``); without the task experts the model answers ``0``. In the languages the world
  plants as *unskilled*, the task expert's router logit sits just below the null expert's, by less
  than the demo's steering boost (``λ·std(z)``), so steering toward the task experts repairs them.

``build`` writes the checkpoint (safetensors, config, tokenizer with the chat template) and the
planted truth (``demo_truth.TRUTH_FILE``) into one folder, after ``demo_truth.self_check`` has run
every demo prompt through the saved model and measured each decision's margin.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from moe_routing.demo.templates import FACT_SYSTEM, MC_SYSTEM, RELATIONS, SENTENCE_SYSTEM, TASK, TASK_SYSTEM
from moe_routing.demo.world import template_texts
from moe_routing.core.errors import DatasetError
from moe_routing.core.io import read_json

log = logging.getLogger(__name__)

PAD, UNK, EOS = "<pad>", "<unk>", "<|end|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = [PAD, UNK, EOS, *ROLE_TOKENS.values()]
DONT_KNOW = "?"
# the positions after a question where knowledge is routed; every chat prompt ends with them
SLOTS = ("?", EOS, "<|assistant|>")
NUMBERS = [str(n) for n in range(0, 19)]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] | trim + ' <|end|> ' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|> ' }}{%- endif -%}"
)

CODE_BITS = 16
HEAD_DIM = 32
HEADS = 4
# the bias dimension's value is BETA * sqrt(hidden); layer norms weigh BETA, so normed ≈ raw
BETA = 8.0
# router logit units
ROUTE = 40.0  # a planted choice
NULL = 20.0  # the null expert: wins when nothing planted applies
OFFSET = 0.25  # distinct small offsets order the experts nobody chose (deactivation fallbacks)
# a word problem in an unskilled language: the task expert's logit is NULL - UNSKILLED_GAP
UNSKILLED_GAP = 1.5
GATE = 30.0  # SwiGLU gate pre-activation of a firing unit (silu(-30) ≈ -3e-12 when it does not)
EVIDENCE_THRESHOLD = 0.5  # a fact is answered while more than this share of its evidence is left
QK_SCALE = 10.0  # q_norm / k_norm weight on the matching dimension: attention scores of ±566
KEY_DIM = HEAD_DIM // 2 - 1  # the slowest RoPE pair (with ROPE_THETA its rotation is below float32 resolution)
ROPE_THETA = 1.0e9
# lm_head units
ANSWER = 40.0  # entity match
EVIDENCE = 16.0  # per unit of mean evidence
NUMBER = 2.0  # -(n - s)² scale of number tokens
TASK_ANSWER = 100.0  # number tokens in a word problem
END = 2000.0  # <|end|> after an answer token


@dataclass
class BuildConfig:
    seed: int = 0
    layers: int = 8  # MoE layers (all layers are MoE); first and last route by language
    experts: int = 16
    # experts per middle layer that hold facts (the rest: null, task, unused)
    fact_pool: int = 8
    # middle layers (model layer indices) with the task experts; default: the second and third
    task_layers: list[int] = field(default_factory=list)
    # non-English languages (config order) that solve word problems without steering: the first
    # ``task_skilled`` of them; the rest are unskilled
    task_skilled: int = -1
    steering_strength: float = 0.5  # the demo's soft steering λ, to check its margin


# ---------------------------------------------------------------- tokenizer


def build_tokenizer(texts: list[str]):
    """A word-level tokenizer over ``texts`` wrapped as a transformers fast tokenizer with a chat template."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1, show_progress=False)
    tok.train_from_iterator(sorted(set(texts)), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        pad_token=PAD,
        eos_token=EOS,
        additional_special_tokens=list(ROLE_TOKENS.values()),
        padding_side="left",
        model_max_length=256,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def words(text: str) -> list[str]:
    from tokenizers import pre_tokenizers

    return [w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(text)]


# ---------------------------------------------------------------- the world's words


@dataclass
class WorldWords:
    """Which token carries which feature, from the world's templates and facts."""

    languages: list[str]
    lang_words: dict[str, str]  # word -> its only language
    task_words: set[str]
    entities: dict[str, str]  # entity word -> fact id
    answers: dict[str, str]  # fact id -> answer word


def _template_words(lang: str) -> set[str]:
    texts = [t for rel in RELATIONS.values() for t in rel[lang]] + [TASK[lang]]
    slots = {"e": "", "a": "", "n": "", "x": "", "y": ""}
    return {w for t in texts for w in words(t.format(**slots))}


def world_words(world: dict) -> WorldWords:
    """Feature words of the world (``corpus.world.json``); every template must have a word of its own language."""
    langs = list(world["languages"])
    system = {w for s in (FACT_SYSTEM, SENTENCE_SYSTEM, MC_SYSTEM, TASK_SYSTEM) for w in words(s)}
    reserved = system | set(SLOTS) | set(NUMBERS) | {DONT_KNOW}
    per_lang = {lang: _template_words(lang) - reserved for lang in langs}
    owners: dict[str, list[str]] = {}
    for lang, ws in per_lang.items():
        for w in ws:
            owners.setdefault(w, []).append(lang)
    lang_words = {w: o[0] for w, o in owners.items() if len(o) == 1}
    slots = {"e": "", "a": "", "n": "", "x": "", "y": ""}
    for lang in langs:
        for text in [t for rel in RELATIONS.values() for t in rel[lang]] + [TASK[lang]]:
            if not any(lang_words.get(w) == lang for w in words(text.format(**slots))):
                raise DatasetError(f"demo template {text!r} ({lang}) has no word found in {lang} only")
    fact_words = {w for lang in langs for rel in RELATIONS.values() for t in rel[lang] for w in words(t.format(**slots))}
    task_text = [TASK[lang].format(**slots) for lang in langs] + [TASK_SYSTEM]
    other_systems = {w for s in (FACT_SYSTEM, SENTENCE_SYSTEM, MC_SYSTEM) for w in words(s)}
    task_words = {w for t in task_text for w in words(t)} - fact_words - other_systems - set(SLOTS) - set(NUMBERS)
    if not task_words:
        raise DatasetError("demo templates: no word belongs to the word problems only")
    facts = world["facts"]
    return WorldWords(
        languages=langs,
        lang_words=lang_words,
        task_words=task_words,
        entities={f["entity"]: f["fact_id"] for f in facts},
        answers={f["fact_id"]: f["answer"] for f in facts},
    )


# ---------------------------------------------------------------- the plan


@dataclass
class Layout:
    """Residual dimensions by name; ``dims[name]`` is a slice."""

    dims: dict[str, tuple[int, int]] = field(default_factory=dict)
    size: int = 0

    def add(self, name: str, n: int = 1) -> None:
        self.dims[name] = (self.size, self.size + n)
        self.size += n

    def at(self, name: str, i: int = 0) -> int:
        lo, hi = self.dims[name]
        if not 0 <= i < hi - lo:
            raise IndexError(f"{name}[{i}]")
        return lo + i


@dataclass
class Plan:
    """What the construction plants: the truth, before it becomes weights."""

    languages: list[str]
    moe_layers: list[int]
    middle: list[int]
    task_layers: list[int]
    num_experts: int
    null_expert: dict[int, int]  # layer -> null expert
    language_expert: dict[str, int]  # lang -> expert in the first and last layer
    task_expert: int
    fact_pool: list[int]
    unused: list[int]
    known: dict[str, list[str]]  # fact id -> languages it is known in
    slot_experts: dict[str, dict[int, list[int]]]  # fact id -> layer -> expert per slot
    task_skilled: list[str]
    codes: dict[str, list[int]]  # fact id -> ±1 code


def make_plan(world: dict, cfg: BuildConfig) -> Plan:
    langs = list(world["languages"])
    L, E = cfg.layers, cfg.experts
    if L < 5:
        raise DatasetError(f"the demo model needs at least 5 layers (language, 3 middle, language), got {L}")
    if len(langs) + 1 > E:
        raise DatasetError(f"{len(langs)} languages need at least {len(langs) + 1} experts, got {E}")
    middle = list(range(1, L - 1))
    task_layers = cfg.task_layers or middle[1:3]
    if not set(task_layers) <= set(middle) or len(task_layers) != 2:
        raise DatasetError(f"task_layers must be two middle layers of {middle}, got {task_layers}")
    null, task = 0, 1
    pool = list(range(2, 2 + cfg.fact_pool))
    if pool[-1] >= E:
        raise DatasetError(f"fact_pool {cfg.fact_pool} does not fit {E} experts (null and task come first)")
    rng = random.Random(f"demo-model-{cfg.seed}")
    codes: dict[str, list[int]] = {}
    seen: set[tuple[int, ...]] = set()
    for f in world["facts"]:
        while True:
            code = tuple(rng.choice((-1, 1)) for _ in range(CODE_BITS))
            if code not in seen:
                break
        seen.add(code)
        codes[f["fact_id"]] = list(code)
    slot_experts = {f["fact_id"]: {layer: [rng.choice(pool) for _ in SLOTS] for layer in middle} for f in world["facts"]}
    others = [lang for lang in langs if lang != "en"]
    n_skilled = len(others) // 2 if cfg.task_skilled < 0 else cfg.task_skilled
    return Plan(
        languages=langs,
        moe_layers=list(range(L)),
        middle=middle,
        task_layers=sorted(task_layers),
        num_experts=E,
        null_expert={0: E - 1, L - 1: E - 1, **{layer: null for layer in middle}},
        language_expert={lang: i for i, lang in enumerate(langs)},
        task_expert=task,
        fact_pool=pool,
        unused=[e for e in range(2 + cfg.fact_pool, E)],
        known={f["fact_id"]: list(f["languages"]) for f in world["facts"]},
        slot_experts=slot_experts,
        task_skilled=["en"] + others[:n_skilled] if "en" in langs else others[:n_skilled],
        codes=codes,
    )


# ---------------------------------------------------------------- weights


def layout_for(plan: Plan) -> Layout:
    lay = Layout()
    lay.add("bias")
    lay.add("code", CODE_BITS)
    lay.add("is_entity")
    lay.add("lang", len(plan.languages))
    lay.add("has_lang")
    lay.add("is_task")
    lay.add("is_digit")
    lay.add("digit")
    lay.add("slot", len(SLOTS))
    lay.add("is_slot")
    lay.add("ends")
    lay.add("ctx_code", CODE_BITS)
    lay.add("ctx_lang", len(plan.languages))
    lay.add("ctx_task")
    lay.add("ctx_digit")
    lay.add("route", len(plan.middle) * plan.num_experts)
    lay.add("evidence")
    lay.add("agg")
    lay.add("tflag")
    lay.add("sum")
    lay.size = int(math.ceil(lay.size / HEAD_DIM) * HEAD_DIM)
    return lay


def _route_dim(lay: Layout, plan: Plan, layer: int, expert: int) -> int:
    return lay.at("route", plan.middle.index(layer) * plan.num_experts + expert)


def build_weights(plan: Plan, ww: WorldWords, tokenizer) -> tuple[dict, dict[str, torch.Tensor], Layout]:
    """(config kwargs, state dict, layout) of the constructed model, in float64 before the cast."""
    lay = layout_for(plan)
    H, E, L = lay.size, plan.num_experts, len(plan.moe_layers)
    vocab = tokenizer.get_vocab()
    V = len(tokenizer)
    bias = BETA * math.sqrt(H)
    one = 1.0 / bias  # weight on the bias dimension that yields a constant 1
    d = np.float64

    emb = np.zeros((V, H), d)
    emb[:, lay.at("bias")] = bias
    fact_of_entity = ww.entities
    for word, idx in vocab.items():
        if word in fact_of_entity:
            lo, hi = lay.dims["code"]
            emb[idx, lo:hi] = plan.codes[fact_of_entity[word]]
            emb[idx, lay.at("is_entity")] = 1.0
        if word in ww.lang_words:
            emb[idx, lay.at("lang", plan.languages.index(ww.lang_words[word]))] = 1.0
            emb[idx, lay.at("has_lang")] = 1.0
        if word in ww.task_words:
            emb[idx, lay.at("is_task")] = 1.0
        if word in SLOTS:
            emb[idx, lay.at("slot", SLOTS.index(word))] = 1.0
            emb[idx, lay.at("is_slot")] = 1.0
        if word.isdigit() and 1 <= int(word) <= 9:
            emb[idx, lay.at("is_digit")] = 1.0
            emb[idx, lay.at("digit")] = int(word) / 10
        if word in NUMBERS or word == DONT_KNOW or word in set(ww.answers.values()):
            emb[idx, lay.at("ends")] = 1.0

    inter = 0
    for lang in plan.languages:
        inter = max(inter, len(SLOTS) * sum(lang in k for k in plan.known.values()))
    inter = max(HEAD_DIM, int(math.ceil(inter / HEAD_DIM) * HEAD_DIM))

    sd: dict[str, np.ndarray] = {"model.embed_tokens.weight": emb}
    for layer in range(L):
        p = f"model.layers.{layer}."
        q, k, v = (np.zeros((HEADS * HEAD_DIM, H), d) for _ in range(3))
        o = np.zeros((H, HEADS * HEAD_DIM), d)
        if layer == 0:
            heads = [("is_entity", "code", "ctx_code"), ("has_lang", "lang", "ctx_lang"), ("is_task", "is_task", "ctx_task")]
            heads.append(("is_digit", "digit", "ctx_digit"))
        elif layer == L - 1:
            heads = [("is_slot", "evidence", "agg")]
        else:
            heads = []
        for h, (key, src, dst) in enumerate(heads):
            q[h * HEAD_DIM + KEY_DIM, lay.at("bias")] = one
            k[h * HEAD_DIM + KEY_DIM, lay.at(key)] = 1.0
            (slo, shi), (dlo, _) = lay.dims[src], lay.dims[dst]
            for i in range(shi - slo):
                v[h * HEAD_DIM + i, slo + i] = 1.0
                o[dlo + i, h * HEAD_DIM + i] = 1.0
        sd[p + "self_attn.q_proj.weight"] = q
        sd[p + "self_attn.k_proj.weight"] = k
        sd[p + "self_attn.v_proj.weight"] = v
        sd[p + "self_attn.o_proj.weight"] = o
        qn = np.ones(HEAD_DIM, d)
        qn[KEY_DIM] = QK_SCALE
        sd[p + "self_attn.q_norm.weight"] = qn
        sd[p + "self_attn.k_norm.weight"] = qn.copy()
        sd[p + "input_layernorm.weight"] = np.full(H, BETA, d)
        sd[p + "post_attention_layernorm.weight"] = np.full(H, BETA, d)

        router = np.zeros((E, H), d)
        gate = np.zeros((E, inter, H), d)
        up = np.zeros((E, inter, H), d)
        down = np.zeros((E, H, inter), d)
        null = plan.null_expert[layer]
        # the order of the experts nobody chose: null first, then unused, pool, task, language experts
        # (the task expert second: an unskilled language's gap to the null expert stays below the steering boost)
        fallback = list(dict.fromkeys([null, plan.task_expert, *plan.unused, *plan.fact_pool, *range(E)]))
        for rank, e in enumerate(fallback):
            router[e, lay.at("bias")] = -OFFSET * rank * one
        router[null, lay.at("bias")] = NULL * one
        if layer in (0, L - 1):
            for lang, e in plan.language_expert.items():
                router[e, lay.at("ctx_lang", plan.languages.index(lang))] = ROUTE
        if layer == 0:
            for lang, e in plan.language_expert.items():
                unit = 0
                for fid, langs in plan.known.items():
                    if lang not in langs:
                        continue
                    for s in range(len(SLOTS)):
                        # fires iff the context's code is this fact's (dot = CODE_BITS, else <= CODE_BITS - 2)
                        # and the token is slot s: G·(code·c + 2·slot − (CODE_BITS + 1))
                        lo, hi = lay.dims["ctx_code"]
                        gate[e, unit, lo:hi] = np.asarray(plan.codes[fid], d) * GATE
                        gate[e, unit, lay.at("slot", s)] = 2 * GATE
                        gate[e, unit, lay.at("bias")] = -(CODE_BITS + 1) * GATE * one
                        up[e, unit, lay.at("bias")] = one
                        for m in plan.middle:
                            down[e, _route_dim(lay, plan, m, plan.slot_experts[fid][m][s]), unit] = 1.0 / GATE
                        unit += 1
        if layer in plan.middle:
            for e in plan.fact_pool:
                router[e, _route_dim(lay, plan, layer, e)] = ROUTE
                gate[e, 0, lay.at("bias")] = GATE * one
                up[e, 0, lay.at("bias")] = one
                down[e, lay.at("evidence"), 0] = 1.0 / GATE
            if layer in plan.task_layers:
                t = plan.task_expert
                router[t, lay.at("ctx_task")] = ROUTE
                for lang in plan.languages:
                    if lang not in plan.task_skilled:
                        router[t, lay.at("ctx_lang", plan.languages.index(lang))] = -(ROUTE - NULL + UNSKILLED_GAP)
                if layer == plan.task_layers[0]:
                    gate[t, 0, lay.at("bias")] = GATE * one
                    up[t, 0, lay.at("bias")] = one
                    down[t, lay.at("tflag"), 0] = 1.0 / GATE
                else:
                    # gated on the flag the first task layer wrote: G·(2·tflag − 1)
                    gate[t, 0, lay.at("tflag")] = 2 * GATE
                    gate[t, 0, lay.at("bias")] = -GATE * one
                    up[t, 0, lay.at("ctx_digit")] = 1.0
                    # ctx_digit is (x + y) / 20; sum holds (x + y) / 10
                    down[t, lay.at("sum"), 0] = 2.0 / GATE
        sd[p + "mlp.gate.weight"] = router
        sd[p + "mlp.experts.gate_up_proj"] = np.concatenate([gate, up], axis=1)
        sd[p + "mlp.experts.down_proj"] = down

    sd["model.norm.weight"] = np.full(H, BETA, d)
    head = np.zeros((V, H), d)
    full = len(plan.middle) * len(SLOTS)
    # mean evidence over the four slot positions of a fact question (the system turn's <|end|> has none)
    threshold = (EVIDENCE_THRESHOLD * full + 0.5) / 4
    answer_of = {a: fid for fid, a in ww.answers.items()}
    for word, idx in vocab.items():
        if word in answer_of:
            lo, hi = lay.dims["ctx_code"]
            head[idx, lo:hi] = np.asarray(plan.codes[answer_of[word]], d) * ANSWER / CODE_BITS
            head[idx, lay.at("agg")] = EVIDENCE
        elif word == DONT_KNOW:
            head[idx, lay.at("bias")] = (ANSWER + EVIDENCE * threshold) * one
        elif word in NUMBERS:
            n = int(word)
            head[idx, lay.at("sum")] = NUMBER * 2 * n * 10
            head[idx, lay.at("bias")] = -NUMBER * n * n * one
            head[idx, lay.at("ctx_task")] = TASK_ANSWER
        elif word == EOS:
            head[idx, lay.at("ends")] = END
    sd["lm_head.weight"] = head

    config = dict(
        vocab_size=V,
        hidden_size=H,
        intermediate_size=H,
        moe_intermediate_size=inter,
        num_hidden_layers=L,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        head_dim=HEAD_DIM,
        num_experts=E,
        num_experts_per_tok=1,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        max_position_embeddings=256,
        rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        router_aux_loss_coef=0.0,
        output_router_logits=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return config, {k: torch.from_numpy(v).to(torch.float32) for k, v in sd.items()}, lay


def world_items(world: dict) -> dict[str, list[pl.DataFrame]]:
    """dataset -> one items frame per language: the demo items, rebuilt from the world summary."""
    from moe_routing.demo.world import items, world_from_summary

    try:
        demo, sizes = world_from_summary(world)
    except KeyError as exc:
        raise DatasetError(f"world summary lacks {exc}; rerun demo-world") from exc
    return {name: [pl.from_arrow(t) for t in per_lang.values()] for name, per_lang in items(demo, **sizes).items()}


def vocabulary_texts(world: dict, tables: dict[str, list[pl.DataFrame]]) -> list[str]:
    """Every word of the demo items, templates and answers, and the numbers 0–18."""
    texts = list(template_texts(world["languages"])) + NUMBERS + [DONT_KNOW]
    texts += [f["entity"] for f in world["facts"]] + [f["answer"] for f in world["facts"]]
    for frames in tables.values():
        for df in frames:
            texts += df["prompt"].to_list() + df["system"].drop_nulls().to_list()
            texts += [a for answers in df["answers"].to_list() for a in answers]
    return texts


def build_model(world: dict, tables: dict[str, list[pl.DataFrame]], cfg: BuildConfig):
    """(model, tokenizer, plan, layout): the constructed checkpoint in memory."""
    from transformers import GenerationConfig, Qwen3MoeConfig, Qwen3MoeForCausalLM

    ww = world_words(world)
    plan = make_plan(world, cfg)
    tokenizer = build_tokenizer(vocabulary_texts(world, tables))
    config_kwargs, state, lay = build_weights(plan, ww, tokenizer)
    config = Qwen3MoeConfig(**config_kwargs)
    model = Qwen3MoeForCausalLM(config)
    model.load_state_dict(state, strict=True)
    model.generation_config = GenerationConfig(
        do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, max_new_tokens=32
    )
    model.eval()
    return model, tokenizer, plan, lay


def save(model, tokenizer, extra_files: dict[str, str], out_dir: str | Path) -> None:
    """Write the checkpoint into a temporary sibling folder, then swap it in, so a crash leaves no half model."""
    import shutil
    import tempfile

    from moe_routing.core.faults import file_fault
    from moe_routing.core.io import fsync_folder, fsync_tree

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its shard bar redraws with carriage returns, a log file's bane
    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model folder should read like any other
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in extra_files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        fsync_tree(tmp)  # on disk before the swap: a crash leaves the old model or the whole new one
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        fsync_folder(final.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        fault = file_fault(final, exc, writing=True)  # disk full while saving: one line naming the model
        if fault is not None:
            raise fault from exc
        raise


def load_world(path: str | Path) -> dict:
    p = Path(path)
    world = read_json(p, "world summary")
    for key in ("languages", "facts", "seed"):
        if key not in world:
            raise DatasetError(f"{p}: world summary lacks {key!r}")
    return world
