"""The file contracts between stages (see ARCHITECTURE.md): pyarrow schemas and the invariants
that ``moe_routing.core.io`` checks whenever a file enters a stage.

Routing arrays are layer-major flat lists: [layer0 experts..., layer1 experts...].
Parquet files that carry routing also carry schema metadata: model, moe_layers,
num_experts, top_k, dtype (see ``routing_metadata``); generations files also say how they were made:
backend, device, load_seconds, generate_seconds (``run_metadata``).

Invariants (rows are counted from 0 in messages):

- items (``check_items``): at least one row; ``item_id`` non-null, non-empty and unique;
  ``prompt`` non-null and not blank; every row's ``lang`` is the file's language, which is
  the file name's stem: items files are ``{lang}.parquet`` (``resources/data/{dataset}/{lang}.parquet``),
  whatever folder they live in.
- routing arrays (``check_routing``, every column of ``ROUTING_COLUMNS`` a file has): each row a
  non-null list of floats of length L*E, or L for the per-layer columns (``PER_LAYER_ROUTING``),
  with L and E from the schema metadata; every value finite, except that ``consistency`` may be
  NaN (never infinite) at a layer where the sequence had fewer than 2 counted tokens (no token
  pair to compare). The accumulator also writes NaN everywhere for a sequence with no counted
  tokens; such a row carries no routing and is rejected.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moe_routing.core.errors import ContractError
from moe_routing.core.footer_check import column_kind

ITEMS_REQUIRED = pa.schema(
    [
        ("item_id", pa.string()),
        ("lang", pa.string()),
        ("prompt", pa.string()),
        ("system", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("choices", pa.list_(pa.string())),
    ]
)
# ``assistant`` (optional when reading: older items files lack it): a reference answer fed as the
# assistant turn after the user turn (teacher forcing, prefill only); null = no assistant turn
ITEMS = pa.schema(list(ITEMS_REQUIRED) + [("assistant", pa.string())])

GENERATIONS_BASE = pa.schema(
    [
        ("item_id", pa.string()),
        ("lang", pa.string()),
        ("output", pa.string()),
        ("prompt_token_ids", pa.list_(pa.int32())),
        ("output_token_ids", pa.list_(pa.int32())),
    ]
)

ROUTING_COLUMNS = pa.schema(
    [
        ("weights", pa.list_(pa.float32())),
        ("softmax_mean", pa.list_(pa.float32())),
        ("freq", pa.list_(pa.float32())),
        ("entropy", pa.list_(pa.float32())),
        ("consistency", pa.list_(pa.float32())),
        # the public code's importance: per token softmax over E, top-k kept and renormalised, mean
        ("topk_mean", pa.list_(pa.float32())),
        # tokens the summaries average over (differs from the token ids under token scope "content")
        ("tokens", pa.int32()),
    ]
)

GENERATIONS = pa.schema(list(GENERATIONS_BASE) + list(ROUTING_COLUMNS))
# routing columns with one value per MoE layer; every other routing column has one per (layer, expert)
PER_LAYER_ROUTING = frozenset({"entropy", "consistency"})
# routing columns that may hold NaN (not inf): consistency of a layer with fewer than 2 counted tokens
NAN_ALLOWED_ROUTING = frozenset({"consistency"})

INTERVENTIONS = pa.schema(
    [
        ("item_id", pa.string()),
        ("layer", pa.int64()),
        ("expert", pa.int64()),
        ("mode", pa.string()),
        ("strength", pa.float64()),
    ]
)
INTERVENTION_MODES = ("deactivate", "activate", "soft")

JUDGMENTS = pa.schema(
    [
        ("item_id", pa.string()),
        ("lang", pa.string()),
        ("correct", pa.bool_()),
        ("judge", pa.string()),
        ("detail", pa.string()),
    ]
)

EXPERTS = pa.schema(
    [
        ("item_id", pa.string()),
        ("layer", pa.int64()),
        ("expert", pa.int64()),
        ("p_value", pa.float64()),
        ("p_adjusted", pa.float64()),
        ("median_diff", pa.float64()),
        ("rank", pa.int64()),
    ]
)

CONTRACTS = {
    "items": ITEMS_REQUIRED,
    "generations": GENERATIONS_BASE,
    "interventions": INTERVENTIONS,
    "judgments": JUDGMENTS,
    "experts": EXPERTS,
}

ROUTING_META_KEYS = ("model", "moe_layers", "num_experts", "top_k")


# keys that describe routing arrays: a generations file without capture leaves them out
ROUTING_KEYS = (b"moe_layers", b"num_experts", b"top_k")


def routing_metadata(
    model: str, moe_layers: list[int], num_experts: int, top_k: int, dtype: str | None = None
) -> dict[bytes, bytes]:
    """Parquet schema metadata for files that carry routing arrays (``dtype``: the weights dtype the model ran in)."""
    meta = {
        b"model": model.encode(),
        b"moe_layers": json.dumps([int(x) for x in moe_layers]).encode(),
        b"num_experts": str(int(num_experts)).encode(),
        b"top_k": str(int(top_k)).encode(),
    }
    if dtype is not None:
        meta[b"dtype"] = dtype.encode()
    return meta


def run_metadata(backend: str, device: str, load_seconds: float, generate_seconds: float) -> dict[bytes, bytes]:
    """How a generations file was made: backend, device, the job's model load (one load serves every file of a
    job) and this file's generation, in seconds (benchmarks/estimate_cluster.py prices runs from them)."""
    return {
        b"backend": backend.encode(),
        b"device": device.encode(),
        b"load_seconds": f"{float(load_seconds):.3f}".encode(),
        b"generate_seconds": f"{float(generate_seconds):.3f}".encode(),
    }


