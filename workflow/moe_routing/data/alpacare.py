"""AlpaCare-MedInstruct-52k (Zhang et al. 2023): the medical-domain set, English only.

``lavita/AlpaCare-MedInstruct-52k``, split ``train`` (52,002 rows), columns ``instruction``,
``input`` (often empty; absent in some copies) and ``output``. The prompt is the instruction,
followed by the input when there is one. No ids: item_id = ``alpacare-{row}``.
``with_answer=True`` keeps the reference response (``output``) as the item's ``assistant`` turn,
teacher-forced after the instruction (the routing paper's public code routes instruction + output).

Published forms read (``FORMS``): the hub id; a copy of the hub repository (``data/train-*.parquet``);
the authors' GitHub release (XZhang97666/AlpaCare: ``data/MedInstruct-52k.json``, a JSON list of
{instruction, input, output}; ``--path`` is the file, ``data/`` or the repository folder).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import Item, finalize, text
from moe_routing.data.loading import find_file, load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

NAME = "alpacare"
DEFAULT_PATH = "lavita/AlpaCare-MedInstruct-52k"
DEFAULT_SPLIT = "train"
RELEASE_FILE = "MedInstruct-52k.json"
PUBLISHED_COUNTS = {"train": 52002}
FORMS = (
    "hub id lavita/AlpaCare-MedInstruct-52k",
    "a copy of the hub repository (data/train-*.parquet)",
    f"the GitHub release {RELEASE_FILE} (the file, or the repository or data/ folder holding it)",
)
_NO_INPUT = {"<noinput>", "<no input>", "noinput", "n/a"}  # Alpaca-style placeholders for "no input"


def published_count(split: str | None, options: dict) -> int | None:
    """Items in the published split (None: not known)."""
    return PUBLISHED_COUNTS.get(split or DEFAULT_SPLIT)


def load(path: str, lang: str, opts: SourceOptions, *, with_answer: bool = False) -> pa.Table:
    """English instructions (the set has no other language)."""
    reject_options(NAME, opts, "few_shot")
    code = lang_codes.normalise(lang)
    if code != "en":
        raise DatasetError(f"{NAME}: language {code!r} is not available (the set is English only)")
    release = find_file(Path(path).expanduser(), [RELEASE_FILE, f"data/{RELEASE_FILE}"])
    ds = load_split(
        str(release or path), dataset=NAME, lang=code, forms=FORMS, columns=("instruction", "output"), **opts.hub(DEFAULT_SPLIT)
    )
    cols = list(ds.column_names)
    require_columns(cols, ["instruction", "output"], dataset=NAME, lang=code, path=path)
    has_input = "input" in cols
    items = []
    wanted = ["instruction"] + (["input"] if has_input else []) + (["output"] if with_answer else [])
    for i, r in enumerate(ds.select_columns(wanted).to_list()):
        instruction, extra = text(r["instruction"]), text(r["input"]) if has_input else ""
        if extra.casefold() in _NO_INPUT:
            extra = ""
        prompt = f"{instruction}\n\n{extra}" if instruction and extra else instruction
        items.append(Item(f"alpacare-{i}", prompt, [], assistant=text(r["output"]) or None if with_answer else None))
    return finalize(items, opts, dataset=NAME, lang=code)
