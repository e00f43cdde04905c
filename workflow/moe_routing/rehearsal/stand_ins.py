"""Stand-ins of the paper models: tiny random checkpoints that load, prompt and stop like the real ones.

A rehearsal (``config/rehearsal/*.yaml``) replaces every paper model by a stand-in built here
(``python -m moe_routing stand-in --like HUB_ID --out DIR``), so that each stage runs on CPU
exactly as it would on the real checkpoint; only the numbers are meaningless. A stand-in keeps:

- the family (``model_type``, hence the router adapter and both backends' code paths);
- the layer structure configs depend on: number of decoder layers, which are dense and which MoE
  (GLM-4.5-Air: layer 0 dense, 45 MoE layers), top-k, so ``xici.exclude_first/last`` and
  ``steering.layers`` of the paper configs mean the same layers;
- the real chat template (``chat_templates/``), the special tokens it uses, the tokenizer's
  bos/eos/pad and the generation config's stop tokens and sampling defaults;
- width 64 and head size 32 (what vLLM's CPU attention takes).

Expert counts are the real ones except Qwen3 and GLM-4.5-Air (128): vLLM's CPU MoE kernel costs
time in proportion to layers x experts (on the shared 2-core test machine, 48 x 128 took ~28 s
for 16 prompts x 48 tokens, 48 x 16 ~5 s), so they keep 32, still top-8 and still far more than
any cap of the paper configs needs.

Tokenizers are byte-level (every string encodes) with BPE merges learned on the model's own
rendered chat template, the judge prompt, the loaders' fixed instructions and every letter of the
scripts the dataset mirrors write (data.synthetic_text), so, as with the real vocabularies, a
letter of any script is one token and a prompt is not three times longer than the real one.

The stand-ins being studied must give the routing analysis something to find, as real models do:
their routers send every token of a character class to that class's expert, one expert per class
and layer: digits and arithmetic signs, upper-case Latin letters, and each non-Latin script (the
class is a one-hot residual dimension of the token's embedding, the router row of the class's
expert reads it). So a language in another script has language experts (Delta > tau against
English), and the mirrors' domain sets, written dense in digits (math) and upper-case
abbreviations (medicine), have task experts for the steering rules. Their LM head writes only
``A``-``D``, digits and spaces, so multiple-choice and number judges score answers by chance and
per-language accuracies differ (a random head's letters and bytes were never a valid answer), and
after one such token it ends the turn, so generation is short whatever ``max_new_tokens`` says.

The XICI judge (``judge=True``; the paper's autorater is Qwen3-30B-A3B) must give mixed verdicts
for the XICI statistics to have anything to test. Its weights make greedy decoding answer ``YES``
or ``NO`` (single added tokens), then end the turn, always the same way for the same prompt, and
decided by the question and gold answer only: the stand-ins being judged repeat the same tokens
whatever they are asked, so a verdict that read the response would be the same for every item.
Reserved residual dimensions (no other weight writes them):

- dim 3 "coin": a random +-1 in the embedding of every token that holds a letter or digit and is
  not part of the rendered judge prompt itself (its fixed text and chat template, found by
  rendering it with empty fields); spaces, punctuation and stray bytes carry 0, so that what the
  question is about decides, not how many words it has;
- layer 0, head 0 attends uniformly (zero queries) and writes the mean coin of the prefix into
  dim 4: at each position, the mean coin of everything up to it;
- the "marker" is the first token after the gold answer that occurs once in the rendered prompt
  (``Response``): dim 5 is non-zero only in its embedding; layer 1, head 0 attends only to it
  (queries read a constant, keys read dim 5, both scaled by the q/k norms) and copies its dim 4,
  the mean coin of system prompt, question and gold answer, into dim 1;
- the LM head's YES row reads +dim 1, its NO row -dim 1; every other row reads -dim 2, a positive
  constant of every embedding, so nothing else wins; a question whose coins cancel gets YES;
- dim 0 is non-zero only in the embeddings of YES and NO; the end-of-turn row reads it, so the
  token after the verdict ends the reply.
"""

from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from moe_routing.core.errors import ConfigError, ModelError
from moe_routing.rehearsal.tiny_models import build_tiny_model, build_tokenizer, save_checkpoint

