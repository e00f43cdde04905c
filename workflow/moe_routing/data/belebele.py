"""BELEBELE (Bandarkar et al. 2024): reading comprehension on FLORES passages, ``facebook/belebele``.

One config per FLORES-200 code (``eng_Latn``, ``zho_Hans``), split ``test`` (900 questions);
rows have ``link``, ``question_number``, ``flores_passage``, ``question``, ``mc_answer1`` ...
``mc_answer4``, ``correct_answer_num`` ('1'-'4'), ``dialect``, ``ds``.
item_id = ``{link}#{question_number}`` (a passage and its question, the same in every language).
The prompt is the passage, the question and the options A-D; the gold answer is the letter.
``style="harness"`` writes the prompt exactly as the LM Evaluation Harness's belebele tasks do
("P: {passage}\nQ: {question}\nA: ...\nD: ...\nAnswer:"), for scoring by log-likelihood.
"""

from __future__ import annotations

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import MC_LETTERS, Item, finalize, mc_prompt, text
from moe_routing.data.loading import load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

NAME = "belebele"
DEFAULT_PATH = "facebook/belebele"
DEFAULT_SPLIT = "test"
INSTRUCTION = "Answer with the letter of the correct option."
ANSWER_COLUMNS = ("mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4")
STYLES = ("instruct", "harness")


def harness_prompt(passage: str, question: str, options: list[str]) -> str:
    """lm-eval's belebele doc_to_text."""
    return "\n".join([f"P: {passage}", f"Q: {question}"] + [f"{MC_LETTERS[i]}: {o}" for i, o in enumerate(options)] + ["Answer:"])


def load(path: str, lang: str, opts: SourceOptions, *, instruction: str = INSTRUCTION, style: str = "instruct") -> pa.Table:
    """0-shot multiple-choice items for one BELEBELE language."""
    reject_options(NAME, opts, "few_shot")
    if style not in STYLES:
        raise DatasetError(f"{NAME}: style={style!r}; use one of {STYLES}")
    code = lang_codes.normalise(lang)
    src = lang_codes.source_code(code, "belebele", NAME)
    ds = load_split(path, dataset=NAME, lang=code, **opts.hub(DEFAULT_SPLIT, config=src))
    cols = list(ds.column_names)
    require_columns(
        cols,
        ["link", "question_number", "flores_passage", "question", *ANSWER_COLUMNS, "correct_answer_num"],
        dataset=NAME,
        lang=code,
        path=path,
    )
    rows = ds.to_list()
    if "dialect" in cols:  # a file holding several languages: keep this one
        rows = [r for r in rows if not text(r["dialect"]) or text(r["dialect"]) == src]
    items = []
    for r in rows:
        item_id = f"{text(r['link'])}#{text(r['question_number'])}"
        num = text(r["correct_answer_num"])
        if num not in ("1", "2", "3", "4"):
            raise DatasetError(f"{NAME} [{code}]: item {item_id!r}: column 'correct_answer_num' is {num!r}, expected 1-4")
        options = [text(r[c]) for c in ANSWER_COLUMNS]
        passage, question = text(r["flores_passage"]), text(r["question"])
        if not (passage and question):
            prompt = ""
        elif style == "harness":
            prompt = harness_prompt(passage, question, options)
        else:
            prompt = mc_prompt(f"{passage}\n\n{question}", options, instruction)
        items.append(Item(item_id, prompt, [MC_LETTERS[int(num) - 1]], options))
    return finalize(items, opts, dataset=NAME, lang=code, require_answers=True)
