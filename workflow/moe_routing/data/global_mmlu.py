"""Global-MMLU (Singh et al. 2025): MMLU in 42 languages, ``CohereLabs/Global-MMLU``.

One config per language code (``en``, ``ar``, ...), splits ``test`` (14,042) and ``dev`` (285);
rows have ``sample_id``, ``subject``, ``subject_category``, ``question``, ``option_a`` ...
``option_d``, ``answer`` (a letter) and annotation columns. item_id = ``sample_id``.

Two formats:
- ``format="short"`` (XICI): the prehistory questions as short-answer QA; the gold answer is
  the text of the correct option. The question subset comes from ``ids_file``, by default
  ``resources/global_mmlu_prehistory_ids.txt``. The XICI paper's 150-question list is not
  published, so that file lists no ids; an ids file that lists none (that one or any other given
  explicitly) means every question of the subjects.
- ``format="mc"`` (routing study): 0-shot multiple choice over the medical subjects; the
  prompt lists options A-D, ``choices`` holds them and the gold answer is the letter.
  ``style="harness"`` writes the prompt exactly as the LM Evaluation Harness's ``global_mmlu_full``
  tasks do ("{question}\nA. ...\nD. ...\nAnswer:"), for scoring by log-likelihood.

The medical subjects are those of the routing paper's public evaluation code (``language_evals/
task_evaluators.py``: clinical_knowledge, college_medicine, human_aging, medical_genetics,
nutrition, professional_medicine, virology). Its 420 questions are 60 per subject, the same in
every language: ``per_subject=60`` draws them by a seeded hash of ``sample_id`` (``seed``, default
0), identical across languages since ``sample_id`` is; ``sample_file`` instead takes the authors'
own draw, a JSON {subject: [row positions]} (their ``gmmlu_medical_samples_dict.json``: positions
in the subject's test rows in dataset order, as the harness's ``process_docs`` filter keeps them).

Published forms read (``FORMS``): the hub id; a copy of the hub repository (``{lang}/test-*.parquet``,
the release itself is Parquet); one JSON/JSONL/CSV/Parquet export of a language's split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import (
    MC_LETTERS,
    XICI_SYSTEM,
    Item,
    finalize,
    item_rank,
    mc_prompt,
    text,
)
from moe_routing.data.loading import load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError
from moe_routing.core.paths import GLOBAL_MMLU_IDS, repository_file

log = logging.getLogger(__name__)

NAME = "global_mmlu"
DEFAULT_PATH = "CohereLabs/Global-MMLU"
DEFAULT_SPLIT = "test"
FORMATS = ("short", "mc")
MEDICAL_SUBJECTS = (
    "clinical_knowledge",
    "college_medicine",
    "human_aging",
    "medical_genetics",
    "nutrition",
    "professional_medicine",
    "virology",
)
DEFAULT_SUBJECTS = {"short": ("prehistory",), "mc": MEDICAL_SUBJECTS}
DEFAULT_IDS_FILE = repository_file(GLOBAL_MMLU_IDS)
MC_INSTRUCTION = "Answer with the letter of the correct option."
OPTION_COLUMNS = ("option_a", "option_b", "option_c", "option_d")
STYLES = ("instruct", "harness")
FORMS = (
    "hub id CohereLabs/Global-MMLU",
    "a copy of the hub repository: {lang}/test-00000-of-00001.parquet, {lang}/dev-...",
    "one .json/.jsonl/.csv/.parquet export of one language's split",
)


def published_count(split: str | None, options: dict) -> int | None:
    """The items a configured per-subject draw gives: the routing paper's 420 = 60 x its 7 medical subjects."""
    per_subject = options.get("per_subject")
    if per_subject is None or options.get("sample_file"):
        return None
    fmt = options.get("format") or "mc"
    subjects = options.get("subjects") or DEFAULT_SUBJECTS.get(fmt, ())
    if isinstance(subjects, str):
        subjects = [s for s in subjects.split(",") if s.strip()]
    return int(per_subject) * len(subjects)


def _ids_file(fmt: str, ids_file: str | None) -> str | None:
    """The given ids file, else for the short format the shipped prehistory list."""
    if not ids_file and fmt == "short" and Path(DEFAULT_IDS_FILE).exists():
        return str(DEFAULT_IDS_FILE)
    return ids_file


def harness_prompt(question: str, options: list[str]) -> str:
    """lm-eval's global_mmlu_full doc_to_text."""
    return "\n".join([question] + [f"{MC_LETTERS[i]}. {o}" for i, o in enumerate(options)] + ["Answer:"])