HIDDEN = 64
JUDGE_TOKENS = ("YES", "NO")
# residual dimensions the judge head reserves (see module docstring)
_FLAG, _VERDICT, _CONST, _COIN, _PREFIX, _MARKER = 0, 1, 2, 3, 4, 5
_CONST_VALUE, _FLAG_VALUE, _MARKER_VALUE, _GAIN, _QK_SCALE, _STOP_WEIGHT, _TIE_BREAK = 0.05, 1.0, 1.0, 0.1, 10.0, 20.0, 1e-3
BPE_VOCAB = 4096
# studied stand-ins: residual dimension of "the fed token is an answer token", of the constant, and the
# first one-hot dimension of the character classes
_ANSWERED, _ANSWER_CONST, _FIRST_CLASS = 6, 7, 8
_CLASS_VALUE, _CLASS_GAIN, _ANSWER_PENALTY = 1.0, 16.0, 100.0
ANSWER_TOKENS = tuple("ABCD0123456789 ")
MATH_SIGNS = set("0123456789+-*/=×÷")

QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen3 keeps these in decoded text (added tokens with special=false)
QWEN_ADDED = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")


@dataclass(frozen=True)
class StandIn:
    """What a stand-in copies from its model; ``experts`` is the stand-in's count, ``real_experts`` the model's."""

    hub_id: str
    family: str  # model_type
    layers: int
    experts: int
    real_experts: int
    top_k: int
    template: str  # file under chat_templates/
    special_tokens: tuple[str, ...]
    added_tokens: tuple[str, ...]
    bos: str | None
    eos: str
    pad: str
    stop: tuple[str, ...]  # generation_config.eos_token_id, in the model's order
    config: dict = field(default_factory=dict)  # overrides of the tiny family config
    generation: dict = field(default_factory=dict)  # sampling defaults of the model's generation_config

    @property
    def moe_layers(self) -> list[int]:
        """MoE layers of the stand-in, by its family's layer rule (adapters/families.py)."""
        from types import SimpleNamespace

        from moe_routing.capture.adapters.families import FAMILIES

        return FAMILIES[self.family].moe_layers(SimpleNamespace(**{**self.config, "num_hidden_layers": self.layers}))


def _qwen3(hub_id: str, template: str, generation: dict) -> StandIn:
    return StandIn(
        hub_id,
        "qwen3_moe",
        layers=48,
        experts=32,
        real_experts=128,
        top_k=8,
        template=template,
        special_tokens=QWEN_SPECIAL,
        added_tokens=QWEN_ADDED,
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        stop=("<|im_end|>", "<|endoftext|>"),
        config={"norm_topk_prob": True},
        generation=generation,
    )


