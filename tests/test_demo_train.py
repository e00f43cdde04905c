"""A very short demo training run: the checkpoint loads like a hub model, chats, generates and stops."""

from __future__ import annotations

import json

import pytest
import torch

from moe_routing.demo.world import build_world, items, training_corpus
from moe_routing.demo.train import (
    CheckResult,
    TrainConfig,
    better,
    build_tokenizer,
    encode_check,
    encode_conversation,
    load_check_items,
    prompt_ids,
    summarise_check,
    teacher_forced_check,
    train,
)
from moe_routing.core.errors import DatasetError
from moe_routing.core.io import write_parquet

LANGS = ("en", "de", "sv")
TINY = dict(
    hidden_size=64,
    heads=2,
    kv_heads=2,
    layers=2,
    experts=4,
    top_k=2,
    moe_intermediate_size=32,
    batch_size=16,
    lr=1e-2,
    warmup=10,
    eval_every=20,
    check_start=0.0,
    check_facts=8,
    threads=1,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("demo")
    world = build_world(LANGS, n_entities=20, seed=0)
    for lang, table in items(world)["demo_facts"].items():
        write_parquet(table, root / "facts" / f"{lang}.parquet")
    corpus = training_corpus(world, task_per_language=10)
    check = load_check_items(sorted((root / "facts").glob("*.parquet")))
    report = train(corpus, check, TrainConfig(steps=120, **TINY), root / "model")
    return root, report, check


def test_checkpoint_loads_like_a_hub_model(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3MoeForCausalLM

    root, report, _ = trained
    model = AutoModelForCausalLM.from_pretrained(root / "model")
    tok = AutoTokenizer.from_pretrained(root / "model")
    assert isinstance(model, Qwen3MoeForCausalLM)
    cfg = model.config
    assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.num_hidden_layers, cfg.head_dim) == (4, 2, 2, 32)
    assert cfg.output_router_logits is False
    assert cfg.eos_token_id == tok.eos_token_id == model.generation_config.eos_token_id
    assert cfg.pad_token_id == tok.pad_token_id == model.generation_config.pad_token_id
    assert tok.eos_token == "<|end|>" and tok.padding_side == "left"
    saved = json.loads((root / "model" / "train_report.json").read_text())
    assert saved["selected_step"] == report.selected_step and saved["steps"] == 120
    assert set(saved["selected"]["accuracy"]) == set(LANGS)
    assert not [p for p in (root).iterdir() if p.name.startswith(".model")]  # no half-written folder left


def test_chat_template_matches_training_encoding(trained):
    from transformers import AutoTokenizer

    root, _, check = trained
    tok = AutoTokenizer.from_pretrained(root / "model")
    row = check.filter(check["lang"] == "de").row(0, named=True)
    messages = [{"role": "system", "content": row["system"]}, {"role": "user", "content": row["prompt"]}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|system|> In just a few words") and text.endswith("<|assistant|> ")
    assert f"<|user|> {row['prompt']} <|end|>" in text
    assert not tok.apply_chat_template(messages, add_generation_prompt=False, tokenize=False).endswith("<|assistant|> ")
    answer = row["answers"][0]
    full = messages + [{"role": "assistant", "content": answer}]
    ids, labels = encode_conversation(tok, full)
    rendered = tok.encode(tok.apply_chat_template(full, tokenize=False), add_special_tokens=False)
    assert ids == rendered
    assert ids[: len(prompt_ids(tok, messages))] == prompt_ids(tok, messages)
    assert [t for t in labels if t != -100][-1] == tok.eos_token_id
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True).endswith(answer)


def test_teacher_forced_check_equals_greedy_generation(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, _, check = trained
    model = AutoModelForCausalLM.from_pretrained(root / "model").eval()
    tok = AutoTokenizer.from_pretrained(root / "model")
    encoded = encode_check(tok, check)
    verdict = teacher_forced_check(model, encoded, tok.pad_token_id)
    stopped = 0
    for item_id, lang, ids, labels in encoded:
        answer = [t for t in labels if t != -100]
        prompt = torch.tensor([ids[: len(ids) - len(answer)]])
        with torch.no_grad():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8)
        gen = out[0, prompt.shape[1] :].tolist()
        assert verdict[(item_id, lang)] == (gen == answer), (item_id, lang, gen, answer)
        if tok.eos_token_id in gen:
            assert gen.index(tok.eos_token_id) == len(gen) - 1  # generation stops at <|end|>
            stopped += 1
    assert stopped > 0
    # the short run learns something: the kept checkpoint answers some questions
    assert any(verdict.values())


def test_batched_generation_with_left_padding_stops(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, _, check = trained
    model = AutoModelForCausalLM.from_pretrained(root / "model").eval()
    tok = AutoTokenizer.from_pretrained(root / "model")
    rows = check.head(4).to_dicts()
    texts = [
        tok.apply_chat_template(
            [{"role": "system", "content": r["system"]}, {"role": "user", "content": r["prompt"]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for r in rows
    ]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=6)
    new = out[:, enc["input_ids"].shape[1] :]
    for row in new.tolist():
        if tok.eos_token_id in row:
            after = row[row.index(tok.eos_token_id) + 1 :]
            assert all(t == tok.pad_token_id for t in after)


def test_same_seed_same_weights(tmp_path, trained):
    root, _, check = trained
    world = build_world(LANGS, n_entities=20, seed=0)
    corpus = training_corpus(world, task_per_language=10)
    cfg = TrainConfig(steps=4, **{**TINY, "eval_every": 2})
    train(corpus, check, cfg, tmp_path / "a")
    train(corpus, check, cfg, tmp_path / "b")
    assert (tmp_path / "a/model.safetensors").read_bytes() == (tmp_path / "b/model.safetensors").read_bytes()


def test_selection_prefers_eligible_then_mixed():
    def r(step, en, mixed):
        return CheckResult(step=step, accuracy={"en": en}, mixed=mixed, all_correct=0.0, all_wrong=1 - mixed)

    assert better(r(1, 0.2, 0.1), None, 0.5)
    assert better(r(2, 0.6, 0.1), r(1, 0.2, 0.9), 0.5)
    assert not better(r(3, 0.2, 0.9), r(2, 0.6, 0.1), 0.5)
    assert better(r(4, 0.7, 0.3), r(2, 0.6, 0.1), 0.5)
    assert not better(r(5, 0.9, 0.2), r(4, 0.7, 0.3), 0.5)


def test_summarise_check_counts_outcomes():
    outcome = {
        ("a", "en"): True,
        ("a", "de"): True,
        ("b", "en"): True,
        ("b", "de"): False,
        ("c", "en"): False,
        ("c", "de"): False,
        ("d", "en"): True,
        ("d", "de"): False,
    }
    res = summarise_check(7, outcome)
    assert res.accuracy == {"en": 0.75, "de": 0.25}
    assert (res.all_correct, res.all_wrong, res.mixed) == (0.25, 0.25, 0.5)


def test_check_items_must_have_answers(tmp_path):
    world = build_world(LANGS, n_entities=20, seed=0)
    write_parquet(items(world, n_parallel=5)["demo_parallel"]["en"], tmp_path / "en.parquet")
    with pytest.raises(DatasetError, match="no answer"):
        load_check_items([tmp_path / "en.parquet"])
    with pytest.raises(DatasetError, match="no items files"):
        load_check_items([])


def test_tokenizer_keeps_invented_names_whole():
    tok = build_tokenizer(["Zorvath was born in Dulo Mirak .", "¿En qué ciudad nació Zorvath?"])
    ids = tok.encode("¿En qué ciudad nació Zorvath?", add_special_tokens=False)
    assert tok.unk_token_id not in ids
    assert tok.convert_ids_to_tokens(ids) == ["¿", "En", "qué", "ciudad", "nació", "Zorvath", "?"]


def test_default_world_has_no_unknown_words():
    from moe_routing.demo.world import template_texts
    from moe_routing.demo.train import corpus_texts

    world = build_world(n_entities=240, seed=0)
    tok = build_tokenizer(corpus_texts(training_corpus(world)) + template_texts())
    for dataset, per_lang in items(world).items():
        for lang, table in per_lang.items():
            for prompt in table.column("prompt").to_pylist():
                assert tok.unk_token_id not in tok.encode(prompt, add_special_tokens=False), (dataset, lang, prompt)