def sample_rows(rows: list[dict], per_subject: int | None, sample_file: str | None, seed: int | None) -> list[dict]:
    """The rows of a per-subject sample: ``sample_file`` positions, or ``per_subject`` rows per subject
    by a seeded hash of ``sample_id`` (the same rows in every language)."""
    by_subject: dict[str, list[dict]] = {}
    for r in rows:
        by_subject.setdefault(text(r["subject"]), []).append(r)
    if sample_file:
        try:
            wanted = json.loads(Path(sample_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{sample_file}: cannot read the sample file ({exc})") from None
        if not isinstance(wanted, dict):
            raise DatasetError(f"{sample_file}: expected a JSON object {{subject: [row positions]}}")
        kept: set[int] = set()
        for subject, positions in wanted.items():
            pool = by_subject.get(subject)
            if pool is None:
                raise DatasetError(f"{sample_file}: subject {subject!r} is not among the loaded subjects {sorted(by_subject)}")
            bad = [p for p in positions if not (isinstance(p, int) and 0 <= p < len(pool))]
            if bad:
                raise DatasetError(
                    f"{sample_file}: subject {subject!r} has {len(pool)} rows; positions {bad[:5]} are out of range"
                )
            kept |= {id(pool[p]) for p in positions}
        return [r for r in rows if id(r) in kept]
    if per_subject is None:
        return rows
    if per_subject < 1:
        raise DatasetError(f"{NAME}: per_subject must be >= 1, got {per_subject}")
    chosen = set()
    for subject, pool in by_subject.items():
        if len(pool) < per_subject:
            raise DatasetError(f"{NAME}: subject {subject!r} has {len(pool)} questions, fewer than per_subject={per_subject}")
        ranked = sorted(pool, key=lambda r: item_rank(0 if seed is None else seed, text(r["sample_id"])))
        chosen |= {text(r["sample_id"]) for r in ranked[:per_subject]}
    return [r for r in rows if text(r["sample_id"]) in chosen]


def load(
    path: str,
    lang: str,
    opts: SourceOptions,
    *,
    format: str = "mc",
    subjects: str | list[str] | None = None,
    instruction: str = MC_INSTRUCTION,
    style: str = "instruct",
    per_subject: int | None = None,
    sample_file: str | None = None,
) -> pa.Table:
    """Items for one Global-MMLU language; ``subjects`` is a list or a comma-separated string."""
    reject_options(NAME, opts, "few_shot")
    if format not in FORMATS:
        raise DatasetError(f"{NAME}: format={format!r}; use one of {FORMATS}")
    if style not in STYLES:
        raise DatasetError(f"{NAME}: style={style!r}; use one of {STYLES}")
    if per_subject is not None and sample_file:
        raise DatasetError(f"{NAME}: give per_subject or sample_file, not both")
    code = lang_codes.normalise(lang)
    src = lang_codes.source_code(code, "global_mmlu", NAME)
    if isinstance(subjects, str):
        subjects = [s.strip() for s in subjects.split(",") if s.strip()]
    wanted = set(subjects or DEFAULT_SUBJECTS[format])

    ds = load_split(
        path, dataset=NAME, lang=code, forms=FORMS, columns=("sample_id", "question"), **opts.hub(DEFAULT_SPLIT, config=src)
    )
    cols = list(ds.column_names)
    require_columns(cols, ["sample_id", "subject", "question", *OPTION_COLUMNS, "answer"], dataset=NAME, lang=code, path=path)
    rows = [r for r in ds.to_list() if text(r["subject"]) in wanted]
    if not rows:
        raise DatasetError(f"{NAME} [{code}]: no rows of subject(s) {sorted(wanted)} in {path!r}")
    rows = sample_rows(rows, per_subject, sample_file, opts.seed)
    items = []
    for r in rows:
        item_id = text(r["sample_id"])
        letter = text(r["answer"]).upper()
        if letter not in ("A", "B", "C", "D"):
            raise DatasetError(f"{NAME} [{code}]: item {item_id!r}: column 'answer' is {r['answer']!r}, expected a letter A-D")
        options = [text(r[c]) for c in OPTION_COLUMNS]
        question = text(r["question"])
        if format == "short":
            gold = options["ABCD".index(letter)]
            items.append(Item(item_id, question, [gold] if gold else []))
        else:
            if not question:
                prompt = ""
            elif style == "harness":
                prompt = harness_prompt(question, options)
            else:
                prompt = mc_prompt(question, options, instruction)
            items.append(Item(item_id, prompt, [letter], options))
    # a per-subject draw already used the seed: the limit then keeps the first N
    opts = replace(opts, ids_file=_ids_file(format, opts.ids_file), seed=opts.seed if per_subject is None else None)
    default_system = XICI_SYSTEM if format == "short" else None
    return finalize(items, opts, dataset=NAME, lang=code, default_system=default_system, require_answers=True)
