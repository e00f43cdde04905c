"""MGSM (Shi et al. 2023): 250 grade-school math problems in 11 languages, ``juletxara/mgsm``.

One config per language (bn de en es fr ja ru sw te th zh); split ``test`` (250, ``answer`` is
null) and ``train`` (8 exemplars with a worked ``answer``); columns ``question``, ``answer``,
``answer_number``, ``equation_solution``. The hub repo is a loading script; the loader falls
back to its Parquet export (see loading.py).

Prompts are k-shot (paper: 2-shot) in the style of lm-eval's native-CoT MGSM: the first k
train exemplars of the same language, each ``{question}\\n{answer}`` as stored (they carry the
language's own "Question:" and "Step-by-Step Answer:" labels), then the test question under the
same two labels. The gold answer is ``answer_number``. item_id = ``test-{row}`` (the test
split is row-aligned across languages).
"""

from __future__ import annotations

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import Item, finalize, text
from moe_routing.data.loading import load_split, require_columns
from moe_routing.data.options import SourceOptions
from moe_routing.core.errors import DatasetError

NAME = "mgsm"
DEFAULT_PATH = "juletxara/mgsm"
DEFAULT_SPLIT = "test"
EXEMPLAR_SPLIT = "train"
DEFAULT_FEW_SHOT = 2


def label(s: str) -> str:
    """The leading "Xxx:" label of an exemplar field ('' if it has none)."""
    for colon in (":", "："):
        head, sep, _ = s.partition(colon)
        if sep and 0 < len(head) <= 40 and "\n" not in head:
            return head + sep
    return ""


def format_number(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return text(value)


def build_prompt(question: str, exemplars: list[dict]) -> str:
    if not exemplars:
        return question
    q_label, a_label = label(text(exemplars[0]["question"])), label(text(exemplars[0]["answer"]))
    shots = [f"{text(e['question'])}\n{text(e['answer'])}" for e in exemplars]
    head = f"{q_label} {question}" if q_label else question
    return "\n\n".join(shots + [f"{head}\n{a_label}".rstrip()])


def load(path: str, lang: str, opts: SourceOptions) -> pa.Table:
    """k-shot items for one MGSM language (``few_shot`` defaults to the paper's 2)."""
    code = lang_codes.normalise(lang)
    src = lang_codes.source_code(code, "mgsm", NAME)
    k = DEFAULT_FEW_SHOT if opts.few_shot is None else int(opts.few_shot)
    if k < 0:
        raise DatasetError(f"{NAME}: few_shot must be >= 0, got {k}")
    hub = opts.hub(DEFAULT_SPLIT, config=src)
    test = load_split(path, dataset=NAME, lang=code, **hub)
    require_columns(list(test.column_names), ["question", "answer_number"], dataset=NAME, lang=code, path=path)
    exemplars: list[dict] = []
    if k:
        train = load_split(path, dataset=NAME, lang=code, **{**hub, "split": EXEMPLAR_SPLIT})
        require_columns(list(train.column_names), ["question", "answer"], dataset=NAME, lang=code, path=path)
        exemplars = train.select_columns(["question", "answer"]).to_list()[:k]
        if len(exemplars) < k or any(not text(e["question"]) or not text(e["answer"]) for e in exemplars):
            raise DatasetError(
                f"{NAME} [{code}]: {k}-shot needs {k} exemplars with 'question' and 'answer' in split {EXEMPLAR_SPLIT!r}"
            )
    items = []
    for i, r in enumerate(test.select_columns(["question", "answer_number"]).to_list()):
        question = text(r["question"])
        gold = format_number(r["answer_number"])
        items.append(Item(f"test-{i}", build_prompt(question, exemplars) if question else "", [gold] if gold else []))
    return finalize(items, opts, dataset=NAME, lang=code, require_answers=True)
