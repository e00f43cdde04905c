"""Atomic writing and checked reading of the files that pass between stages."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from moe_routing.contracts import CONTRACTS, parse_routing_metadata
from moe_routing.errors import ContractError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    # mkstemp makes 0600 files; outputs should get the usual permissions (umask applies)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _as_arrow(data: pa.Table | pl.DataFrame) -> pa.Table:
    return data.to_arrow() if isinstance(data, pl.DataFrame) else data


def write_parquet(data: pa.Table | pl.DataFrame, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write a table atomically; ``metadata`` (str or bytes keys/values) is merged into the schema metadata."""
    table = _as_arrow(data)
    if metadata:
        merged = dict(table.schema.metadata or {})
        for k, v in metadata.items():
            merged[k.encode() if isinstance(k, str) else k] = v.encode() if isinstance(v, str) else v
        table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_tsv(data: pl.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        data.write_csv(tmp, separator="\t")


def read_table(path: str | os.PathLike, contract: str | None = None, required: list[str] | None = None) -> pa.Table:
    """Read a Parquet file; fail naming the file and the missing columns if it breaks its contract."""
    p = Path(path)
    if not p.exists():
        raise ContractError(f"{p}: file not found")
    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ContractError(f"{p}: not a readable Parquet file ({exc})") from exc
    needed = list(required or [])
    if contract is not None:
        needed = [f.name for f in CONTRACTS[contract]] + needed
    missing = [c for c in dict.fromkeys(needed) if c not in table.column_names]
    if missing:
        what = f"the {contract} contract" if contract else "this stage"
        raise ContractError(f"{p}: missing column(s) {missing} required by {what}; has {table.column_names}")
    return table


def read_frame(path: str | os.PathLike, contract: str | None = None, required: list[str] | None = None) -> pl.DataFrame:
    return pl.from_arrow(read_table(path, contract, required))


def read_tsv(path: str | os.PathLike, required: list[str] | None = None, text: bool = False) -> pl.DataFrame:
    """Read a TSV table (``text``: every column as written, e.g. the paper tables' cells); fail naming
    the file if it is unreadable or lacks a required column."""
    p = Path(path)
    if not p.exists():
        raise ContractError(f"{p}: file not found")
    try:
        table = pl.read_csv(p, separator="\t", infer_schema=not text)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ContractError(f"{p}: not a readable TSV table ({exc})") from exc
    missing = [c for c in required or [] if c not in table.columns]
    if missing:
        raise ContractError(f"{p}: missing column(s) {missing}; has {table.columns}")
    return table


def read_routing_metadata(path: str | os.PathLike) -> dict:
    """model, moe_layers, num_experts, top_k from a generations file's schema metadata."""
    meta = parse_routing_metadata(pq.read_schema(path).metadata)
    missing = [k for k in ("moe_layers", "num_experts", "top_k") if k not in meta]
    if missing:
        raise ContractError(f"{path}: schema metadata lacks {missing}; was it written with routing capture?")
    return meta
