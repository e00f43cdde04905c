"""One language-code convention for every dataset source (resources/lang_codes.tsv).

The project's short code is ISO 639-1 where one exists (``en``, ``zh``), else ISO 639-3
(``yue``, ``fil``), with a script suffix only where a source has two scripts of one
language (``zh_Hant``). Every other column holds one source's own name for the
language (FLORES ``zho_Hans``, FLORES+ ``cmn_Hans``, MultiLoKo ``simplified_mandarin``, ...);
an empty cell means that source does not have the language.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from moe_routing.core import paths
from moe_routing.core.errors import DatasetError
from moe_routing.core.paths import repository_file

DEFAULT_TABLE = repository_file(paths.LANG_CODES)

# columns that are a source's naming (the rest are descriptive)
SOURCE_COLUMNS = (
    "flores",
    "flores_plus",
    "belebele",
    "multiloko",
    "global_mmlu",
    "mgsm",
    "eclektic",
    "gsm8k_instruct",
)
REQUIRED_COLUMNS = ("code", "name", "iso639_3") + SOURCE_COLUMNS


@dataclass
class LangTable:
    path: Path
    rows: dict[str, dict[str, str]]  # code -> column -> value ('' = absent)
    aliases: dict[str, str] = field(default_factory=dict)  # casefolded alias -> code

    def normalise(self, value: str) -> str:
        """Any spelling a source or a user uses (``eng_Latn``, ``English``, ``english``, ``en``) -> project code."""
        text = str(value).strip()
        if text in self.rows:
            return text
        code = self.aliases.get(text.casefold())
        if code is None:
            raise DatasetError(
                f"unknown language {value!r}: not a code or alias in {self.path} (known codes: {', '.join(sorted(self.rows))})"
            )
        return code

    def try_normalise(self, value: str) -> str | None:
        """Like normalise, but None for an unknown spelling."""
        text = str(value).strip()
        return text if text in self.rows else self.aliases.get(text.casefold())

    def source_code(self, code: str, source: str, dataset: str | None = None) -> str:
        """The name ``source`` (a column of the table) uses for project language ``code``."""
        if source not in SOURCE_COLUMNS:
            raise DatasetError(f"{self.path}: no column {source!r}; source columns are {list(SOURCE_COLUMNS)}")
        code = self.normalise(code)
        value = self.rows[code][source]
        if not value:
            have = ", ".join(self.languages(source))
            raise DatasetError(
                f"{dataset or source}: language {code!r} is not available "
                f"(column {source!r} of {self.path} is empty for it; available: {have})"
            )
        return value

    def languages(self, source: str) -> list[str]:
        """Project codes of the languages ``source`` has, in table order."""
        if source not in SOURCE_COLUMNS:
            raise DatasetError(f"{self.path}: no column {source!r}; source columns are {list(SOURCE_COLUMNS)}")
        return [code for code, row in self.rows.items() if row[source]]


def read_table(path: str | os.PathLike | None = None) -> LangTable:
    """Parse and check the table: required columns, unique codes, no alias naming two languages."""
    p = Path(path) if path is not None else DEFAULT_TABLE
    if not p.exists():
        raise DatasetError(f"{p}: language-code table not found")
    with p.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{p}: missing column(s) {missing}; has {reader.fieldnames}")
        rows: dict[str, dict[str, str]] = {}
        for lineno, raw in enumerate(reader, start=2):
            row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            code = row["code"]
            if not code:
                raise DatasetError(f"{p}: line {lineno}: empty 'code'")
            if code in rows:
                raise DatasetError(f"{p}: line {lineno}: duplicate code {code!r}")
            rows[code] = row
    aliases: dict[str, str] = {}
    for code, row in rows.items():
        for column in ("code", "name", "iso639_3") + SOURCE_COLUMNS:
            value = row[column]
            if not value:
                continue
            key = value.casefold()
            other = aliases.get(key)
            if other is not None and other != code:
                raise DatasetError(f"{p}: {value!r} (column {column!r}) names both {other!r} and {code!r}")
            aliases[key] = code
    return LangTable(p, rows, aliases)


@functools.lru_cache(maxsize=4)
def _cached(path: str) -> LangTable:
    return read_table(path)


def default_table() -> LangTable:
    return _cached(str(DEFAULT_TABLE))


def normalise(value: str) -> str:
    return default_table().normalise(value)


def try_normalise(value: str) -> str | None:
    return default_table().try_normalise(value)


def source_code(code: str, source: str, dataset: str | None = None) -> str:
    return default_table().source_code(code, source, dataset)


def languages(source: str) -> list[str]:
    return default_table().languages(source)
