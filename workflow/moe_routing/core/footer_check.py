"""The footer check of Parquet files written by ``moe_routing.core.io``.

CRC page checksums cover data and dictionary pages, not the footer: a damaged footer that still
parses can rename a column, turn strings into bytes, or change the schema metadata stages trust
(``moe_layers``, ``num_experts``). Two keys of the schema metadata (``FOOTER_CHECK_KEYS``) hold
a SHA-256 of the column names and kinds, the row count and the rest of the schema metadata; two,
so that damage to one key's name cannot switch the check off unseen.

A third key (``FOOTER_LAYOUT_KEY``, covered by the check) records the column names and kinds and the row count
as written. A file that another writer (pyarrow, polars) made from a subset of the rows or columns, copying
the schema metadata, then fails the check only in those: its metadata still matches the recorded layout, and
its columns are among the recorded ones with their kinds. Such a file is a subset, read with the contract
checks (``subset_of_written``), not called damaged; a renamed column, a changed kind or changed metadata is
still damage.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa

FOOTER_CHECK_KEYS = (b"moe_routing:footer_sha256", b"moe_routing:footer_sha256:copy")
FOOTER_LAYOUT_KEY = b"moe_routing:footer_layout"
# written by pyarrow itself (or pandas), not part of what a stage wrote
_UNCHECKED_KEYS = frozenset({b"ARROW:schema", b"pandas", *FOOTER_CHECK_KEYS})


def column_kind(t: pa.DataType) -> str:
    """A column type up to what a Parquet round trip may change (index width, large/small offsets)."""
    if pa.types.is_dictionary(t):
        return column_kind(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    for kind, test in (
        ("int", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("bool", pa.types.is_boolean),
        ("time", pa.types.is_temporal),
        ("decimal", pa.types.is_decimal),
        ("null", pa.types.is_null),
    ):
        if test(t):
            return kind
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        return f"list<{column_kind(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{column_kind(t.key_type)},{column_kind(t.item_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{column_kind(t.field(i).type)}" for i in range(t.num_fields)) + ">"
    return type(t).__name__


def layout(schema: pa.Schema, num_rows: int) -> dict:
    return {"columns": [[f.name, column_kind(f.type)] for f in schema], "rows": int(num_rows)}


def footer_check(schema: pa.Schema, num_rows: int, metadata: dict[bytes, bytes] | None) -> bytes:
    """SHA-256 of what a reader trusts from the footer: column names and kinds, row count, schema metadata."""
    return _digest(layout(schema, num_rows)["columns"], num_rows, metadata)


def _digest(columns: list, num_rows: int, metadata: dict[bytes, bytes] | None) -> bytes:
    h = hashlib.sha256(json.dumps({"columns": columns, "rows": int(num_rows)}).encode())
    for key, value in sorted((metadata or {}).items()):
        if key not in _UNCHECKED_KEYS:
            h.update(len(key).to_bytes(8, "little") + key + len(value).to_bytes(8, "little") + value)
    return h.hexdigest().encode()


def footer_intact(schema: pa.Schema, num_rows: int, metadata: dict[bytes, bytes] | None) -> bool:
    """True when the stored checks agree with the footer, the file has none (not written by io), or it is a
    subset another writer made of a file io wrote (``subset_of_written``)."""
    stored = [(metadata or {}).get(k) for k in FOOTER_CHECK_KEYS]
    if not any(stored) or stored == [footer_check(schema, num_rows, metadata)] * len(stored):
        return True
    return subset_of_written(schema, metadata, stored)


def subset_of_written(schema: pa.Schema, metadata: dict[bytes, bytes] | None, stored: list) -> bool:
    """The metadata is intact for the layout io recorded, and the columns are some of that layout's, kinds unchanged."""
    try:
        written = json.loads((metadata or {})[FOOTER_LAYOUT_KEY])
        columns, rows = [list(c) for c in written["columns"]], int(written["rows"])
    except (KeyError, ValueError, TypeError):
        return False
    if stored != [_digest(columns, rows, metadata)] * len(stored):
        return False
    have = layout(schema, 0)["columns"]
    return all(c in columns for c in have)
