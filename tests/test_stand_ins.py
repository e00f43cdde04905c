"""Stand-ins of the paper models: real layer layout, real chat template, stop tokens, and the YES/NO judge."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from moe_routing.capture.backends import GenerationOptions, render_prompt
from moe_routing.cli import main as cli_main
from moe_routing.core.errors import ConfigError
from moe_routing.judging.judge import judge_frame, parse_yes_no
from moe_routing.rehearsal.stand_ins import ANSWER_TOKENS, STAND_INS, build_stand_in, get, token_class

SYSTEM = "In just a few words, answer in the language of the question."
# what each template makes of a system + user turn with thinking off (the models' documented formats)
RENDERED = {
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "<|im_start|>system\n{s}<|im_end|>\n<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n",
    "Qwen/Qwen3-30B-A3B": "<|im_start|>system\n{s}<|im_end|>\n<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "zai-org/GLM-4.5-Air": "[gMASK]<sop><|system|>\n{s}<|user|>\n{u}/nothink<|assistant|>\n<think></think>",
    "microsoft/Phi-3.5-MoE-instruct": "<|system|>\n{s}<|end|>\n<|user|>\n{u}<|end|>\n<|assistant|>\n",
    "allenai/OLMoE-1B-7B-0125-Instruct": "<|endoftext|><|system|>\n{s}\n<|user|>\n{u}\n<|assistant|>\n",
}
# number of MoE layers, first MoE layer (the paper configs' exclude_first/last and steering.layers refer to these)
LAYOUT = {
    "Qwen/Qwen3-30B-A3B-Instruct-2507": (48, 0, 8),
    "Qwen/Qwen3-30B-A3B": (48, 0, 8),
    "zai-org/GLM-4.5-Air": (45, 1, 8),
    "microsoft/Phi-3.5-MoE-instruct": (32, 0, 2),
    "openai/gpt-oss-20b": (24, 0, 4),
    "allenai/OLMoE-1B-7B-0125-Instruct": (16, 0, 8),
}


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    root = tmp_path_factory.mktemp("stand_ins")
    built: dict = {}

    def make(hub_id: str, judge: bool = False):
        key = (hub_id, judge)
        if key not in built:
            built[key] = build_stand_in(hub_id, root / f"{hub_id.replace('/', '_')}{'_judge' if judge else ''}", judge=judge)
        return built[key]

    return make


@pytest.fixture(scope="module")
def backend(stand_in, load_hf):
    return lambda hub_id, judge=False: load_hf(stand_in(hub_id, judge))


def _items(n: int, prompts=None) -> pl.DataFrame:
    prompts = prompts or [f"Wer baute Haus {i}?" for i in range(n)]
    return pl.DataFrame({"item_id": [f"q{i}" for i in range(n)], "lang": ["de"] * n, "prompt": prompts, "system": [SYSTEM] * n})


@pytest.mark.parametrize("hub_id", sorted(STAND_INS))
def test_stand_in_loads_with_the_real_layout_and_generates(backend, hub_id):
    b = backend(hub_id)
    moe_layers, first, top_k = LAYOUT[hub_id]
    assert (len(b.moe_layers), b.moe_layers[0], b.moe_layers[-1], b.top_k) == (moe_layers, first, first + moe_layers - 1, top_k)
    assert b.model.config.num_hidden_layers == first + moe_layers
    assert b.num_experts == get(hub_id).experts
    out = pl.from_arrow(b.generate(_items(2), options=GenerationOptions(batch_size=2, max_new_tokens=3)))
    assert out.height == 2 and all(0 < len(ids) <= 3 for ids in out["output_token_ids"])
    assert len(out["weights"][0]) == moe_layers * b.num_experts
    # the LM head writes letters of options, digits and spaces only
    assert all(set(text) <= set(ANSWER_TOKENS) for text in out["output"])


@pytest.mark.parametrize("hub_id", ["allenai/OLMoE-1B-7B-0125-Instruct", "openai/gpt-oss-20b", "zai-org/GLM-4.5-Air"])
def test_every_token_of_a_character_class_selects_its_expert(backend, hub_id):
    """Digits, upper-case letters, a script: at every MoE layer one expert takes all of a class's tokens."""
    b = backend(hub_id)
    text = "BP HR 12+34-56 हिन्दी ECG 78=?"
    b.trace = []
    try:
        out = pl.from_arrow(
            b.generate(
                _items(1, [text]).with_columns(system=pl.lit(None, pl.String)),
                options=GenerationOptions(batch_size=1, max_new_tokens=0),
            )
        )
        trace = list(b.trace)
    finally:
        b.trace = None
    ids = out["prompt_token_ids"][0]
    by_class: dict = {}
    for pos, tok in enumerate(ids):
        name = token_class(b.tokenizer.decode([tok]))
        if name:
            by_class.setdefault(name, []).append(pos)
    assert {"DIGIT", "UPPER", "DEVANAGARI"} <= set(by_class)
    assert len(trace) == len(b.moe_layers)
    for call in trace:
        for name, positions in by_class.items():
            shared = set.intersection(*(set(call["indices"][p].tolist()) for p in positions))
            assert shared, (call["layer"], name)


