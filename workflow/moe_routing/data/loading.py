"""Hub id or local path -> one split of a `datasets.Dataset`, with errors that say what to fix.

Accepted ``path`` forms:
- a hub id (``facebook/belebele``): ``load_dataset(path, name=config, split=split)``;
  a repository that is still a loading script is retried from its Parquet export
  (revision ``refs/convert/parquet``, ``data_dir=config``);
- a directory written by ``save_to_disk`` (a Dataset or a DatasetDict), optionally one per
  config in ``path/<config>/``;
- a directory of data files: a local copy of the hub repository (its README ``configs:`` are
  honoured), or files under ``path/<config>/``, or files whose names give the splits;
- a single ``.json``/``.jsonl``/``.csv``/``.tsv``/``.parquet``/``.txt`` file (one split: ``split`` is ignored).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from moe_routing.core.errors import DatasetError

log = logging.getLogger(__name__)

_BUILDER_BY_SUFFIX = {
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
}
# datasets names a file called dev.* "validation" when no README declares the splits
_SPLIT_ALIASES = {"dev": ("validation",), "validation": ("dev",), "test": ("testing",)}
_PARQUET_EXPORT = "refs/convert/parquet"
_AUTH_HINT = (
    "it is gated on the Hugging Face Hub: accept its terms at https://huggingface.co/datasets/{path}, "
    "then authenticate with `huggingface-cli login` (or `hf auth login`), or export HF_TOKEN=<your token> "
    "for batch jobs; alternatively download it once and pass the local directory as --path"
)


def is_auth_error(exc: BaseException) -> bool:
    """True when ``exc`` (or anything in its cause chain) is a gated-repo or 401/403 failure."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        if name == "GatedRepoError":
            return True
        response = getattr(cur, "response", None)
        status = getattr(response, "status_code", None)
        if name in ("HfHubHTTPError", "RepositoryNotFoundError") and status in (401, 403):
            return True
        text = str(cur).lower()
        if "gated" in text or "must be authenticated" in text or "401 client error" in text:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def describe_load_error(
    exc: BaseException, *, dataset: str, lang: str, path: str, config: str | None, split: str
) -> DatasetError:
    """One clear DatasetError for a failed load: authentication, a missing split/config, or the original message."""
    where = f"{dataset} [{lang}]: cannot load {path!r} (config={config!r}, split={split!r})"
    if is_auth_error(exc):
        return DatasetError(f"{where}: {_AUTH_HINT.format(path=path)}. Original error: {exc}")
    text = str(exc)
    if "Unknown split" in text or re.search(r"split.*not found", text, re.I):
        return DatasetError(f"{where}: no split {split!r} ({text}); pass --split")
    if ("BuilderConfig" in text and "not found" in text) or "Config name is missing" in text:
        return DatasetError(f"{where}: no config {config!r}, i.e. the language is missing ({text})")
    if isinstance(exc, ConnectionError) or "couldn't reach" in text.lower():
        return DatasetError(f"{where}: the Hub is unreachable ({text}); download the dataset and pass a local --path")
    return DatasetError(f"{where}: {type(exc).__name__}: {text}")


def _pick_split(obj: Any, split: str, where: str):
    """A Dataset from a DatasetDict (or the Dataset itself), trying split aliases."""
    if not hasattr(obj, "keys"):
        return obj
    for name in (split, *_SPLIT_ALIASES.get(split, ())):
        if name in obj:
            return obj[name]
    raise DatasetError(f"{where}: no split {split!r}; available splits: {sorted(obj.keys())}")


def _is_saved_dataset(p: Path) -> bool:
    return (p / "dataset_dict.json").exists() or (p / "state.json").exists()


def _readme_configs(p: Path) -> list[str]:
    """Config names a local copy of a hub repository declares in its README (empty if none)."""
    readme = p / "README.md"
    if not readme.exists():
        return []
    text = readme.read_text(encoding="utf-8", errors="replace")
    return re.findall(r"^\s*-?\s*config_name:\s*['\"]?([^'\"\s]+)['\"]?\s*$", text, re.M)


