"""FLORES parallel sentences (routing-analysis baseline): prefill-only items, no answers.

- FLORES+ (``openlanguagedata/flores_plus``, gated): one config per ``xxx_Script`` code as
  FLORES+ spells it (Chinese is ``cmn_Hans``), splits ``dev`` (997) and ``devtest`` (1012);
  rows have ``id``, ``iso_639_3``, ``iso_15924``, ``glottocode``, ``text``, ``url``, ``domain``,
  ``topic``, ... The release archive's plain-text files (``dev/dev.eng_Latn``) work too.
- the older ``facebook/flores`` layout: configs ``eng_Latn`` (column ``sentence``) or pair /
  ``all`` configs with one ``sentence_{code}`` column per language (FLORES-200 codes, ``zho_Hans``).

item_id = ``id`` (the same sentence number in every language), else the 1-based line number.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import Item, finalize, text
from moe_routing.data.loading import load_split
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

NAME = "flores"
DEFAULT_PATH = "openlanguagedata/flores_plus"
DEFAULT_SPLIT = "devtest"
NAMINGS = ("auto", "flores_plus", "flores")


def _naming(path: str, naming: str) -> str:
    if naming != "auto":
        return naming
    return "flores_plus" if "plus" in path.lower() or "floresp" in path.lower() else "flores"


def _text_release_file(p: Path, split: str, code: str) -> Path | None:
    """The FLORES+ release archive layout: <root>/<split>/<split>.<code> (one sentence per line)."""
    for f in (p / split / f"{split}.{code}", p / f"{split}.{code}"):
        if f.is_file():
            return f
    return None


def load(path: str, lang: str, opts: SourceOptions, *, naming: str = "auto") -> pa.Table:
    """Sentences of one language; ``naming`` picks FLORES+ (``cmn_Hans``) or FLORES-200 (``zho_Hans``) codes."""
    reject_options(NAME, opts, "few_shot")
    if naming not in NAMINGS:
        raise DatasetError(f"{NAME}: naming={naming!r}; use one of {NAMINGS}")
    code = lang_codes.normalise(lang)
    column = _naming(path, naming)
    src = lang_codes.source_code(code, column, NAME)
    split = opts.split or DEFAULT_SPLIT

    release = _text_release_file(Path(path).expanduser(), split, src)
    if release is not None:
        lines = release.read_text(encoding="utf-8").splitlines()
        items = [Item(str(i), text(s), []) for i, s in enumerate(lines, start=1)]
    else:
        ds = load_split(path, dataset=NAME, lang=code, **opts.hub(DEFAULT_SPLIT, config=src))
        cols = list(ds.column_names)
        candidates = ["text", f"sentence_{src}", "sentence"]
        col = next((c for c in candidates if c in cols), None)
        if col is None:
            raise DatasetError(
                f"{NAME} [{code}]: {path!r} has none of the sentence columns {candidates} (has {cols}); "
                "has the schema changed, or is the language missing?"
            )
        rows = ds.select_columns([c for c in (col, "id") if c in cols]).to_list()
        if "id" in cols:
            items = [Item(text(r["id"]), text(r[col]), []) for r in rows]
        else:
            items = [Item(str(i), text(r[col]), []) for i, r in enumerate(rows, start=1)]
    return finalize(items, opts, dataset=NAME, lang=code)