@pytest.mark.parametrize("hub_id", sorted(RENDERED))
def test_template_renders_system_and_user(backend, hub_id):
    tok = backend(hub_id).tokenizer
    ids = render_prompt(tok, "Wer war Ada?", SYSTEM, GenerationOptions())
    assert tok.decode(ids) == RENDERED[hub_id].format(s=SYSTEM, u="Wer war Ada?")


def test_gpt_oss_template_speaks_harmony(backend):
    tok = backend("openai/gpt-oss-20b").tokenizer
    text = tok.decode(render_prompt(tok, "Wer war Ada?", SYSTEM, GenerationOptions()))
    assert text.startswith("<|start|>system<|message|>You are ChatGPT") and "Reasoning: medium" in text
    assert f"<|start|>developer<|message|># Instructions\n\n{SYSTEM}" in text
    assert text.endswith("<|start|>user<|message|>Wer war Ada?<|end|><|start|>assistant")
    # the harmony markers are single special tokens; <|end|> does not stop generation, <|return|> does
    assert all(len(tok(m, add_special_tokens=False)["input_ids"]) == 1 for m in ("<|channel|>", "<|message|>", "<|end|>"))
    gen = json.loads((Path(backend("openai/gpt-oss-20b").model_path) / "generation_config.json").read_text())
    assert tok.convert_ids_to_tokens(gen["eos_token_id"]) == ["<|return|>", "<|endoftext|>"]


def test_stop_tokens_and_sampling_defaults_are_the_models(stand_in):
    path = stand_in("Qwen/Qwen3-30B-A3B-Instruct-2507")
    gen = json.loads((path / "generation_config.json").read_text())
    assert gen["do_sample"] is True and gen["top_k"] == 20 and len(gen["eos_token_id"]) == 2
    info = json.loads((path / "tiny_model.json").read_text())
    assert info["stand_in"] == "Qwen/Qwen3-30B-A3B-Instruct-2507" and info["real_experts"] == 128


@pytest.mark.slow
def test_judge_says_yes_or_no_mixed_and_the_same_each_time(backend):
    judge = backend("Qwen/Qwen3-30B-A3B", judge=True)
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyzäößабвгдεζηθ漢字かなअआ"

    def words(n):
        return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 7))) for _ in range(n))

    n = 12
    items = pl.DataFrame(
        {
            "item_id": [f"q{i}" for i in range(n)],
            "lang": ["de"] * n,
            "prompt": [words(6) + "?" for _ in range(n)],
            "system": [SYSTEM] * n,
            "answers": [[words(2)] for _ in range(n)],
            "choices": [None] * n,
        },
        schema_overrides={"choices": pl.List(pl.String)},
    )
    # the judged stand-ins answer every question alike; the verdicts must not hinge on that
    gens = pl.DataFrame({"item_id": items["item_id"], "lang": items["lang"], "output": ["\ufffd" * 16] * n})
    first = judge_frame(items, gens, "llm", backend=judge, batch_size=n)
    assert set(first["detail"]) <= {"YES: YES", "NO: NO"}
    assert 0 < first["correct"].sum() < n
    assert [parse_yes_no(d.split(": ")[1]) for d in first["detail"]] == first["correct"].to_list()
    again = judge_frame(items, gens, "llm", backend=judge, batch_size=5)
    assert again["correct"].to_list() == first["correct"].to_list()
    # nothing to go by (no letter or digit outside the judge prompt's own text): a tie, settled as YES
    blank = items.head(1).with_columns(prompt=pl.lit("?"), answers=pl.lit(["YES"]))
    assert judge_frame(blank, gens.head(1).with_columns(output=pl.lit("")), "llm", backend=judge)["detail"][0] == "YES: YES"


def test_unknown_model_and_judge_of_another_family_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no stand-in for 'org/unknown'"):
        build_stand_in("org/unknown", tmp_path / "x")
    with pytest.raises(ConfigError, match="judge head is built for Qwen3-MoE"):
        build_stand_in("openai/gpt-oss-20b", tmp_path / "y", judge=True)


def test_stand_in_stage_is_deterministic(tmp_path):
    args = ["stand-in", "--like", "allenai/OLMoE-1B-7B-0125-Instruct", "--seed", "3"]
    assert cli_main(args + ["--out", str(tmp_path / "a")]) == 0
    assert cli_main(args + ["--out", str(tmp_path / "b")]) == 0
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with pytest.raises(SystemExit):
        cli_main(["stand-in", "--like", "org/unknown", "--out", str(tmp_path / "c")])