def _load_dataset_split(load_dataset, *args, split: str, **kwargs):
    """load_dataset(..., split=split), retrying the dev/validation alias when the split is unknown."""
    names = (split, *_SPLIT_ALIASES.get(split, ()))
    last: Exception | None = None
    for name in names:
        try:
            return load_dataset(*args, split=name, **kwargs)
        except ValueError as exc:
            if "Unknown split" not in str(exc):
                raise
            last = exc
    assert last is not None
    raise last


def load_split(
    path: str,
    *,
    dataset: str,
    lang: str,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    cache_dir: str | None = None,
    data_files: str | list[str] | None = None,
):
    """Load one split of ``path`` (see module doc) as a `datasets.Dataset`; every failure is a DatasetError."""
    import datasets

    where = f"{dataset} [{lang}]: {path!r}"
    p = Path(path).expanduser()
    kw: dict[str, Any] = {}
    if cache_dir:
        kw["cache_dir"] = cache_dir
    try:
        if p.is_file():
            builder = _BUILDER_BY_SUFFIX.get(p.suffix.lower())
            if builder is None:
                raise DatasetError(f"{where}: unsupported file type {p.suffix!r}; use one of {sorted(_BUILDER_BY_SUFFIX)}")
            extra = {"delimiter": "\t"} if p.suffix.lower() == ".tsv" else {}
            log.info("%s: loading single file %s with the %r builder (split %r ignored)", dataset, p, builder, split)
            return datasets.load_dataset(builder, data_files=str(p), split="train", **extra, **kw)
        if p.is_dir():
            if _is_saved_dataset(p):
                return _pick_split(datasets.load_from_disk(str(p)), split, where)
            if config and (p / config).is_dir():
                sub = p / config
                if _is_saved_dataset(sub):
                    return _pick_split(datasets.load_from_disk(str(sub)), split, where)
                return _load_dataset_split(datasets.load_dataset, str(p), data_dir=config, split=split, **kw)
            if data_files is not None:
                return _load_dataset_split(datasets.load_dataset, str(p), data_files=data_files, split=split, **kw)
            declared = _readme_configs(p)
            if config and declared:
                if config not in declared:
                    raise DatasetError(f"{where}: no config {config!r}, i.e. the language is missing; available: {declared}")
                return _load_dataset_split(datasets.load_dataset, str(p), name=config, split=split, **kw)
            return _load_dataset_split(datasets.load_dataset, str(p), split=split, **kw)
        if path.startswith((".", "/", "~")) or path.count("/") != 1:
            raise DatasetError(f"{where}: no such file or directory, and not a hub id of the form owner/name")
        try:
            return _load_dataset_split(
                datasets.load_dataset, path, name=config, split=split, revision=revision, data_files=data_files, **kw
            )
        except RuntimeError as exc:
            if "scripts are no longer supported" not in str(exc):
                raise
            log.warning("%s: %s is a loading-script repository; using its Parquet export %s", dataset, path, _PARQUET_EXPORT)
            return _load_dataset_split(datasets.load_dataset, path, data_dir=config, split=split, revision=_PARQUET_EXPORT, **kw)
    except DatasetError:
        raise
    except Exception as exc:  # datasets/hub raise many types; all become one clear message
        raise describe_load_error(exc, dataset=dataset, lang=lang, path=path, config=config, split=split) from exc


def require_columns(columns: list[str], needed: list[str], *, dataset: str, lang: str, path: str) -> None:
    """A changed schema is a DatasetError naming the dataset, language and the missing column(s)."""
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DatasetError(
            f"{dataset} [{lang}]: {path!r} lacks column(s) {missing} (has {list(columns)}); has the source's schema changed?"
        )