STAND_INS: dict[str, StandIn] = {
    s.hub_id: s
    for s in (
        _qwen3(
            "Qwen/Qwen3-30B-A3B-Instruct-2507",
            "qwen3_instruct_2507.jinja",
            {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20},
        ),
        _qwen3("Qwen/Qwen3-30B-A3B", "qwen3.jinja", {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20}),
        StandIn(
            "zai-org/GLM-4.5-Air",
            "glm4_moe",
            layers=46,
            experts=32,
            real_experts=128,
            top_k=8,
            template="glm45.jinja",
            special_tokens=(
                "<|endoftext|>",
                "[MASK]",
                "[gMASK]",
                "[sMASK]",
                "<sop>",
                "<eop>",
                "<|system|>",
                "<|user|>",
                "<|assistant|>",
                "<|observation|>",
            ),
            added_tokens=(
                "<think>",
                "</think>",
                "<tool_call>",
                "</tool_call>",
                "<tool_response>",
                "</tool_response>",
                "<arg_key>",
                "</arg_key>",
                "<arg_value>",
                "</arg_value>",
                "/nothink",
            ),
            bos=None,
            eos="<|endoftext|>",
            pad="<|endoftext|>",
            stop=("<|endoftext|>", "<|user|>", "<|observation|>"),
            # 1 dense + 45 MoE layers, one shared expert, no expert groups, no scaling; the hub checkpoint's
            # extra MTP layer (num_nextn_predict_layers) is not loaded by either backend, so it is left out
            config={
                "first_k_dense_replace": 1,
                "n_shared_experts": 1,
                "n_group": 1,
                "topk_group": 1,
                "routed_scaling_factor": 1.0,
                "norm_topk_prob": True,
                "use_qk_norm": False,
                "num_nextn_predict_layers": 0,
            },
        ),
        StandIn(
            "microsoft/Phi-3.5-MoE-instruct",
            "phimoe",
            layers=32,
            experts=16,
            real_experts=16,
            top_k=2,
            template="phi35.jinja",
            special_tokens=("<s>", "<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"),
            added_tokens=(),
            bos="<s>",
            eos="<|endoftext|>",
            pad="<|endoftext|>",
            stop=("<|end|>", "<|assistant|>", "<|endoftext|>"),
            config={"attention_bias": True, "lm_head_bias": True, "router_jitter_noise": 0.01, "input_jitter_noise": 0.01},
        ),
        StandIn(
            "openai/gpt-oss-20b",
            "gpt_oss",
            layers=24,
            experts=32,
            real_experts=32,
            top_k=4,
            template="gpt_oss.jinja",
            special_tokens=(
                "<|startoftext|>",
                "<|endoftext|>",
                "<|return|>",
                "<|constrain|>",
                "<|channel|>",
                "<|start|>",
                "<|end|>",
                "<|message|>",
                "<|call|>",
                "<|endofprompt|>",
            ),
            added_tokens=(),
            bos="<|startoftext|>",
            eos="<|return|>",
            pad="<|endoftext|>",
            # <|end|> closes the analysis message but does not stop: the final channel follows it
            stop=("<|return|>", "<|endoftext|>"),
            config={"sliding_window": 128},
            generation={"do_sample": True},
        ),
        StandIn(
            "allenai/OLMoE-1B-7B-0125-Instruct",
            "olmoe",
            layers=16,
            experts=64,
            real_experts=64,
            top_k=8,
            template="tulu3.jinja",
            special_tokens=("<|endoftext|>", "<|pad|>"),
            added_tokens=(),
            bos="<|endoftext|>",
            eos="<|endoftext|>",
            pad="<|pad|>",
            stop=("<|endoftext|>",),
            config={"norm_topk_prob": False},
        ),
    )
}


def get(hub_id: str) -> StandIn:
    if hub_id not in STAND_INS:
        raise ConfigError(f"no stand-in for {hub_id!r}; stand-ins exist for {sorted(STAND_INS)}")
    return STAND_INS[hub_id]


def chat_template(name: str) -> str:
    return resources.files("moe_routing.rehearsal").joinpath("chat_templates", name).read_text(encoding="utf-8")


def build_stand_in_tokenizer(spec: StandIn, *, judge: bool = False):
    added = spec.added_tokens + (JUDGE_TOKENS if judge else ())
    kwargs = dict(
        special_tokens=spec.special_tokens,
        added_tokens=added,
        bos=spec.bos,
        eos=spec.eos,
        pad=spec.pad,
        chat_template=chat_template(spec.template),
    )
    return build_tokenizer(_bpe_corpus(build_tokenizer(**kwargs), spec), BPE_VOCAB, **kwargs)


def _bpe_corpus(byte_tokenizer, spec: StandIn) -> list[str]:
    """Texts every prompt of a run contains: the rendered chat template, the judge prompt, the loaders' instructions."""
    from moe_routing.data.belebele import INSTRUCTION as BELEBELE_INSTRUCTION
    from moe_routing.rehearsal.synthetic_text import SCRIPT_RANGES, letters
    from moe_routing.data.global_mmlu import MC_INSTRUCTION
    from moe_routing.data.items import XICI_SYSTEM
    from moe_routing.judging.judge import load_judge_prompt

    judge = load_judge_prompt()
    messages = [
        {"role": "system", "content": XICI_SYSTEM},
        {"role": "user", "content": "?"},
        {"role": "assistant", "content": "."},
        {"role": "user", "content": "?"},
    ]
    texts = [
        byte_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False),
        judge.system or "",
        judge.user,
        XICI_SYSTEM,
        BELEBELE_INSTRUCTION,
        MC_INSTRUCTION,
    ]
    # one letter per line: each becomes a token of its own, not a merge with its neighbours
    texts += ["\n".join(letters(script)) for script in SCRIPT_RANGES]
    for token in spec.special_tokens + spec.added_tokens:
        texts = [t.replace(token, "\n") for t in texts]
    return texts


