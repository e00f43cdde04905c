"""top-k -> softmax routers: GPT-OSS (biased router logits), Granite-MoE; softmax over the k selected logits.

GPT-OSS (``Family.harmony``) also speaks the harmony format, which this adapter owns:

- **Prompt.** The chat template ignores ``enable_thinking``; its system message sets
  ``Reasoning: medium`` unless the ``reasoning_effort`` variable says otherwise. Both studies ask
  for short answers with thinking off, so the adapter passes ``reasoning_effort="low"``, the
  least the model knows. The template also writes ``Current date: <today>`` into every prompt,
  which would make the prompt tokens, and so the routing, depend on the day a job runs (a rerun
  of one language, or a steered rerun compared with its base run, could see another date); the
  adapter pins the date to the model's release day, ``TEMPLATE_DATE``.
- **Answer.** The model writes ``<|channel|>analysis<|message|>…<|end|>`` before
  ``<|start|>assistant<|channel|>final<|message|>…<|return|>``. The answer the judges see is the
  text of the last final-channel message; output cut off before the final channel has no
  answer (empty text, so it is judged wrong, not read from the reasoning); output with no
  channel markers at all is taken whole.
- **Routing.** Every generated token counts, analysis included: METHOD defines a sequence as the
  prompt plus the generated output, i.e. everything that passed through the router, and the
  routing summaries average the router over exactly those tokens. The analysis tokens are the
  model computing its answer in this format; leaving them out would describe only the few tokens
  that restate it, and a deactivated expert is deactivated for every token (analysis included),
  so capture and interventions cover the same tokens. ``output_token_ids`` keeps all of them.
"""

from __future__ import annotations

import re
from datetime import datetime

import torch

from moe_routing.capture.adapters.base import Adapter, RouteResult, RouterSpec, RowPlan, apply_logit_interventions

REASONING_EFFORT = "low"
TEMPLATE_DATE = datetime(2025, 8, 5)  # gpt-oss release
_MESSAGE = re.compile(
    r"<\|channel\|>\s*(?P<channel>\w+)[^<]*(?:<\|constrain\|>[^<]*)?<\|message\|>"
    r"(?P<content>.*?)(?=<\|end\|>|<\|return\|>|<\|call\|>|<\|start\|>|<\|channel\|>|$)",
    re.DOTALL,
)


def template_date(fmt: str) -> str:
    """``strftime_now`` for the chat template, answering with ``TEMPLATE_DATE``."""
    return TEMPLATE_DATE.strftime(fmt)


def harmony_final(text: str) -> str | None:
    """The last final-channel message of harmony-format output (special tokens kept in ``text``).

    ``""`` when the output has channel markers but no final message (cut off while reasoning);
    None when it has no channel markers at all (not harmony output).
    """
    if "<|channel|>" not in text and "<|message|>" not in text:
        return None
    finals = [m.group("content") for m in _MESSAGE.finditer(text) if m.group("channel") == "final"]
    return finals[-1].strip() if finals else ""


class TopKSoftmaxAdapter(Adapter):
    kind = "topk_softmax"

    def route(self, logits, spec: RouterSpec, bias=None, rows: RowPlan | None = None) -> RouteResult:
        # the router's own bias is already inside the logits (F.linear with bias)
        z = logits if rows is None else apply_logit_interventions(logits, rows)
        top_value, indices = torch.topk(z, spec.top_k, dim=-1)
        weights = torch.nn.functional.softmax(top_value, dim=1, dtype=top_value.dtype)
        return RouteResult(logits=z, indices=indices, weights=weights)

    def chat_template_kwargs(self) -> dict:
        if not self.family.harmony:
            return {}
        return {"reasoning_effort": REASONING_EFFORT, "strftime_now": template_date}

    def answer_text(self, tokenizer, output_ids: list[int]) -> str:
        if not self.family.harmony:
            return super().answer_text(tokenizer, output_ids)
        final = harmony_final(tokenizer.decode(output_ids, skip_special_tokens=False))
        return tokenizer.decode(output_ids, skip_special_tokens=True) if final is None else final
