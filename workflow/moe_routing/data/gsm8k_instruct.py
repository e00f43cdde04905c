"""GSM8K-Instruct, parallel (MathOctopus): the math-domain set for task-expert specialisation.

``Mathoctopus/GSM8KInstruct_Parallel`` is one JSON file (``MGSM8KInstruct_Parallel.json``,
split ``train``, ~73.6k rows over 10 languages) with columns ``prompt`` and ``chosen``. The
language is only inside ``prompt``, in the MathOctopus template:
"Below is an instruction that describes a task. Write a response that appropriately completes
the request in {Language}. Please answer in {Language}.\\n\\n### Instruction:\\n{question}\\n\\n### Response:".

The item prompt is the question alone (``strip_template=False`` keeps the whole template).
``with_answer=True`` keeps the reference solution (``chosen``) as the item's ``assistant`` turn,
teacher-forced after the question (routing of the math domain: the routing paper's public code
routes question + solution).
There are no ids: item_id = ``gsm8k-{n}``, n the row's position among this language's rows
(rows of different languages are not aligned; the paper uses the English rows).

Published forms read (``FORMS``): the hub id; a copy of the hub repository or a folder holding
``MGSM8KInstruct_Parallel.json``; that JSON file itself; the hub's Parquet export.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import Item, finalize, text
from moe_routing.data.loading import find_file, load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

log = logging.getLogger(__name__)

NAME = "gsm8k_instruct"
DEFAULT_PATH = "Mathoctopus/GSM8KInstruct_Parallel"
DEFAULT_SPLIT = "train"
RELEASE_FILE = "MGSM8KInstruct_Parallel.json"
FORMS = (
    "hub id Mathoctopus/GSM8KInstruct_Parallel",
    f"{RELEASE_FILE} (the file, or a copy of the hub repository holding it)",
    "the hub's Parquet export (default/train/0000.parquet)",
)

_LANG_RE = re.compile(r"(?:Please answer in|completes the request in)\s+([A-Za-z]+)")
_QUESTION_RE = re.compile(r"###\s*Instruction:\s*(.*?)\s*###\s*Response:", re.S)


def prompt_language(prompt: str) -> str | None:
    """The language name the MathOctopus template asks for, or None."""
    m = _LANG_RE.search(prompt)
    return m.group(1) if m else None


def prompt_question(prompt: str) -> str:
    m = _QUESTION_RE.search(prompt)
    return m.group(1).strip() if m else prompt.strip()


def load(path: str, lang: str, opts: SourceOptions, *, strip_template: bool = True, with_answer: bool = False) -> pa.Table:
    """Questions of one language, found by the language named in each row's ``prompt``."""
    reject_options(NAME, opts, "few_shot")
    code = lang_codes.normalise(lang)
    lang_codes.source_code(code, "gsm8k_instruct", NAME)  # fails clearly for a language the set lacks
    release = find_file(Path(path).expanduser(), [RELEASE_FILE])
    ds = load_split(str(release or path), dataset=NAME, lang=code, forms=FORMS, columns=("prompt",), **opts.hub(DEFAULT_SPLIT))
    require_columns(list(ds.column_names), ["prompt"] + (["chosen"] if with_answer else []), dataset=NAME, lang=code, path=path)
    items: list[Item] = []
    unknown = 0
    answers = ds["chosen"] if with_answer else [None] * len(ds)
    for prompt, answer in zip(ds["prompt"], answers):
        prompt = text(prompt)
        name = prompt_language(prompt)
        found = lang_codes.try_normalise(name) if name else None
        if found is None:
            unknown += 1
            continue
        if found == code:
            question = prompt_question(prompt) if strip_template else prompt
            items.append(Item(f"gsm8k-{len(items)}", question, [], assistant=text(answer) or None))
    if unknown:
        log.warning("%s: %d row(s) name no known language in 'prompt' and were skipped", NAME, unknown)
    if not items:
        raise DatasetError(f"{NAME} [{code}]: no row of {path!r} asks for this language in column 'prompt'")
    return finalize(items, opts, dataset=NAME, lang=code)