def build_stand_in(hub_id: str, out_dir: str | Path, *, judge: bool = False, seed: int = 0, hidden: int = HIDDEN) -> Path:
    """Write the stand-in of ``hub_id`` to ``out_dir`` (identical arguments give identical files); returns ``out_dir``."""
    spec = get(hub_id)
    if judge and spec.family != "qwen3_moe":
        raise ConfigError(f"--judge: the YES/NO judge head is built for Qwen3-MoE stand-ins, not {spec.family} ({hub_id})")
    tokenizer = build_stand_in_tokenizer(spec, judge=judge)
    model = build_tiny_model(
        spec.family,
        tokenizer,
        hidden=hidden,
        layers=spec.layers,
        experts=spec.experts,
        top_k=spec.top_k,
        seed=seed,
        config_overrides=spec.config,
    )
    stop_ids = tokenizer.convert_tokens_to_ids(list(spec.stop))
    if judge:
        install_judge_head(model, tokenizer, stop_ids[0], seed=seed)
    else:
        classes = install_class_routing(model, tokenizer, seed=seed)
        install_answer_head(model, tokenizer, stop_ids)
        _check_reserved(model, [_ANSWERED, _ANSWER_CONST, *classes.values()])
    generation = dict(spec.generation, eos_token_id=stop_ids if len(stop_ids) > 1 else stop_ids[0])
    info = dict(
        stand_in=hub_id,
        judge=judge,
        family=spec.family,
        hidden=hidden,
        layers=spec.layers,
        moe_layers=len(spec.moe_layers),
        experts=spec.experts,
        real_experts=spec.real_experts,
        top_k=spec.top_k,
        seed=seed,
        template=spec.template,
    )
    return save_checkpoint(model, tokenizer, out_dir, info=info, generation=generation)


# ---------------------------------------------------------------- studied stand-ins


def token_class(text: str) -> str | None:
    """The routing class of a token's text: DIGIT, UPPER, a script name (``DEVANAGARI``, ``CJK``...), or None."""
    chars = [ch for ch in text if not ch.isspace()]
    if not chars:
        return None
    if all(ch in MATH_SIGNS for ch in chars):
        return "DIGIT"
    letters = [ch for ch in chars if ch.isalpha()]
    if not letters:
        return None
    if all("A" <= ch <= "Z" for ch in letters):
        return "UPPER"
    script = unicodedata.name(letters[0], "").split(" ")[0]
    return None if script in ("", "LATIN") else script


def install_class_routing(model, tokenizer, *, seed: int = 0) -> dict[str, int]:
    """Route each character class to its own expert per MoE layer (module docstring); returns class -> dimension."""
    import torch

    from moe_routing.capture.adapters import get_adapter

    vocab = model.get_input_embeddings().weight.shape[0]
    classes = {i: token_class(tokenizer.decode([i])) for i in range(vocab) if i not in tokenizer.all_special_ids}
    names = sorted({c for c in classes.values() if c})
    dims = {name: _FIRST_CLASS + k for k, name in enumerate(names)}
    hidden = model.config.hidden_size
    if _FIRST_CLASS + len(names) > hidden:
        raise ModelError(f"class routing: {len(names)} character classes do not fit a hidden size of {hidden}")
    sites = get_adapter(model.config).locate_hf(model)
    _zero_writers(model, list(range(_FIRST_CLASS, _FIRST_CLASS + len(names))))
    gen = torch.Generator().manual_seed(seed + 29)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[:, _FIRST_CLASS : _FIRST_CLASS + len(names)] = 0.0
        for i, name in classes.items():
            if name:
                emb[i, dims[name]] = _CLASS_VALUE
        for site in sites:
            weight = site.router.weight  # [E, H]
            weight[:, _FIRST_CLASS : _FIRST_CLASS + len(names)] = 0.0
            experts = torch.randperm(weight.shape[0], generator=gen).tolist()
            for k, name in enumerate(names):
                weight[experts[k % len(experts)], dims[name]] = _CLASS_GAIN
    return dims


