"""Global-MMLU (Singh et al. 2025): MMLU in 42 languages, ``CohereLabs/Global-MMLU``.

One config per language code (``en``, ``ar``, ...), splits ``test`` (14,042) and ``dev`` (285);
rows have ``sample_id``, ``subject``, ``subject_category``, ``question``, ``option_a`` ...
``option_d``, ``answer`` (a letter) and annotation columns. item_id = ``sample_id``.

Two formats:
- ``format="short"`` (XICI): the prehistory questions as short-answer QA; the gold answer is
  the text of the correct option. The question subset comes from ``ids_file``, by default
  ``resources/global_mmlu_prehistory_ids.txt``; when that file is absent or lists no ids, all
  questions of the subjects are used.
- ``format="mc"`` (routing study): 0-shot multiple choice over the medical subjects; the
  prompt lists options A-D, ``choices`` holds them and the gold answer is the letter.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import (
    XICI_SYSTEM,
    Item,
    finalize,
    mc_prompt,
    read_ids_file,
    reject_options,
    resolve_system,
    text,
)
from moe_routing.data.loading import load_split, require_columns
from moe_routing.errors import DatasetError

log = logging.getLogger(__name__)

NAME = "global_mmlu"
DEFAULT_PATH = "CohereLabs/Global-MMLU"
DEFAULT_SPLIT = "test"
FORMATS = ("short", "mc")
MEDICAL_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
    "nutrition",
    "virology",
)
DEFAULT_SUBJECTS = {"short": ("prehistory",), "mc": MEDICAL_SUBJECTS}
DEFAULT_IDS_FILE = lang_codes.REPO_ROOT / "resources" / "global_mmlu_prehistory_ids.txt"
MC_INSTRUCTION = "Answer with the letter of the correct option."
OPTION_COLUMNS = ("option_a", "option_b", "option_c", "option_d")
OPTIONS: dict[str, type] = {"format": str, "subjects": str, "instruction": str}


def _ids_for(fmt: str, ids_file: str | None) -> list[str] | None:
    if ids_file:
        return read_ids_file(ids_file)
    if fmt == "short" and Path(DEFAULT_IDS_FILE).exists():
        ids = read_ids_file(DEFAULT_IDS_FILE)
        if ids:
            return ids
        log.warning("%s: %s lists no ids; using every question of the subjects", NAME, DEFAULT_IDS_FILE)
    return None


def load(
    path: str,
    lang: str,
    *,
    split: str | None = None,
    config: str | None = None,
    ids_file: str | None = None,
    limit: int | None = None,
    system: str | None = None,
    few_shot: int | None = None,
    seed: int | None = None,
    missing: str = "error",
    revision: str | None = None,
    cache_dir: str | None = None,
    format: str = "mc",
    subjects: str | list[str] | None = None,
    instruction: str = MC_INSTRUCTION,
) -> pa.Table:
    """Items for one Global-MMLU language; ``subjects`` is a list or a comma-separated string."""
    reject_options(NAME, few_shot=few_shot)
    if format not in FORMATS:
        raise DatasetError(f"{NAME}: format={format!r}; use one of {FORMATS}")
    code = lang_codes.normalise(lang)
    src = lang_codes.source_code(code, "global_mmlu", NAME)
    if isinstance(subjects, str):
        subjects = [s.strip() for s in subjects.split(",") if s.strip()]
    wanted = set(subjects or DEFAULT_SUBJECTS[format])

    ds = load_split(path, dataset=NAME, lang=code, config=config or src, split=split or DEFAULT_SPLIT, revision=revision, cache_dir=cache_dir)
    cols = list(ds.column_names)
    require_columns(cols, ["sample_id", "subject", "question", *OPTION_COLUMNS, "answer"], dataset=NAME, lang=code, path=path)
    rows = [r for r in ds.to_list() if text(r["subject"]) in wanted]
    if not rows:
        raise DatasetError(f"{NAME} [{code}]: no rows of subject(s) {sorted(wanted)} in {path!r}")
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
            prompt = mc_prompt(question, options, instruction) if question else ""
            items.append(Item(item_id, prompt, [letter], options))
    default_system = XICI_SYSTEM if format == "short" else None
    return finalize(
        items, dataset=NAME, lang=code, system=resolve_system(system, default_system),
        ids=_ids_for(format, ids_file), limit=limit, seed=seed, missing=missing, require_answers=True,
    )
