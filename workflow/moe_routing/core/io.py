"""Atomic, durable writing and checked reading of the files that pass between stages.

Every Parquet file written here carries CRC-32 page checksums (data and dictionary pages) and a
footer check (``moe_routing.core.footer_check``: what page checksums do not cover). Every read verifies
both, so damage anywhere in a file is a one-line ContractError naming it. A file written
elsewhere (``source: items``) has neither and is read with the checks its writer left.
Reads also check the file's contract (``contracts.check``): its columns, the items invariants,
the routing arrays.

Writes go to a temporary file beside the target, which is fsynced, renamed into place, and the
folder fsynced: after a crash the target is either the old file or the whole new one. A file
system fault (disk full, permission denied, I/O error, a directory where a file should be) is a
one-line FileFault naming the file, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from moe_routing.core import contracts
from moe_routing.core.contracts import CONTRACTS, parse_routing_metadata
from moe_routing.core.errors import ContractError, DatasetError, MoeRoutingError
from moe_routing.core.faults import file_fault
from moe_routing.core.footer_check import FOOTER_CHECK_KEYS, FOOTER_LAYOUT_KEY, footer_check, footer_intact, layout

T = TypeVar("T")
# what io adds to the schema metadata itself: dropped on reading, replaced on writing
FOOTER_KEYS = frozenset({*FOOTER_CHECK_KEYS, FOOTER_LAYOUT_KEY})


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _fsync(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as exc:
        # some file systems cannot sync a folder; the file itself was synced
        if not (directory and exc.errno in (errno.EINVAL, errno.ENOTSUP, errno.EBADF)):
            raise
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file and folder under ``root`` (a folder about to be renamed into place)."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder), directory=True)


def fsync_folder(folder: str | os.PathLike) -> None:
    """fsync a folder, so that a rename into it survives a crash."""
    _fsync(Path(folder), directory=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; if the block succeeds, sync it and rename it into place.

    On any failure the temporary file is removed; file-system faults become one-line FileFaults.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
    except OSError as exc:
        raise (file_fault(final, exc, writing=True) or exc) from exc
    tmp_path = Path(tmp)
    try:
        # mkstemp makes 0600 files; outputs should get the usual permissions (umask applies)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, final)
        fsync_folder(final.parent)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        fault = file_fault(final, exc, writing=True)
        if fault is None:
            raise
        raise fault from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _as_arrow(data: pa.Table | pl.DataFrame) -> pa.Table:
    return data.to_arrow() if isinstance(data, pl.DataFrame) else data


def write_parquet(
    data: pa.Table | pl.DataFrame,
    path: str | os.PathLike,
    metadata: dict | None = None,
    contract: str | None = None,
) -> None:
    """Write a table atomically, with page checksums and a footer check.

    ``metadata`` (str or bytes keys/values) is merged into the schema metadata; ``contract``
    checks the table against that contract first (the file's name counts, e.g. an items file's language).
    """
    table = _as_arrow(data)
    merged = {k: v for k, v in (table.schema.metadata or {}).items() if k not in FOOTER_KEYS}
    for k, v in (metadata or {}).items():
        merged[k.encode() if isinstance(k, str) else k] = v.encode() if isinstance(v, str) else v
    if contract is not None:
        _check_columns(table, path, contract, None)
        contracts.check(table.replace_schema_metadata(merged), path, contract)
    merged[FOOTER_LAYOUT_KEY] = json.dumps(layout(table.schema, table.num_rows)).encode()
    check = footer_check(table.schema, table.num_rows, merged)
    merged.update(dict.fromkeys(FOOTER_CHECK_KEYS, check))
    table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, write_page_checksum=True)


def write_tsv(data: pl.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        data.write_csv(tmp, separator="\t")


def _open_for_reading(p: Path):
    try:
        return open(p, "rb")
    except FileNotFoundError:
        raise ContractError(f"{p}: file not found") from None
    except OSError as exc:
        raise (file_fault(p, exc, writing=False) or ContractError(f"{p}: cannot read it ({_one_line(exc)})")) from exc


def read_tsv(
    path: str | os.PathLike, required: list[str] | None = None, rows: dict[str, list[str]] | None = None, **options
) -> pl.DataFrame:
    """A TSV table (``options`` go to ``polars.read_csv``, e.g. ``infer_schema=False`` to keep the
    paper tables' cells as written); a missing, unreadable or malformed file, one cut mid-line (every
    table io writes ends with a newline), one without a ``required`` column, or one without the ``rows``
    it must hold ({column: values}, e.g. a table's metrics: a cut-off last line) is one line naming it."""
    p = Path(path)
    with _open_for_reading(p) as fh:
        try:
            data = fh.read()
        except OSError as exc:
            raise (file_fault(p, exc, writing=False) or exc) from exc
    if data and not data.endswith(b"\n"):
        raise ContractError(f"{p}: its last line is cut off (no final newline); regenerate it")
    try:
        table = pl.read_csv(data, separator="\t", **options)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise ContractError(f"{p}: not a readable TSV table ({_one_line(exc)})") from exc
    missing = [c for c in [*(required or []), *(rows or {})] if c not in table.columns]
    if missing:
        raise ContractError(f"{p}: missing column(s) {missing}; has {table.columns}")
    for column, values in (rows or {}).items():
        have = set(table[column].cast(pl.String).to_list())
        absent = [v for v in values if v not in have]
        if absent:
            raise ContractError(f"{p}: no row with {column} {absent[0]!r} (of {len(absent)} missing); is the file cut short?")
    return table


def _with_parquet(path: str | os.PathLike, use: Callable[[pq.ParquetFile], T]) -> T:
    """Open ``path`` as Parquet with page checksum verification, check its footer, return ``use(file)``.

    Every failure is one line naming the file: ContractError for a missing, damaged or foreign
    file, FileFault when the operating system cannot read it.
    """
    p = Path(path)
    with _open_for_reading(p) as fh:
        try:
            pf = pq.ParquetFile(fh, page_checksum_verification=True)
            if not footer_intact(pf.schema_arrow, pf.metadata.num_rows, pf.metadata.metadata):
                raise ContractError(f"{p}: damaged Parquet file (its footer does not match its checksum); regenerate it")
            return use(pf)
        except MoeRoutingError:
            raise
        except Exception as exc:  # pyarrow raises several types (and UnicodeDecodeError) for damaged files
            fault = file_fault(p, exc, writing=False)
            if fault is not None:
                raise fault from exc
            raise ContractError(f"{p}: damaged or not a Parquet file ({_one_line(exc)})") from exc


def _read_all(pf: pq.ParquetFile) -> pa.Table:
    table = pf.read()
    if table.num_rows != pf.metadata.num_rows:
        raise ValueError(f"read {table.num_rows} rows, the footer says {pf.metadata.num_rows}")
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k not in FOOTER_KEYS}
    return table.replace_schema_metadata(meta or None)