def install_answer_head(model, tokenizer, stop_ids: list[int]) -> None:
    """Let the LM head write only ``ANSWER_TOKENS`` and then stop: every other row reads minus a constant
    of every embedding, and the stop tokens' rows read a dimension that only the answer tokens'
    embeddings set, so greedy decoding answers one token and ends (as a model asked for a short answer
    does; a rehearsal then generates a few tokens, not the paper's 512 of MGSM)."""
    import torch

    answers = [i for i in range(len(tokenizer)) if tokenizer.decode([i]) in ANSWER_TOKENS]
    _zero_writers(model, [_ANSWER_CONST, _ANSWERED])
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        embeddings[:, _ANSWER_CONST] = _CONST_VALUE
        embeddings[:, _ANSWERED] = 0.0
        embeddings[answers, _ANSWERED] = _CLASS_VALUE
        head = model.get_output_embeddings().weight
        head[:, _ANSWER_CONST] = -_ANSWER_PENALTY
        head[answers + stop_ids, _ANSWER_CONST] = 0.0
        head[:, _ANSWERED] = 0.0
        head[stop_ids, _ANSWERED] = _ANSWER_PENALTY


# ---------------------------------------------------------------- the judge head


def install_judge_head(model, tokenizer, stop_id: int, *, seed: int = 0) -> None:
    """Make greedy decoding answer YES or NO, then ``stop_id`` (module docstring); ModelError if it does not."""
    import torch

    yes, no = tokenizer.convert_tokens_to_ids(list(JUDGE_TOKENS))
    template = judge_prompt_ids(tokenizer, fill=False)
    marker = _marker_token(tokenizer, template)
    vocab = model.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(seed + 17)
    coins = torch.randint(0, 2, (vocab,), generator=gen).float() * 2 - 1
    neutral = set(template) | set(tokenizer.all_special_ids) | {yes, no}
    neutral |= {i for i in range(vocab) if not any(ch.isalnum() for ch in tokenizer.decode([i]))}
    coins[sorted(i for i in neutral if i < vocab)] = 0.0
    reserved = [_FLAG, _VERDICT, _CONST, _PREFIX, _MARKER]
    attn0, attn1 = model.model.layers[0].self_attn, model.model.layers[1].self_attn
    # a low-frequency rotary dimension of the query/key heads: its angle barely moves over a prompt
    lane = attn1.head_dim // 2 - 1
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[:, reserved] = 0.0
        emb[:, _CONST] = _CONST_VALUE
        emb[:, _COIN] = coins
        emb[[yes, no], _FLAG] = _FLAG_VALUE
        emb[marker, _MARKER] = _MARKER_VALUE
        for w in _residual_writers(model):
            w[reserved] = 0.0
        attn0.q_proj.weight.zero_()
        attn0.v_proj.weight[0] = 0.0
        attn0.v_proj.weight[0, _COIN] = 1.0
        attn0.o_proj.weight[_PREFIX, 0] = _GAIN
        attn1.q_proj.weight[: attn1.head_dim] = 0.0
        attn1.q_proj.weight[lane, _CONST] = 1.0
        attn1.k_proj.weight[: attn1.head_dim] = 0.0
        attn1.k_proj.weight[lane, _MARKER] = 1.0
        attn1.q_norm.weight[lane] = _QK_SCALE
        attn1.k_norm.weight[lane] = _QK_SCALE
        attn1.v_proj.weight[0] = 0.0
        attn1.v_proj.weight[0, _PREFIX] = 1.0
        attn1.o_proj.weight[_VERDICT, 0] = _GAIN
        head = model.get_output_embeddings().weight
        head.zero_()
        head[:, _CONST] = -1.0
        head[stop_id, _FLAG] = _STOP_WEIGHT
        # YES and NO read only the verdict, but YES wins a tie (it may have the higher token id)
        head[yes, _CONST], head[no, _CONST] = _TIE_BREAK, 0.0
        head[yes, _VERDICT], head[no, _VERDICT] = 1.0, -1.0
    _check_reserved(model, [_FLAG, _CONST, _MARKER])
    _check_judge(model, tokenizer, yes, no, stop_id)


def _marker_token(tokenizer, template: list[int]) -> int:
    """The first token after the gold answer's place that occurs once in the rendered judge prompt."""
    with_gold = judge_prompt_ids(tokenizer, fill=False, gold="\u2063")
    start = next(i for i, (a, b) in enumerate(zip(template, with_gold)) if a != b)
    for tok in template[start:]:
        if template.count(tok) == 1:
            return tok
    raise ModelError("judge head: the judge prompt has no token after the gold answer that occurs only once")


