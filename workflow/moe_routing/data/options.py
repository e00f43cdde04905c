"""The options every dataset source takes, and the types of a loader's own options.

A loader is ``load(path, lang, opts: SourceOptions, *, <own options>) -> pa.Table``: its own
options are its keyword-only parameters, declared once there with their types and defaults.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, fields

from moe_routing.core.errors import DatasetError


@dataclass(frozen=True)
class SourceOptions:
    split: str | None = None  # split to read; None: the source's DEFAULT_SPLIT
    config: str | None = None  # hub config; None: the language's config
    ids_file: str | None = None  # keep only the ids listed (one per line); a file listing none: every item
    limit: int | None = None  # keep at most N items: the first N, or with seed the N of smallest hash
    system: str | None = None  # system prompt; None: the source's default; "": none
    few_shot: int | None = None  # few-shot exemplars (sources that build k-shot prompts)
    seed: int | None = None  # with limit: pick items by a seeded hash of their id (same items in every language)
    missing: str = "error"  # a row without a translation: "error" or "skip" (drop it)
    revision: str | None = None  # hub revision (branch, tag or commit)
    cache_dir: str | None = None  # `datasets` cache directory

    def hub(self, default_split: str, config: str | None = None) -> dict:
        """Where ``loading.load_split`` reads: this split (else the source's ``default_split``), this
        config (else the source's ``config`` for the language), revision and cache directory."""
        return {
            "split": self.split or default_split,
            "config": self.config or config,
            "revision": self.revision,
            "cache_dir": self.cache_dir,
        }


def plain_type(hint) -> type:
    """The type a command-line value parses to: ``int | None`` -> int, ``str | list[str] | None`` -> str."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


_HINTS = typing.get_type_hints(SourceOptions)
COMMON_OPTIONS: dict[str, type] = {f.name: plain_type(_HINTS[f.name]) for f in fields(SourceOptions)}


def own_options(load) -> dict[str, type]:
    """A loader's own options (its keyword-only parameters) and their types."""
    hints = typing.get_type_hints(load)
    params = inspect.signature(load).parameters.values()
    return {p.name: plain_type(hints[p.name]) for p in params if p.kind is p.KEYWORD_ONLY}


def reject_options(dataset: str, opts: SourceOptions, *names: str) -> None:
    """Common options a source does not use must not be silently ignored."""
    for name in names:
        if getattr(opts, name):
            raise DatasetError(f"{dataset}: option {name!r} is not supported by this source")
