"""Prompt rendering shared by the backends: generation prompt, teacher-forced assistant turns, the
content mask of token scope "content", and multiple-choice requests the LM Evaluation Harness way."""

from __future__ import annotations

import polars as pl
import pytest
from moe_routing.capture.backends import (
    ASSISTANT_TURN,
    CONTENT_SCOPE,
    GenerationOptions,
    check_request,
    choice_requests,
    render,
    render_prompt,
)
from moe_routing.core.errors import ConfigError
from moe_routing.rehearsal.tiny_models import build_tokenizer

# Qwen3's ways with the last assistant turn: an empty think block before it, its leading newlines
# stripped; the user turn trimmed (the demo template's `| trim`)
QWEN3_LIKE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + m['content'].lstrip('\\n') + '<|im_end|>\\n' }}"
    "{%- else -%}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] | trim + '<|im_end|>\\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' }}{%- endif -%}"
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(["The river Quell runs through the old town. Answer: A B C D"] * 3, vocab_size=300)


def decode_content(tok, rendered):
    return tok.decode([t for t, c in zip(rendered.ids, rendered.content) if c])


def test_generation_prompt_only_when_generating(tok):
    gen = tok.decode(render_prompt(tok, "Hi", None, GenerationOptions(max_new_tokens=8)))
    prefill = tok.decode(render_prompt(tok, "Hi", None, GenerationOptions(max_new_tokens=0)))
    assert gen == prefill + "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert prefill == "<|im_start|>user\nHi<|im_end|>\n"
    forced = tok.decode(render_prompt(tok, "Hi", None, GenerationOptions(max_new_tokens=0, generation_prompt=True)))
    assert forced == gen
    assert tok.decode(render_prompt(tok, "Hi", None, GenerationOptions(max_new_tokens=8, generation_prompt=False))) == prefill


def test_assistant_turn_is_teacher_forced_without_a_generation_prompt(tok):
    text = tok.decode(
        render_prompt(tok, "2+2?", "Be brief.", GenerationOptions(max_new_tokens=0, generation_prompt=True), "It is 4.")
    )
    assert (
        text
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\nIt is 4.<|im_end|>\n"
    )
    plain = tok.decode(render_prompt(tok, "2+2?", None, GenerationOptions(use_chat_template=False), "It is 4."))
    assert plain == "2+2?\n\nIt is 4."


@pytest.mark.parametrize("template", ["tiny", "qwen3_like", "plain"])
def test_content_mask_covers_the_item_text_exactly(tok, template):
    opts = GenerationOptions(max_new_tokens=0, token_scope="content", use_chat_template=template != "plain")
    saved = tok.chat_template
    tok.chat_template = QWEN3_LIKE if template == "qwen3_like" else saved
    try:
        # the system text repeats the prompt: its copy must not be taken for the item's
        r = render(tok, "The river Quell runs.", "The river Quell runs.", opts)
        assert decode_content(tok, r) == "The river Quell runs."
        # the scope changes which tokens count, never the tokens
        assert r.ids == render_prompt(
            tok,
            "The river Quell runs.",
            "The river Quell runs.",
            GenerationOptions(max_new_tokens=0, use_chat_template=template != "plain"),
        )
        if template != "plain":
            assert not r.content[0] and not r.content[-1]  # <|im_start|>, the last newline
        r = render(tok, "  The river?  ", None, opts, assistant="\n\nIt runs through the old town.")
        assert decode_content(tok, r).split() == ["The", "river?", "It", "runs", "through", "the", "old", "town."]
    finally:
        tok.chat_template = saved


def test_content_scope_fails_clearly_when_the_template_rewrites_the_text(tok):
    saved, tok.chat_template = tok.chat_template, "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"
    try:
        with pytest.raises(ConfigError, match="changes the item text"):
            render(tok, "quiet words", None, GenerationOptions(max_new_tokens=0, token_scope="content"))
    finally:
        tok.chat_template = saved


def test_choice_requests_the_harness_way(tok):
    plain = GenerationOptions(use_chat_template=False)
    ctx, conts = choice_requests(tok, "Question?\nA. x\nB. y\nAnswer:", None, 2, plain)
    assert tok.decode(ctx.ids) == "Question?\nA. x\nB. y\nAnswer:"
    # target delimiter " ": the continuation is the tail of the whole text's ids after the context's
    assert [tok.decode(c) for c in conts] == [" A", " B"]
    whole = tok("Question?\nA. x\nB. y\nAnswer: B")["input_ids"]
    assert ctx.ids + conts[1] == whole
    # after a chat template: no delimiter, the generation prompt's trailing whitespace moves to the continuation
    ctx, conts = choice_requests(tok, "Question?", None, 4, GenerationOptions(max_new_tokens=0))
    assert tok.decode(ctx.ids).endswith("<|im_start|>assistant\n<think>\n\n</think>")
    assert [tok.decode(c) for c in conts] == ["\n\nA", "\n\nB", "\n\nC", "\n\nD"]
    # no generation prompt when asked: the letter follows the user turn
    ctx, _ = choice_requests(tok, "Question?", None, 2, GenerationOptions(generation_prompt=False))
    assert tok.decode(ctx.ids) == "<|im_start|>user\nQuestion?<|im_end|>"
    ctx, _ = choice_requests(tok, "Question?", "Sys", 2, GenerationOptions(use_chat_template=False, token_scope="content"))
    assert decode_content(tok, ctx) == "Question?"


def test_check_request_gates_content_scope_and_assistant_turns():
    items = pl.DataFrame(
        {"item_id": ["a", "b"], "lang": ["en", "en"], "prompt": ["q", "r"], "system": [None, None], "assistant": [None, "answer"]}
    )
    everything = frozenset({CONTENT_SCOPE, ASSISTANT_TURN})
    # a backend that does not declare them (the vLLM backend today) refuses rather than ignores them
    with pytest.raises(ConfigError, match="does not implement token_scope 'content'"):
        check_request(items[:1], None, GenerationOptions(max_new_tokens=0, token_scope="content"), [0], 4)
    with pytest.raises(ConfigError, match="assistant turn .* does not render"):
        check_request(items, None, GenerationOptions(max_new_tokens=0), [0], 4)
    with pytest.raises(ConfigError, match="prefill only"):
        check_request(items, None, GenerationOptions(max_new_tokens=4), [0], 4, features=everything)
    with pytest.raises(ConfigError, match="token_scope must be one of"):
        check_request(items, None, GenerationOptions(token_scope="words"), [0], 4, features=everything)
    opts, _ = check_request(items, None, GenerationOptions(max_new_tokens=0, token_scope="content"), [0], 4, features=everything)
    assert opts.token_scope == "content"
    check_request(items[:1], None, GenerationOptions(max_new_tokens=4), [0], 4)  # a null assistant is no turn
