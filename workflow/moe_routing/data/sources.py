"""Registry: source name -> loader module, and one entry point ``load_items``.

Every loader module has ``NAME``, ``DEFAULT_PATH`` (hub id), ``DEFAULT_SPLIT``, ``OPTIONS``
(its own keyword options and their types) and ``load(path, lang, **options) -> pa.Table``
returning the items contract. Options every source takes: split, config, ids_file, limit,
system, few_shot, seed, missing, revision, cache_dir.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pyarrow as pa

from moe_routing.errors import DatasetError

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
COMMON_OPTIONS: dict[str, type] = {
    "split": str,
    "config": str,
    "ids_file": str,
    "limit": int,
    "system": str,
    "few_shot": int,
    "seed": int,
    "missing": str,
    "revision": str,
    "cache_dir": str,
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def get(source: str) -> ModuleType:
    if source not in SOURCES:
        raise DatasetError(f"unknown dataset source {source!r}; known: {sorted(SOURCES)}")
    return importlib.import_module(f"moe_routing.data.{SOURCES[source]}")


def option_types(source: str) -> dict[str, type]:
    return {**COMMON_OPTIONS, **get(source).OPTIONS}


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


def load_items(source: str, path: str | None, lang: str, **options) -> pa.Table:
    """Items of ``lang`` from ``source`` read at ``path`` (hub id or local path; None = the source's hub id)."""
    module = get(source)
    types = option_types(source)
    unknown = sorted(k for k in options if k not in types)
    if unknown:
        raise DatasetError(f"{source}: unknown option(s) {unknown}; options: {sorted(types)}")
    given = {k: v for k, v in options.items() if v is not None}
    return module.load(path or module.DEFAULT_PATH, lang, **given)
