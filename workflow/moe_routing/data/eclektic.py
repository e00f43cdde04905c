"""ECLeKTic (Goldman et al. 2025, arXiv 2502.21228): 12-way parallel local-knowledge questions.

No official hub loader: Google publishes ``eclektic_main.jsonl`` (also mirrored on the hub,
e.g. ``ura-hcmut/ECLeKTic``). Its rows are wide, one per question: ``q_id``, ``original_lang``,
``title``, ``url``, ``content``, ``question``, ``answer`` (in the original language), and
``{l}_q``, ``{l}_a``, ``{l}_c`` for each of the 12 languages l (de en es fr he hi id it ja ko pt zh).
A long file (one row per question and language, with ``q_id``, ``lang``, ``question``,
``answer``) is accepted too. item_id = ``q_id``.

Published forms read (``FORMS``): Google's ``eclektic_main.jsonl`` (the file, or a folder holding it);
a hub copy (default ``ura-hcmut/ECLeKTic``, its file picked by ``data_files``); the same rows as
JSON, CSV or Parquet, wide or long.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import XICI_SYSTEM, Item, finalize, text
from moe_routing.data.loading import find_file, load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

NAME = "eclektic"
DEFAULT_PATH = "ura-hcmut/ECLeKTic"
DEFAULT_SPLIT = "train"
MAIN_FILE = "eclektic_main.jsonl"
FORMS = (
    f"Google's {MAIN_FILE} (the file or a folder holding it)",
    "a hub copy such as ura-hcmut/ECLeKTic (data_files picks its file)",
    "one .jsonl/.json/.csv/.parquet file of wide rows (q_id, {l}_q, {l}_a) or long rows (q_id, lang, question, answer)",
)


def load(path: str, lang: str, opts: SourceOptions, *, data_files: str | None = None) -> pa.Table:
    """Items for one ECLeKTic language; the gold answer is the translated answer ``{l}_a``."""
    reject_options(NAME, opts, "few_shot")
    code = lang_codes.normalise(lang)
    src = lang_codes.source_code(code, "eclektic", NAME)
    if data_files is None and path == DEFAULT_PATH:
        data_files = MAIN_FILE
    main = find_file(Path(path).expanduser(), [MAIN_FILE]) if data_files is None else None
    source = str(main) if main is not None else path
    ds = load_split(
        source, dataset=NAME, lang=code, data_files=data_files, forms=FORMS, columns=("q_id",), **opts.hub(DEFAULT_SPLIT)
    )
    cols = list(ds.column_names)
    if "lang" in cols:  # long layout
        require_columns(cols, ["q_id", "lang", "question", "answer"], dataset=NAME, lang=code, path=path)
        rows = [r for r in ds if lang_codes.try_normalise(text(r["lang"])) == code]
        if not rows:
            have = sorted({text(v) for v in ds["lang"]})
            raise DatasetError(f"{NAME} [{code}]: {path!r} has no rows for this language in column 'lang' (has {have})")
        q_col, a_col = "question", "answer"
    else:
        q_col, a_col = f"{src}_q", f"{src}_a"
        require_columns(cols, ["q_id", q_col, a_col], dataset=NAME, lang=code, path=path)
        rows = ds
    items = [Item(text(r["q_id"]), text(r[q_col]), [text(r[a_col])] if text(r[a_col]) else []) for r in rows]
    return finalize(items, opts, dataset=NAME, lang=code, default_system=XICI_SYSTEM, require_answers=True)
