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

A source's own release files (MGSM's headerless TSVs, FLORES-200's ``{code}.devtest``, ...) are found
by its loader (``find_file``) and read here with ``load_file``. A local copy is read with the hub
switched off (``offline``), whatever HF_DATASETS_OFFLINE says; a local folder that matches none of a
loader's forms is one ``unknown_layout`` error naming the forms and the files found.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
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


def readme_configs(p: Path) -> list[str]:
    """Config names a local copy of a hub repository declares in its README ``configs:`` (empty if none).

    Only ``configs:`` locates data files; the ``dataset_info:`` of a loading-script repository (MGSM)
    names configs whose files only the script knows, so it says nothing about this copy.
    """
    readme = p / "README.md"
    if not readme.exists():
        return []
    text = readme.read_text(encoding="utf-8", errors="replace")
    m = re.match(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", text, re.S)
    if not m:
        return []
    import yaml

    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        return []
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not isinstance(configs, list):
        return []
    return [str(c["config_name"]) for c in configs if isinstance(c, dict) and "config_name" in c]


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Reading a local copy never contacts the hub, whatever HF_DATASETS_OFFLINE / HF_HUB_OFFLINE say."""
    import datasets.config

    before = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = before


def seen_files(p: Path, limit: int = 12) -> str:
    """The files under ``p`` (relative, sorted, at most ``limit``), for an error message."""
    if p.is_file():
        return p.name
    files: list[str] = []
    try:
        for f in p.rglob("*"):  # a wrong --path may be a large tree: look at the first few thousand entries
            if len(files) >= 5000:
                break
            if f.is_file() and ".cache" not in f.parts:
                files.append(str(f.relative_to(p)))
    except OSError as exc:
        return f"(cannot list: {exc})"
    if not files:
        return "no files"
    files.sort()
    more = f" ... ({len(files)}{'+' if len(files) >= 5000 else ''} in all)" if len(files) > limit else ""
    return ", ".join(files[:limit]) + more


def unknown_layout(dataset: str, lang: str, path: str, forms: tuple[str, ...], reason: str = "") -> DatasetError:
    """One line: the local copy matches none of the forms this loader reads; what it reads and what was found."""
    why = f" ({reason})" if reason else ""
    return DatasetError(
        f"{dataset} [{lang}]: {path!r} matches none of the forms this loader reads{why}; it reads: "
        f"{'; '.join(forms)}. Found: {seen_files(Path(path).expanduser())}"
    )


def find_file(root: Path, candidates: list[str]) -> Path | None:
    """The first of ``candidates`` (paths relative to ``root``) that is a file, or None."""
    if not root.is_dir():
        return None
    for rel in candidates:
        f = root / rel
        if f.is_file():
            return f
    return None


def load_file(path: Path, builder: str, *, dataset: str, lang: str, cache_dir: str | None = None, **builder_kwargs):
    """One local file through one of the `datasets` builders (``csv``, ``json``, ``text``, ``parquet``), offline."""
    import datasets

    kw: dict[str, Any] = {"cache_dir": cache_dir} if cache_dir else {}
    try:
        with offline():
            return datasets.load_dataset(builder, data_files=str(path), split="train", **builder_kwargs, **kw)
    except Exception as exc:  # datasets raises many types; all become one clear message
        raise DatasetError(
            f"{dataset} [{lang}]: cannot read {path} with the {builder!r} builder: {_first_line(exc, 300)}"
        ) from exc


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


def _first_line(exc: BaseException, limit: int = 160) -> str:
    line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {line[:limit]}"


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
    forms: tuple[str, ...] = (),
    columns: tuple = (),
):
    """Load one split of ``path`` (see module doc) as a `datasets.Dataset`; every failure is a DatasetError.

    ``forms`` describe the layouts the calling loader reads and ``columns`` the columns every one of
    them has: a local file or folder of data files that `datasets` cannot read, or reads without
    those columns, is reported with them (``unknown_layout``), not as a missing language or split.
    """
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
                if forms:
                    raise unknown_layout(dataset, lang, path, forms, f"unsupported file type {p.suffix!r}")
                raise DatasetError(f"{where}: unsupported file type {p.suffix!r}; use one of {sorted(_BUILDER_BY_SUFFIX)}")
            extra = {"delimiter": "\t"} if p.suffix.lower() == ".tsv" else {}
            log.info("%s: loading single file %s with the %r builder (split %r ignored)", dataset, p, builder, split)
            with offline():
                ds = datasets.load_dataset(builder, data_files=str(p), split="train", **extra, **kw)
            return _check_form(ds, columns, dataset=dataset, lang=lang, path=path, forms=forms)
        if p.is_dir():
            with offline():
                return _load_local_dir(
                    datasets,
                    p,
                    path,
                    dataset=dataset,
                    lang=lang,
                    config=config,
                    split=split,
                    data_files=data_files,
                    forms=forms,
                    columns=columns,
                    **kw,
                )
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


def _check_form(ds, columns: tuple, *, dataset: str, lang: str, path: str, forms: tuple[str, ...]):
    """Data files `datasets` read by their type alone must have the loader's columns to be one of its forms."""
    # an entry that is a tuple is satisfied by any one of its columns
    missing = [c for c in columns if not set(c if isinstance(c, tuple) else (c,)) & set(ds.column_names)]
    if forms and missing:
        raise unknown_layout(dataset, lang, path, forms, f"read as columns {list(ds.column_names)[:8]}, lacking {missing}")
    return ds


def _load_local_dir(datasets, p: Path, path: str, *, dataset, lang, config, split, data_files, forms, columns, **kw):
    """A local folder: save_to_disk output, per-config folders, a hub repository copy, or data files."""
    where = f"{dataset} [{lang}]: {path!r}"
    if _is_saved_dataset(p):
        return _pick_split(datasets.load_from_disk(str(p)), split, where)
    if config and (p / config).is_dir():
        sub = p / config
        if _is_saved_dataset(sub):
            return _pick_split(datasets.load_from_disk(str(sub)), split, where)
        return _load_dataset_split(datasets.load_dataset, str(p), data_dir=config, split=split, **kw)
    if data_files is not None:
        return _load_dataset_split(datasets.load_dataset, str(p), data_files=data_files, split=split, **kw)
    declared = readme_configs(p)
    if config and declared:
        if config not in declared:
            raise DatasetError(f"{where}: no config {config!r}, i.e. the language is missing; available: {declared}")
        return _load_dataset_split(datasets.load_dataset, str(p), name=config, split=split, **kw)
    try:
        ds = _load_dataset_split(datasets.load_dataset, str(p), split=split, **kw)
        return _check_form(ds, columns, dataset=dataset, lang=lang, path=path, forms=forms)
    except DatasetError:
        raise
    except ValueError as exc:
        if "Unknown split" in str(exc):
            # the split is missing from a folder that is one of the forms, or the folder is none of them
            splits = datasets.load_dataset(str(p), **kw)
            for ds in splits.values():
                _check_form(ds, columns, dataset=dataset, lang=lang, path=path, forms=forms)
            raise
        cause = exc
    except Exception as exc:  # no data files, mixed schemas, a loading script: not a layout `datasets` reads
        cause = exc
    if forms:
        raise unknown_layout(dataset, lang, path, forms, _first_line(cause)) from cause
    raise cause


def require_columns(columns: list[str], needed: list[str], *, dataset: str, lang: str, path: str) -> None:
    """A changed schema is a DatasetError naming the dataset, language and the missing column(s)."""
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DatasetError(
            f"{dataset} [{lang}]: {path!r} lacks column(s) {missing} (has {list(columns)}); has the source's schema changed?"
        )
