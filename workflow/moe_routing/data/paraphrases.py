"""English paraphrases in place of languages (XICI paper, Table 3).

A user-supplied local file (Parquet, JSON Lines or CSV/TSV, read through `datasets`) with one
row per (question, paraphrase): ``item_id`` (the same for every paraphrase of a question),
``paraphrase_id`` (e.g. ``p0``…``p9``; these play the role of languages), ``question`` and
``answers`` (a list, or one string with answers separated by ``|``). The workflow's "language"
of each items file is a paraphrase id, so every XICI stage runs unchanged.
"""

from __future__ import annotations

import pyarrow as pa

from moe_routing.data.items import XICI_SYSTEM, Item, finalize, text
from moe_routing.data.loading import load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

NAME = "paraphrases"
DEFAULT_PATH = None  # there is no hub copy: the file is the user's
DEFAULT_SPLIT = "train"


def _answers(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [text(v) for v in value if text(v)]
    return [a.strip() for a in text(value).split("|") if a.strip()]


def load(path: str, lang: str, opts: SourceOptions) -> pa.Table:
    """Items of one paraphrase id (``lang``)."""
    reject_options(NAME, opts, "few_shot")
    if not path:
        raise DatasetError(f"{NAME}: set the dataset's path to your paraphrase file (item_id, paraphrase_id, question, answers)")
    ds = load_split(path, dataset=NAME, lang=lang, **opts.hub(DEFAULT_SPLIT))
    require_columns(
        list(ds.column_names), ["item_id", "paraphrase_id", "question", "answers"], dataset=NAME, lang=lang, path=path
    )
    rows = [r for r in ds.to_list() if text(r["paraphrase_id"]) == lang]
    if not rows:
        known = sorted({text(v) for v in ds["paraphrase_id"]})
        raise DatasetError(f"{NAME}: {path} has no rows with paraphrase_id {lang!r}; it has {known}")
    items = [Item(text(r["item_id"]), text(r["question"]), _answers(r["answers"])) for r in rows]
    return finalize(items, opts, dataset=NAME, lang=lang, default_system=XICI_SYSTEM, require_answers=True)