def _check_columns(table: pa.Table, path, contract: str | None, required: list[str] | None) -> None:
    needed = list(required or [])
    if contract is not None:
        needed = [f.name for f in CONTRACTS[contract]] + needed
    missing = [c for c in dict.fromkeys(needed) if c not in table.column_names]
    if missing:
        what = f"the {contract} contract" if contract else "this stage"
        raise ContractError(f"{path}: missing column(s) {missing} required by {what}; has {table.column_names}")


def read_table(path: str | os.PathLike, contract: str | None = None, required: list[str] | None = None) -> pa.Table:
    """Read a Parquet file, verifying its checksums; fail naming the file if it breaks its contract
    (missing columns, the items invariants, the routing arrays: see ``contracts``)."""
    table = _with_parquet(path, _read_all)
    _check_columns(table, Path(path), contract, required)
    contracts.check(table, Path(path), contract)
    return table


def read_frame(path: str | os.PathLike, contract: str | None = None, required: list[str] | None = None) -> pl.DataFrame:
    return pl.from_arrow(read_table(path, contract, required))


def read_schema(path: str | os.PathLike) -> pa.Schema:
    """The Arrow schema (with its metadata) of a Parquet file, from its checked footer alone."""
    return _with_parquet(path, lambda pf: pf.schema_arrow)


def count_rows(path: str | os.PathLike) -> int:
    """Rows of a Parquet file, from its checked footer alone."""
    return _with_parquet(path, lambda pf: pf.metadata.num_rows)


def read_routing_metadata(path: str | os.PathLike) -> dict:
    """model, moe_layers, num_experts, top_k from a generations file's (checked) schema metadata."""
    try:
        meta = parse_routing_metadata(read_schema(path).metadata)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: unreadable routing schema metadata ({_one_line(exc)})") from exc
    missing = [k for k in ("moe_layers", "num_experts", "top_k") if k not in meta]
    if missing:
        raise ContractError(f"{path}: schema metadata lacks {missing}; was it written with routing capture?")
    return meta


def read_json(path: str | os.PathLike, what: str):
    """A small JSON file the workflow wrote (a world summary, a planted truth); one line when it is missing or malformed."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"{p}: {what} not found") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{p}: not valid JSON ({exc.msg})") from exc
