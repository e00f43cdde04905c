"""GPT-OSS (harmony format): low reasoning and a fixed date in the prompt, the answer from the final channel."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from moe_routing.capture.adapters import ADAPTERS
from moe_routing.capture.adapters.topk_softmax import harmony_final
from moe_routing.capture.backends import GenerationOptions, generations_table, render_prompt
from moe_routing.rehearsal.stand_ins import build_stand_in_tokenizer, get

GPT_OSS = ADAPTERS["gpt_oss"]


@pytest.fixture(scope="module")
def tok():
    return build_stand_in_tokenizer(get("openai/gpt-oss-20b"))


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


ANSWERED = (
    "<|channel|>analysis<|message|>The user asks who wrote it. Answer: Ada.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Ada Lovelace<|return|>"
)


@pytest.mark.parametrize(
    "text, answer",
    [
        (ANSWERED, "Ada Lovelace"),
        # max_new_tokens ran out inside the reasoning: no answer, not the reasoning's guess
        ("<|channel|>analysis<|message|>The user asks who wrote it. Answer: Ada", ""),
        ("<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>B", "B"),
        ('<|channel|>final <|constrain|>json<|message|>{"a": 1}<|return|>', '{"a": 1}'),
        ("<|channel|>final<|message|>first<|end|><|start|>assistant<|channel|>final<|message|> second <|return|>", "second"),
        ("<|channel|>commentary to=functions.f<|message|>{}<|call|>", ""),
    ],
)
def test_final_channel(text, answer):
    assert harmony_final(text) == answer


def test_output_without_channel_markers_is_taken_whole(tok):
    assert harmony_final("just text") is None
    assert GPT_OSS.answer_text(tok, ids(tok, "Paris<|return|>")) == "Paris"


def test_answer_text_reads_token_ids(tok):
    assert GPT_OSS.answer_text(tok, ids(tok, ANSWERED)) == "Ada Lovelace"
    assert GPT_OSS.answer_text(tok, ids(tok, "<|channel|>analysis<|message|>Hmm, B or")) == ""
    # other families: the decoded text without special tokens
    assert ADAPTERS["qwen3_moe"].answer_text(tok, ids(tok, "Paris<|return|>")) == "Paris"


def test_prompt_asks_for_low_reasoning_on_a_fixed_date(tok):
    plain = tok.decode(render_prompt(tok, "Who?", "Answer briefly.", GenerationOptions()))
    ours = tok.decode(render_prompt(tok, "Who?", "Answer briefly.", GenerationOptions(), adapter=GPT_OSS))
    assert "Reasoning: medium" in plain and "Reasoning: low" in ours
    # only those two lines differ from the template's defaults (today's date, medium reasoning)
    pinned = re.sub(r"Current date: \d{4}-\d{2}-\d{2}", "Current date: 2025-08-05", plain)
    assert ours == pinned.replace("Reasoning: medium", "Reasoning: low")
    assert ADAPTERS["qwen3_moe"].chat_template_kwargs() == {}


def test_generations_keep_every_token_and_answer_from_the_final_channel(tok):
    out = ids(tok, ANSWERED)
    rows = [{"item_id": "q1", "lang": "en"}]
    table = generations_table(tok, rows, [[1, 2]], [out], None, {}, GPT_OSS)
    assert table.column("output").to_pylist() == ["Ada Lovelace"]
    assert table.column("output_token_ids").to_pylist() == [out]
    assert isinstance(table, pa.Table)
    neutral = generations_table(tok, rows, [[1, 2]], [out], None, {})
    assert neutral.column("output").to_pylist()[0].startswith("analysisThe user asks")
