"""BELEBELE (Bandarkar et al. 2024): reading comprehension on FLORES passages, ``facebook/belebele``.

One config per FLORES-200 code (``eng_Latn``, ``zho_Hans``), split ``test`` (900 questions);
rows have ``link``, ``question_number``, ``flores_passage``, ``question``, ``mc_answer1`` ...
``mc_answer4``, ``correct_answer_num`` ('1'-'4'), ``dialect``, ``ds``.
item_id = ``{link}#{question_number}`` (a passage and its question, the same in every language).
The prompt is the passage, the question and the options A-D; the gold answer is the letter.
``style="harness"`` writes the prompt exactly as the LM Evaluation Harness's belebele tasks do
("P: {passage}\nQ: {question}\nA: ...\nD: ...\nAnswer:"), for scoring by log-likelihood.

Published forms read (``FORMS``): the hub id; a copy of the hub repository (``data/{code}.jsonl`` with
README configs) or its Parquet export (``{code}/test/0000.parquet``); the release zip
(``Belebele.zip`` from dl.fbaipublicfiles.com, unpacked to ``Belebele/{code}.jsonl``; ``--path`` is that
folder or its parent); one ``{code}.jsonl`` file (rows of other dialects in it are dropped).
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import MC_LETTERS, Item, finalize, mc_prompt, text
from moe_routing.data.loading import readme_configs, find_file, load_file, load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

NAME = "belebele"
DEFAULT_PATH = "facebook/belebele"
DEFAULT_SPLIT = "test"
INSTRUCTION = "Answer with the letter of the correct option."
ANSWER_COLUMNS = ("mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4")
STYLES = ("instruct", "harness")
PUBLISHED_COUNTS = {"test": 900}
FORMS = (
    "hub id facebook/belebele",
    "a copy of the hub repository (data/{code}.jsonl, README configs) or its Parquet export ({code}/test/0000.parquet)",
    "the release zip unpacked: Belebele/{code}.jsonl (path: that folder or its parent)",
    "a single {code}.jsonl",
)
_RELEASE_NAME = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}\.jsonl$")


def published_count(split: str | None, options: dict) -> int | None:
    """Items in the published split (None: not known)."""
    return PUBLISHED_COUNTS.get(split or DEFAULT_SPLIT)


def _release_file(path: str, src: str, code: str) -> Path | None:
    """The language's ``{code}.jsonl`` in a release folder (``Belebele/``) or a hub copy's ``data/``."""
    p = Path(path).expanduser()
    folders = ["", "Belebele/", "data/"]
    found = find_file(p, [f"{d}{src}.jsonl" for d in folders])
    if found is not None or readme_configs(p):
        return found  # a hub copy without the file: its README configs say which languages it has
    others = sorted(f.stem for d in folders if (p / d).is_dir() for f in (p / d).iterdir() if _RELEASE_NAME.match(f.name))
    if others:
        raise DatasetError(
            f"{NAME} [{code}]: {path!r} holds BELEBELE release files but no {src}.jsonl, i.e. the language is missing; "
            f"it has {len(others)} languages, e.g. {others[:5]}"
        )
    return None


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
    release = _release_file(path, src, code)
    if release is not None:
        ds = load_file(release, "json", dataset=NAME, lang=code, cache_dir=opts.cache_dir)
    else:
        ds = load_split(
            path,
            dataset=NAME,
            lang=code,
            forms=FORMS,
            columns=("flores_passage", "question"),
            **opts.hub(DEFAULT_SPLIT, config=src),
        )
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
