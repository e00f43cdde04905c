"""MultiLoKo (Hupkes & Bogoychev 2025): the English-source dev split, human-translated into 30 languages.

Two layouts:
- the GitHub release (facebookresearch/multiloko, ``benchmark_data/``): ``english/dev.jsonl``
  holds the 250 English-source questions and ``english/dev_translated_human_{language}.jsonl``
  (or ``_machine_``) their translations; rows have ``id``, ``question``, ``targets`` (list of
  short answers), ``target`` (long answer), ``text``, ``output_type``. Point ``--path`` at
  ``benchmark_data`` (or its parent).
- the gated hub copy ``facebook/multiloko``: one config per language name (``english``, ...),
  split ``dev``. Its rows may carry ``question_language``/``source_language``; when they do,
  only rows asked in the requested language whose source is English are kept. Rows without
  ``source_language`` are refused for a non-English language unless ``--config`` names the
  config holding the translations (a language config may hold its own local questions).
  One config is reported broken on load: then ``default`` is loaded and filtered the same way.

``targets`` is sometimes a stringified list (``"['1946', '1 9 4 6']"``): it is parsed.
item_id = ``id`` (the source Wikipedia page and its rank), else the row position within the
English-source rows (the translations are row-aligned).

Published forms read (``FORMS``): the decrypted GitHub release (``benchmark_data/``, or its parent);
the hub id; a copy of the hub repository. The release is password-protected and its authors ask
that it not be mirrored, so the tests use an exact replica of its layout.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import XICI_SYSTEM, Item, finalize, text
from moe_routing.data.loading import load_split, require_columns
from moe_routing.data.options import SourceOptions, reject_options
from moe_routing.core.errors import DatasetError

log = logging.getLogger(__name__)

NAME = "multiloko"
DEFAULT_PATH = "facebook/multiloko"
DEFAULT_SPLIT = "dev"
TRANSLATIONS = ("human", "machine")
PUBLISHED_COUNTS = {"dev": 250}
FORMS = (
    "the decrypted GitHub release: benchmark_data/english/dev.jsonl and dev_translated_{human|machine}_{language}.jsonl",
    "hub id facebook/multiloko (gated)",
    "a copy of the hub repository (README configs per language name)",
)


def published_count(split: str | None, options: dict) -> int | None:
    """Items in the published split (None: not known): 250 English-source dev questions per language."""
    return (
        PUBLISHED_COUNTS.get(split or DEFAULT_SPLIT) if options.get("source_language", "english") in ("english", "en") else None
    )


def parse_targets(value, *, item_id: str, lang: str) -> list[str]:
    """A list of answers, from a list or its string form (JSON or Python literal)."""
    if value is None:
        return []
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return []
        if s.startswith("["):
            parsed = None
            for parse in (json.loads, ast.literal_eval):
                try:
                    parsed = parse(s)
                    break
                except (ValueError, SyntaxError):
                    continue
            if not isinstance(parsed, list):
                raise DatasetError(f"{NAME} [{lang}]: item {item_id!r}: column 'targets' is not a list: {s[:80]!r}")
            return [text(v) for v in parsed if text(v)]
        return [s]
    return [text(v) for v in value if text(v)]


def _benchmark_root(p: Path) -> Path | None:
    for root in (p, p / "benchmark_data"):
        if (root / "english" / "dev.jsonl").exists() or any((root / "english").glob("*_translated_*.jsonl")):
            return root
    return None


def _github_file(root: Path, name: str, split: str, translation: str, source_name: str) -> Path:
    if name == source_name:
        return root / source_name / f"{split}.jsonl"
    return root / source_name / f"{split}_translated_{translation}_{name}.jsonl"


def _filter_hub_rows(ds, code: str, source_code: str):
    cols = ds.column_names
    rows = ds.to_list()
    if "question_language" in cols:
        rows = [r for r in rows if lang_codes.try_normalise(text(r["question_language"])) == code]
    if "source_language" in cols:
        rows = [r for r in rows if lang_codes.try_normalise(text(r["source_language"])) == source_code]
    return rows


def load(
    path: str,
    lang: str,
    opts: SourceOptions,
    *,
    translation: str = "human",
    source_language: str = "english",
) -> pa.Table:
    """Items for one MultiLoKo language of the English-source split (``source_language`` selects another)."""
    reject_options(NAME, opts, "few_shot")
    if translation not in TRANSLATIONS:
        raise DatasetError(f"{NAME}: translation={translation!r}; use one of {TRANSLATIONS}")
    code = lang_codes.normalise(lang)
    name = lang_codes.source_code(code, "multiloko", NAME)
    src_code = lang_codes.normalise(source_language)
    src_name = lang_codes.source_code(src_code, "multiloko", NAME)
    split, config = opts.split or DEFAULT_SPLIT, opts.config

    root = _benchmark_root(Path(path).expanduser())
    if root is not None:
        f = _github_file(root, name, split, translation, src_name)
        if not f.exists():
            raise DatasetError(
                f"{NAME} [{code}]: {f} not found: no {translation} translation of the {src_name}-source {split} split"
            )
        rows = load_split(str(f), dataset=NAME, lang=code, cache_dir=opts.cache_dir).to_list()
        cols = list(rows[0]) if rows else []
    else:
        hub = opts.hub(DEFAULT_SPLIT, config=name)
        try:
            ds = load_split(path, dataset=NAME, lang=code, forms=FORMS, columns=("question",), **hub)
        except DatasetError as exc:
            if "gated" in str(exc) or "unreachable" in str(exc) or "matches none of the forms" in str(exc) or config == "default":
                raise
            # one language config is reported broken on load: the default config has every row
            log.warning(
                "%s [%s]: config %r failed (%s); falling back to config 'default' and filtering", NAME, code, config or name, exc
            )
            ds = load_split(path, dataset=NAME, lang=code, forms=FORMS, columns=("question",), **{**hub, "config": "default"})
        cols = list(ds.column_names)
        if "source_language" not in cols and code != src_code:
            # without it, a language config may hold that language's own local questions,
            # not the translations of the English-source split the study needs
            if config is None:
                raise DatasetError(
                    f"{NAME} [{code}]: {path!r} rows have no 'source_language' column, so the {src_name}-source "
                    f"questions cannot be told apart; use the GitHub release layout (benchmark_data/) as --path, "
                    f"or name the config that holds them with --config"
                )
            log.warning(
                "%s [%s]: no 'source_language' column; trusting config %r to hold %s-source rows", NAME, code, config, src_name
            )
        rows = _filter_hub_rows(ds, code, src_code)
        if not rows:
            raise DatasetError(f"{NAME} [{code}]: {path!r} has no {src_name}-source rows asked in {name!r}")
    require_columns(cols, ["question", "targets"], dataset=NAME, lang=code, path=path)
    if "id" not in cols:
        log.warning("%s [%s]: no 'id' column; item ids are row positions (rows must be aligned across languages)", NAME, code)
    items = []
    for i, r in enumerate(rows):
        item_id = text(r["id"]) if "id" in cols else f"row{i}"
        items.append(Item(item_id, text(r["question"]), parse_targets(r["targets"], item_id=item_id, lang=code)))
    return finalize(items, opts, dataset=NAME, lang=code, default_system=XICI_SYSTEM, require_answers=True)
