"""Shared last steps of every loader: check rows, pick a subset, build the items table.

Missing translations: a row whose prompt (or gold answer, where one is required) is empty
is an error naming dataset, language, item and column, unless ``missing="skip"``, which
drops it and logs how many were dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from moe_routing.core.contracts import ITEMS
from moe_routing.data.options import SourceOptions
from moe_routing.core.errors import DatasetError

log = logging.getLogger(__name__)

MISSING_POLICIES = ("error", "skip")
MC_LETTERS = "ABCDEFGHIJ"


@dataclass
class Item:
    item_id: str
    prompt: str | None
    answers: list[str]
    choices: list[str] | None = None
    # a reference answer teacher-forced as the assistant turn (routing of domain sets)
    assistant: str | None = None


def text(value) -> str:
    """Cell -> stripped str ('' for None/NaN)."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:
        return ""
    return str(value).strip()


def read_ids_file(path: str | os.PathLike) -> list[str]:
    """One id per line; blank lines and ``#`` comments ignored."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: ids file not found")
    ids = []
    for line in p.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            ids.append(s)
    return ids


def ids_option(ids_file: str | os.PathLike | None) -> list[str] | None:
    """The ``ids_file`` option: None (every item) when not given or when the file lists no ids."""
    if not ids_file:
        return None
    ids = read_ids_file(ids_file)
    if not ids:
        log.warning("%s lists no ids; using every item", ids_file)
        return None
    return ids


def item_rank(seed: int, item_id: str) -> str:
    # a per-item hash, so the same seed keeps the same questions in every language
    return hashlib.sha256(f"{seed}\x00{item_id}".encode()).hexdigest()


def mc_prompt(stem: str, choices: list[str], instruction: str) -> str:
    lines = [stem, ""] + [f"{MC_LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    if instruction:
        lines += ["", instruction]
    return "\n".join(lines)


def finalize(
    items: list[Item],
    opts: SourceOptions,
    *,
    dataset: str,
    lang: str,
    default_system: str | None = None,
    require_answers: bool = False,
) -> pa.Table:
    """Validate rows, apply the id subset and the limit, return a table in the items contract.

    ``opts.limit`` keeps the first N items in source order, or with ``opts.seed`` the N items
    whose hash of (seed, item_id) is smallest: the same questions in every language.
    """
    system = resolve_system(opts.system, default_system)
    ids, limit, seed, missing = ids_option(opts.ids_file), opts.limit, opts.seed, opts.missing
    if missing not in MISSING_POLICIES:
        raise DatasetError(f"{dataset} [{lang}]: missing={missing!r}; use one of {MISSING_POLICIES}")
    kept = drop_empty_rows(items, dataset, lang, missing, require_answers)
    if ids is not None:
        kept = keep_ids(kept, ids, dataset, lang, missing)
    if limit is not None:
        kept = apply_limit(kept, limit, seed, dataset, lang)
    if not kept:
        raise DatasetError(f"{dataset} [{lang}]: no items left to write")
    return items_table(kept, lang, system)


def drop_empty_rows(items: list[Item], dataset: str, lang: str, missing: str, require_answers: bool) -> list[Item]:
    """The items with a prompt (and answers, when required, and no empty choice); an empty or repeated id is an
    error, and so is a row without its text unless ``missing`` is ``skip``."""
    seen: set[str] = set()
    kept: list[Item] = []
    dropped: list[str] = []
    for it in items:
        if not it.item_id:
            raise DatasetError(f"{dataset} [{lang}]: a row has an empty item id")
        if it.item_id in seen:
            raise DatasetError(f"{dataset} [{lang}]: duplicate item id {it.item_id!r}")
        seen.add(it.item_id)
        empty = None
        if not it.prompt:
            empty = "prompt"
        elif require_answers and not any(a for a in it.answers):
            empty = "answers"
        elif it.choices is not None and any(not c for c in it.choices):
            empty = "choices"
        if empty:
            if missing == "error":
                raise DatasetError(
                    f"{dataset} [{lang}]: item {it.item_id!r} has no {empty} in this language "
                    "(missing translation?); pass missing=skip to drop such rows"
                )
            dropped.append(it.item_id)
            continue
        kept.append(it)
    if dropped:
        log.warning("%s [%s]: dropped %d row(s) without a translation, e.g. %s", dataset, lang, len(dropped), dropped[:5])
    return kept


def keep_ids(kept: list[Item], ids: list[str], dataset: str, lang: str, missing: str) -> list[Item]:
    """The items of the id subset, in source order; a requested id absent here is an error unless ``missing`` is ``skip``."""
    by_id = {it.item_id: it for it in kept}
    absent = [i for i in ids if i not in by_id]
    if absent:
        msg = f"{dataset} [{lang}]: {len(absent)} requested id(s) not in this language, e.g. {absent[:5]}"
        if missing == "error":
            raise DatasetError(msg + "; pass missing=skip to ignore them")
        log.warning(msg)
    wanted = set(ids)
    return [it for it in kept if it.item_id in wanted]


def apply_limit(kept: list[Item], limit: int, seed: int | None, dataset: str, lang: str) -> list[Item]:
    """The first ``limit`` items, or with a seed the ``limit`` items of smallest hash of (seed, item_id), in source order."""
    if limit < 1:
        raise DatasetError(f"{dataset} [{lang}]: limit must be >= 1, got {limit}")
    if seed is not None:
        chosen = {it.item_id for it in sorted(kept, key=lambda it: item_rank(seed, it.item_id))[:limit]}
        return [it for it in kept if it.item_id in chosen]
    return kept[:limit]


def items_table(kept: list[Item], lang: str, system: str | None) -> pa.Table:
    """Items -> a table of the items contract."""
    return pa.table(
        {
            "item_id": [it.item_id for it in kept],
            "lang": [lang] * len(kept),
            "prompt": [it.prompt for it in kept],
            "system": [system] * len(kept),
            "answers": [list(it.answers) for it in kept],
            "choices": [list(it.choices) if it.choices is not None else None for it in kept],
            "assistant": [it.assistant or None for it in kept],
        },
        schema=ITEMS,
    )


# the XICI paper's system instruction for short-answer factual questions (Appendix B)
XICI_SYSTEM = "In just a few words, answer in the language of the question."


def resolve_system(system: str | None, default: str | None) -> str | None:
    """None -> the source's default; "" -> no system prompt; else the given text."""
    if system is None:
        return default
    return system or None
