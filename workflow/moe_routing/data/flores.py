"""FLORES parallel sentences (routing-analysis baseline): prefill-only items, no answers.

- FLORES+ (``openlanguagedata/flores_plus``, gated): one config per ``xxx_Script`` code as
  FLORES+ spells it (Chinese is ``cmn_Hans``), splits ``dev`` (997) and ``devtest`` (1012);
  rows have ``id``, ``iso_639_3``, ``iso_15924``, ``glottocode``, ``text``, ``url``, ``domain``,
  ``topic``, ... The release archive's plain-text files (``dev/dev.eng_Latn``) work too.
- the older ``facebook/flores`` layout: configs ``eng_Latn`` (column ``sentence``) or pair /
  ``all`` configs with one ``sentence_{code}`` column per language (FLORES-200 codes, ``zho_Hans``).

- the release archives, one sentence per line: FLORES-200 (``flores200_dataset/{split}/{code}.{split}``,
  FLORES-200 codes, e.g. ``devtest/zho_Hans.devtest``) and FLORES+ (``{split}/{split}.{code}``,
  FLORES+ codes); ``--path`` may be the release folder, its parent, or one such file. With
  ``naming=auto`` the file naming tells which codes to use.

item_id = ``id`` (the same sentence number in every language), else the 1-based line number
(the release files are line-aligned across languages).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import Item, finalize, text
from moe_routing.data.loading import load_file, load_split
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

NAME = "flores"
DEFAULT_PATH = "openlanguagedata/flores_plus"
DEFAULT_SPLIT = "devtest"
NAMINGS = ("auto", "flores_plus", "flores")
PUBLISHED_COUNTS = {"devtest": 1012, "dev": 997}
FORMS = (
    "hub id openlanguagedata/flores_plus or facebook/flores",
    "a copy of the FLORES+ hub repository ({split}/{code}.parquet with README configs) or its Parquet export",
    "save_to_disk folders, one per config",
    "the FLORES-200 release: flores200_dataset/{split}/{code}.{split}",
    "the FLORES+ release: {split}/{split}.{code}",
    "one such text file, or one .jsonl/.parquet/.csv file with a text or sentence_{code} column",
)


def _naming(path: str, naming: str) -> str:
    if naming != "auto":
        return naming
    return "flores_plus" if "plus" in path.lower() or "floresp" in path.lower() else "flores"


def published_count(split: str | None, options: dict) -> int | None:
    """Items in the published split (None: not known)."""
    return PUBLISHED_COUNTS.get(split or DEFAULT_SPLIT)


def _code_or_none(code: str, naming: str) -> str | None:
    try:
        return lang_codes.source_code(code, naming, NAME)
    except DatasetError:
        return None


def _release_file(p: Path, split: str, code: str, naming: str) -> Path | None:
    """A release text file of ``split`` for the language: FLORES-200 ``{code}.{split}`` (FLORES-200 code)
    or FLORES+ ``{split}.{code}`` (FLORES+ code), in the release folder, its parent, or ``p`` itself."""
    flores200 = _code_or_none(code, "flores") if naming in ("auto", "flores") else None
    flores_plus = _code_or_none(code, "flores_plus") if naming in ("auto", "flores_plus") else None
    names = ([f"{flores200}.{split}"] if flores200 else []) + ([f"{split}.{flores_plus}"] if flores_plus else [])
    if p.is_file():
        return p if p.name in names else None
    for folder in (p, p / split, p / "flores200_dataset" / split):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _is_release_file(p: Path) -> bool:
    """A file named like a release file ({code}.dev[test] or dev[test].{code}), of whatever language."""
    head, _, tail = p.name.partition(".")
    return p.is_file() and bool({"dev", "devtest"} & {head, tail})


def _is_release(p: Path, split: str) -> bool:
    folders = [p / split, p / "flores200_dataset" / split]
    return _is_release_file(p) or any(f.is_dir() and any(_is_release_file(x) for x in f.iterdir()) for f in folders)


def load(path: str, lang: str, opts: SourceOptions, *, naming: str = "auto") -> pa.Table:
    """Sentences of one language; ``naming`` picks FLORES+ (``cmn_Hans``) or FLORES-200 (``zho_Hans``) codes."""
    reject_options(NAME, opts, "few_shot")
    if naming not in NAMINGS:
        raise DatasetError(f"{NAME}: naming={naming!r}; use one of {NAMINGS}")
    code = lang_codes.normalise(lang)
    column = _naming(path, naming)
    src = lang_codes.source_code(code, column, NAME)
    split = opts.split or DEFAULT_SPLIT

    p = Path(path).expanduser()
    release = _release_file(p, split, code, naming)
    if release is not None:
        # one sentence per line; the text builder keeps every line, so line n is sentence n in every language
        ds = load_file(release, "text", dataset=NAME, lang=code, cache_dir=opts.cache_dir)
        items = [Item(str(i), text(s), []) for i, s in enumerate(ds["text"], start=1)]
    elif _is_release(p, split):
        raise DatasetError(
            f"{NAME} [{code}]: {path!r} is a FLORES release without a {split!r} file for this language "
            f"({src}); its files are {{split}}/{{code}}.{{split}} (FLORES-200) or {{split}}/{{split}}.{{code}} (FLORES+)"
        )
    else:
        ds = load_split(
            path,
            dataset=NAME,
            lang=code,
            forms=FORMS,
            columns=(("text", "sentence", "id", f"sentence_{src}"),),
            **opts.hub(DEFAULT_SPLIT, config=src),
        )
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
