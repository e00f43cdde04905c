"""Registry: source name -> loader module, and one entry point ``load_items``.

Every loader module has ``NAME``, ``DEFAULT_PATH`` (hub id), ``DEFAULT_SPLIT``, ``FORMS`` (the
published forms it reads, named in its errors and in docs/datasets.md) and
``load(path, lang, opts: SourceOptions, *, <own options>) -> pa.Table`` returning the items
contract (see options.py). Callers pass all options flat to ``load_items``. A loader that knows
how many items the published split holds has ``published_count(split, options) -> int | None``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pyarrow as pa

from moe_routing.data.items import ids_option
from moe_routing.data.options import COMMON_OPTIONS, SourceOptions, own_options
from moe_routing.core.errors import DatasetError

SOURCES: dict[str, str] = {
    "eclektic": "eclektic",
    "multiloko": "multiloko",
    "global_mmlu": "global_mmlu",
    "flores": "flores",
    "belebele": "belebele",
    "gsm8k_instruct": "gsm8k_instruct",
    "alpacare": "alpacare",
    "mgsm": "mgsm",
    "paraphrases": "paraphrases",
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def get(source: str) -> ModuleType:
    if source not in SOURCES:
        raise DatasetError(f"unknown dataset source {source!r}; known: {sorted(SOURCES)}")
    return importlib.import_module(f"moe_routing.data.{SOURCES[source]}")


def option_types(source: str) -> dict[str, type]:
    return {**COMMON_OPTIONS, **own_options(get(source).load)}


def parse_option(source: str, key: str, value: str):
    """A ``KEY=VALUE`` string from the command line -> a typed keyword option."""
    types = option_types(source)
    if key not in types:
        raise DatasetError(f"{source}: unknown option {key!r}; options: {sorted(types)}")
    kind = types[key]
    if kind is bool:
        low = value.strip().lower()
        if low not in _TRUE | _FALSE:
            raise DatasetError(f"{source}: option {key!r} wants true/false, got {value!r}")
        return low in _TRUE
    if kind is int:
        try:
            return int(value)
        except ValueError:
            raise DatasetError(f"{source}: option {key!r} wants an integer, got {value!r}") from None
    return value


def parse_options(source: str, pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings from the command line (``--option``) -> typed keyword options."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise DatasetError(f"--option {pair!r}: expected KEY=VALUE")
        key = key.strip().replace("-", "_")
        options[key] = parse_option(source, key, value)
    return options


def load_items(source: str, path: str | None, lang: str, **options) -> pa.Table:
    """Items of ``lang`` from ``source`` read at ``path`` (hub id or local path; None = the source's hub id)."""
    module = get(source)
    types = option_types(source)
    unknown = sorted(k for k in options if k not in types)
    if unknown:
        raise DatasetError(f"{source}: unknown option(s) {unknown}; options: {sorted(types)}")
    own = {k: v for k, v in options.items() if v is not None}
    common = SourceOptions(**{k: own.pop(k) for k in COMMON_OPTIONS if k in own})
    return module.load(path or module.DEFAULT_PATH, lang, common, **own)


def count_mismatch(source: str, table: pa.Table, **options) -> str | None:
    """A warning when the items written differ in number from the published split (an incomplete or
    altered copy), or None; not asked when ``limit`` or a list of ids picks a subset."""
    count = getattr(get(source), "published_count", None)
    if count is None or options.get("limit") is not None or ids_option(options.get("ids_file")) is not None:
        return None
    expected = count(options.get("split"), options)
    if expected is None or expected == table.num_rows:
        return None
    lang = table.column("lang")[0].as_py() if table.num_rows else "?"
    return (
        f"{source} [{lang}]: {table.num_rows} items, but the published split has {expected}; "
        "is the local copy complete (or were rows skipped with missing=skip)?"
    )