def _residual_writers(model) -> list:
    """Views of every weight and bias whose first axis indexes the residual stream's dimensions.

    Attention output projections and biases, dense and shared-expert down projections, and routed
    experts' down projections (stacked: the axis of size hidden is the output). Zeroing a row of
    all of them keeps that residual dimension what the embedding put there (``_check_reserved``).
    """
    hidden = model.config.hidden_size
    writers = []
    for name, param in model.model.layers.named_parameters():
        if "o_proj" not in name and "down_proj" not in name:
            continue
        if param.dim() == 1 or (param.dim() == 2 and name.endswith("weight")):  # biases [H], Linear weights [H, in]
            writers.append(param)
        elif param.dim() == 2:  # routed experts' biases [E, H]
            writers.append(param.transpose(0, 1))
        else:  # routed experts' weights [E, H, I] or [E, I, H]
            axes = [a for a in (1, 2) if param.shape[a] == hidden]
            if len(axes) != 1:
                raise ModelError(f"{name}: cannot tell the output axis of {tuple(param.shape)} (hidden {hidden})")
            writers.append(param.movedim(axes[0], 0))
    return writers


def _zero_writers(model, dims: list[int]) -> None:
    import torch

    with torch.no_grad():
        for w in _residual_writers(model):
            w[dims] = 0.0


def _check_reserved(model, dims: list[int]) -> None:
    """Every layer's output keeps the embedding's values in ``dims`` (no residual writer was missed)."""
    import torch

    ids = torch.arange(min(64, model.get_input_embeddings().weight.shape[0]))[None, :]
    with torch.no_grad():
        states = model.model(input_ids=ids, output_hidden_states=True).hidden_states
    # the last entry is after the final norm
    for layer, h in enumerate(states[1:-1]):
        if not torch.allclose(h[0, :, dims], states[0][0, :, dims]):
            raise ModelError(f"stand-in: layer {layer} writes the reserved residual dimensions {dims}")


def _check_judge(model, tokenizer, yes: int, no: int, stop_id: int, prompts: int = 8) -> None:
    """Synthetic judge prompts get YES or NO, both occur, and the verdict is followed by end of turn."""
    ids = [judge_prompt_ids(tokenizer, seed=i) for i in range(prompts)]
    first = _next_tokens(model, tokenizer, ids)
    if not set(first) <= {yes, no} or len(set(first)) < 2:
        raise ModelError(f"judge head: expected mixed YES/NO verdicts, got {tokenizer.convert_ids_to_tokens(first)}")
    second = _next_tokens(model, tokenizer, [x + [t] for x, t in zip(ids, first)])
    if set(second) != {stop_id}:
        raise ModelError(f"judge head: the verdict is not followed by end of turn: {tokenizer.convert_ids_to_tokens(second)}")


def _next_tokens(model, tokenizer, ids: list[list[int]]) -> list[int]:
    """Greedy next token after each (left-padded) sequence."""
    import torch

    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1).logits
    return logits[:, -1, :].argmax(-1).tolist()


def judge_prompt_ids(tokenizer, *, seed: int = 0, fill: bool = True, gold: str | None = None) -> list[int]:
    """The judge prompt (resources/judge_prompt.txt through the chat template) of a synthetic question.

    ``fill=False``: empty fields; ``gold`` replaces the gold answer."""
    from moe_routing.capture.backends import GenerationOptions, render_prompt
    from moe_routing.judging.judge import load_judge_prompt

    rng = random.Random(seed)
    prompt = load_judge_prompt()
    alphabet = "abcdefghijklmnopqrstuvwxyzäéñßçøабвгдежзαβγδ漢字かなअआइ가나0123456789"

    def words(n: int) -> str:
        return " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(2, 9))) for _ in range(n)) if fill else ""

    fields = {"question": words(rng.randint(2, 6)), "gold": words(rng.randint(1, 2)), "response": words(rng.randint(1, 6))}
    if gold is not None:
        fields["gold"] = gold
    user = prompt.user.format_map(fields)
    return render_prompt(tokenizer, user, prompt.system, GenerationOptions())


def describe(hub_id: str) -> str:
    """One line: what the stand-in of ``hub_id`` keeps and shrinks."""
    s = get(hub_id)
    return json.dumps(
        dict(
            hub_id=s.hub_id,
            family=s.family,
            layers=s.layers,
            moe_layers=len(s.moe_layers),
            experts=s.experts,
            real_experts=s.real_experts,
            top_k=s.top_k,
            template=s.template,
        )
    )