def parse_routing_metadata(meta: dict[bytes, bytes] | None) -> dict:
    """Inverse of ``routing_metadata``; missing keys are left out."""
    meta = meta or {}
    out: dict = {}
    if b"model" in meta:
        out["model"] = meta[b"model"].decode()
    if b"moe_layers" in meta:
        out["moe_layers"] = json.loads(meta[b"moe_layers"])
    if b"num_experts" in meta:
        out["num_experts"] = int(meta[b"num_experts"])
    if b"top_k" in meta:
        out["top_k"] = int(meta[b"top_k"])
    for key in ("dtype", "backend", "device"):
        if key.encode() in meta:
            out[key] = meta[key.encode()].decode()
    for key in ("load_seconds", "generate_seconds"):
        if key.encode() in meta:
            out[key] = float(meta[key.encode()])
    return out


# ---------------------------------------------------------------- invariants


def _row_label(table: pa.Table, row: int) -> str:
    if "item_id" in table.column_names:
        return f"row {row} (item_id {table.column('item_id')[row].as_py()!r})"
    return f"row {row}"


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Index of the first true value of a boolean array (nulls count as false)."""
    hits = np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))
    return int(hits[0]) if hits.size else None


def items_language(path: str | Path) -> str:
    """The language of an items file: its name without ``.parquet``."""
    return Path(path).stem


def check_items(table: pa.Table, name: str | Path) -> None:
    """The items invariants (module docstring); ``name`` is the file, whose stem is its language."""
    if table.num_rows == 0:
        raise ContractError(f"{name}: no rows; an items file needs at least one item")
    for column in ("item_id", "lang", "prompt"):
        kind = table.schema.field(column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
            raise ContractError(f"{name}: column {column!r} must hold strings, has {kind}")
    ids = table.column("item_id")
    row = _first(pc.or_kleene(pc.is_null(ids), pc.equal(pc.utf8_length(ids), 0)))
    if row is not None:
        raise ContractError(f"{name}: column 'item_id', row {row}: missing item id")
    ids_np = np.asarray(ids.to_pylist(), dtype=object)
    _, first_at, counts = np.unique(ids_np, return_index=True, return_counts=True)
    if (counts > 1).any():
        first = np.sort(first_at[counts > 1])[0]
        again = int(np.flatnonzero(ids_np == ids_np[first])[1])
        raise ContractError(f"{name}: column 'item_id', row {again}: duplicate item id {ids_np[first]!r} (first at row {first})")
    lang = items_language(name)
    langs = table.column("lang")
    row = _first(pc.invert(pc.fill_null(pc.equal(langs, lang), False)))
    if row is not None:
        raise ContractError(
            f"{name}: column 'lang', {_row_label(table, row)}: {langs[row].as_py()!r} is not the file's language "
            f"{lang!r} (an items file is named after its language: {{lang}}.parquet)"
        )
    prompts = table.column("prompt")
    row = _first(pc.or_kleene(pc.is_null(prompts), pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(prompts)), 0)))
    if row is not None:
        what = "null" if prompts[row].as_py() is None else "empty"
        raise ContractError(f"{name}: column 'prompt', {_row_label(table, row)}: {what} prompt")


def routing_columns(table: pa.Table | pa.Schema) -> list[str]:
    """The routing arrays (list columns of ROUTING_COLUMNS) a table has."""
    names = table.column_names if isinstance(table, pa.Table) else table.names
    return [f.name for f in ROUTING_COLUMNS if f.name in names and pa.types.is_list(f.type)]


def check_token_counts(table: pa.Table, name: str | Path) -> None:
    """``tokens``, where present: every sequence averaged its summaries over at least one token."""
    if "tokens" not in table.column_names:
        return
    row = _first(pc.invert(pc.fill_null(pc.greater(table.column("tokens"), 0), False)))
    if row is not None:
        raise ContractError(
            f"{name}: column 'tokens', {_row_label(table, row)}: {table.column('tokens')[row].as_py()} counted tokens"
        )


def check_routing(table: pa.Table, name: str | Path) -> None:
    """The routing-array invariants (module docstring) for every routing column ``table`` has."""
    check_token_counts(table, name)
    present = routing_columns(table)
    if not present:
        return
    meta = parse_routing_metadata(table.schema.metadata)
    missing = [k for k in ("moe_layers", "num_experts") if k not in meta]
    if missing:
        raise ContractError(f"{name}: has routing column(s) {present} but its schema metadata lacks {missing}")
    layers, n_experts = list(meta["moe_layers"]), int(meta["num_experts"])
    for column in present:
        per_layer = column in PER_LAYER_ROUTING
        width = len(layers) * (1 if per_layer else n_experts)
        shape = f"{len(layers)} MoE layers" + ("" if per_layer else f" x {n_experts} experts")
        col = table.column(column)
        if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)) or not pa.types.is_floating(col.type.value_type):
            raise ContractError(f"{name}: column {column!r} must hold lists of floats, has {col.type}")
        row = _first(pc.invert(pc.fill_null(pc.equal(pc.list_value_length(col), width), False)))
        if row is not None:
            got = col[row].as_py()
            have = "null" if got is None else f"{len(got)}"
            raise ContractError(
                f"{name}: column {column!r} must hold {width} values per row ({shape} from the schema metadata); "
                f"{_row_label(table, row)} has {have}"
            )
        offset = 0
        for chunk in col.chunks:
            values = chunk.flatten()
            if values.null_count:
                pos = _first(pc.is_null(values))
                raise ContractError(f"{name}: column {column!r}, {_row_label(table, offset + pos // width)}: null value")
            v = values.to_numpy(zero_copy_only=False)
            bad = np.isinf(v) if column in NAN_ALLOWED_ROUTING else ~np.isfinite(v)
            if bad.any():
                pos = int(np.flatnonzero(bad)[0])
                where = f"layer {layers[(pos % width) // (1 if per_layer else n_experts)]}"
                if not per_layer:
                    where += f" expert {pos % n_experts}"
                allowed = " (NaN is allowed there, infinity is not)" if column in NAN_ALLOWED_ROUTING else ""
                raise ContractError(
                    f"{name}: column {column!r}, {_row_label(table, offset + pos // width)}: {float(v[pos])} at {where}{allowed}"
                )
            offset += len(chunk)


# item ids with a meaning of their own: ``*`` is "every item" in an interventions file
RESERVED_ITEM_IDS = frozenset({"*"})


def _same_kind(have: pa.DataType, want: pa.DataType) -> bool:
    """Exact up to widths and offsets: a string is a string (any flavour), an integer any integer, a list a list of that kind."""
    if pa.types.is_null(have):
        return True  # a column of nulls only (an optional column nobody filled): the invariants judge its rows
    return column_kind(have) == column_kind(want)


def check_types(table: pa.Table, name: str | Path, contract: str) -> None:
    """Every column of ``contract`` holds its kind: ``answers`` a list of strings (never one string, whose characters
    would be taken for answers), ``layer`` and ``expert`` integers (never 3.7, never "two"), ``correct`` booleans."""
    for field in CONTRACTS[contract]:
        if field.name in table.column_names:
            have = table.schema.field(field.name).type
            if not _same_kind(have, field.type):
                raise ContractError(f"{name}: column {field.name!r} must hold {column_kind(field.type)}, has {column_kind(have)}")


def check_item_ids(table: pa.Table, name: str | Path) -> None:
    """No reserved id (``*``) as an item's id: an intervention for it would apply to every item."""
    if "item_id" not in table.column_names:
        return
    row = _first(pc.is_in(table.column("item_id"), value_set=pa.array(sorted(RESERVED_ITEM_IDS))))
    if row is not None:
        raise ContractError(
            f"{name}: column 'item_id', row {row}: {table.column('item_id')[row].as_py()!r} is reserved (every item)"
        )


def check_finite_column(table: pa.Table, name: str | Path, column: str) -> None:
    """A float column holds finite numbers or nulls (never NaN or infinity)."""
    if column not in table.column_names or not pa.types.is_floating(table.schema.field(column).type):
        return
    col = table.column(column)
    row = _first(pc.invert(pc.is_finite(col)))
    if row is not None:
        raise ContractError(f"{name}: column {column!r}, {_row_label(table, row)}: {col[row].as_py()} is not finite")


def check(table: pa.Table, name: str | Path, contract: str | None = None) -> None:
    """The column kinds and invariants of ``contract``, and of the routing arrays wherever a file has them."""
    if contract is not None:
        check_types(table, name, contract)
    if contract in ("items", "generations", "judgments"):
        check_item_ids(table, name)
    if contract == "items":
        check_items(table, name)
    if contract == "interventions":
        check_finite_column(table, name, "strength")
    check_routing(table, name)
