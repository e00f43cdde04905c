"""The constructed demo model: a real Qwen3-MoE checkpoint whose routing and answers are the planted
truth's, decided with margins far above float32 rounding."""

from __future__ import annotations

import json

import pytest
import torch

from moe_routing.demo import model as dm
from moe_routing.demo import truth as dt
from moe_routing.demo.world import build_world, write_world, world_summary_path
from moe_routing.core.errors import DatasetError

LANGS = ("en", "de", "fr", "es", "it", "tr")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-model")
    world = build_world(LANGS, n_entities=20, seed=1)
    write_world(world, root / "data", root / "corpus.jsonl", n_parallel=8, n_task=6, n_bench=6)
    summary = dm.load_world(world_summary_path(root / "corpus.jsonl"))
    tables = dm.world_items(summary)
    cfg = dm.BuildConfig(seed=1, task_skilled=2)
    model, tokenizer, plan, layout = dm.build_model(summary, tables, cfg)
    margins, checks = dt.self_check(model, tokenizer, plan, tables, cfg.steering_strength)
    truth = dt.truth_dict(plan, summary)
    truth["margins"], truth["checks"] = margins, checks
    dm.save(model, tokenizer, {dt.TRUTH_FILE: json.dumps(truth)}, root / "model")
    return {"root": root, "summary": summary, "tables": tables, "plan": plan, "truth": truth, "margins": margins}


def test_every_decision_has_a_margin_far_above_float32_rounding(built):
    m = built["margins"]
    for key in ("router", "answer", "end", "steering", "evidence"):
        assert m[key] > 1.0, key
        assert m[key] > 1000 * m["float32_rounding"], key
    assert all(c["disagreements"] == 0 and c["prompts"] > 0 for c in built["truth"]["checks"].values())


def test_checkpoint_loads_like_a_hub_model_and_answers_as_planted(built):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = built["root"] / "model"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "qwen3_moe" and model.config.num_experts_per_tok == 1
    facts = built["tables"]["demo_facts"]
    plan = built["plan"]
    for frame in facts:
        row = frame.row(0, named=True)
        msgs = [{"role": "system", "content": row["system"]}, {"role": "user", "content": row["prompt"]}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
        text = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        known = row["lang"] in plan.known[row["item_id"]]
        assert text == (row["answers"][0] if known else dm.DONT_KNOW), (row["item_id"], row["lang"])


def test_truth_file_lists_what_was_planted(built):
    truth = json.loads((built["root"] / "model" / dt.TRUTH_FILE).read_text())
    plan = built["plan"]
    assert truth["schema_version"] == dt.SCHEMA_VERSION and truth["top_k"] == 1
    assert truth["divergence_profile"]["0"] == "language" and truth["divergence_profile"]["1"] == "shared"
    assert {r["lang"] for r in truth["language_experts"]} == set(LANGS)
    assert [r["layer"] for r in truth["task_experts"]] == plan.task_layers
    assert truth["task_skilled"] == ["en", "de", "fr"]
    fact = truth["facts"][0]
    slot_pairs = {(int(layer), e) for layer, es in fact["slot_experts"].items() for e in es}
    assert {tuple(p) for p in fact["experts"]} == slot_pairs
    assert all(layer in plan.middle for layer, _ in fact["experts"])
    assert all(e in plan.fact_pool for _, e in fact["experts"])


def test_same_world_same_weights(built):
    from transformers import AutoModelForCausalLM

    again = dm.build_model(built["summary"], built["tables"], dm.BuildConfig(seed=1, task_skilled=2))[0].state_dict()
    saved = AutoModelForCausalLM.from_pretrained(built["root"] / "model", dtype=torch.float32).state_dict()
    assert saved.keys() == again.keys() and all(torch.equal(saved[k], again[k]) for k in saved)


def test_world_without_a_word_of_its_own_language_is_refused():
    world = {"languages": ["en", "de"], "facts": [], "seed": 0}
    words = dm.world_words(world)
    assert words.lang_words and words.task_words
    with pytest.raises(DatasetError, match="at least 5 layers"):
        dm.make_plan(world, dm.BuildConfig(layers=4))
    with pytest.raises(DatasetError, match="task_layers"):
        dm.make_plan(world, dm.BuildConfig(task_layers=[0, 1]))
