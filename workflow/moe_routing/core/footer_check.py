"""The footer check of Parquet files written by ``moe_routing.core.io``.

CRC page checksums cover data and dictionary pages, not the footer: a damaged footer that still
parses can rename a column, turn strings into bytes, or change the schema metadata stages trust
(``moe_layers``, ``num_experts``). Two keys of the schema metadata (``FOOTER_CHECK_KEYS``) hold
a SHA-256 of the column names and kinds, the row count and the rest of the schema metadata; two,
so that damage to one key's name cannot switch the check off unseen.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa

FOOTER_CHECK_KEYS = (b"moe_routing:footer_sha256", b"moe_routing:footer_sha256:copy")
# written by pyarrow itself (or pandas), not part of what a stage wrote
_UNCHECKED_KEYS = frozenset({b"ARROW:schema", b"pandas", *FOOTER_CHECK_KEYS})


def _kind(t: pa.DataType) -> str:
    """A column type up to what a Parquet round trip may change (index width, large/small offsets)."""
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
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
        return f"list<{_kind(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{_kind(t.key_type)},{_kind(t.item_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{_kind(t.field(i).type)}" for i in range(t.num_fields)) + ">"
    return type(t).__name__


def footer_check(schema: pa.Schema, num_rows: int, metadata: dict[bytes, bytes] | None) -> bytes:
    """SHA-256 of what a reader trusts from the footer: column names and kinds, row count, schema metadata."""
    columns = [[f.name, _kind(f.type)] for f in schema]
    h = hashlib.sha256(json.dumps({"columns": columns, "rows": int(num_rows)}).encode())
    for key, value in sorted((metadata or {}).items()):
        if key not in _UNCHECKED_KEYS:
            h.update(len(key).to_bytes(8, "little") + key + len(value).to_bytes(8, "little") + value)
    return h.hexdigest().encode()


def footer_intact(schema: pa.Schema, num_rows: int, metadata: dict[bytes, bytes] | None) -> bool:
    """True when the stored checks agree with the footer, or the file has none (not written by io)."""
    stored = [(metadata or {}).get(k) for k in FOOTER_CHECK_KEYS]
    return not any(stored) or stored == [footer_check(schema, num_rows, metadata)] * len(stored)
