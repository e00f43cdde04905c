"""The file contracts between stages (see ARCHITECTURE.md), as pyarrow schemas.

Routing arrays are layer-major flat lists: [layer0 experts..., layer1 experts...].
Parquet files that carry routing also carry schema metadata: model, moe_layers,
num_experts, top_k, dtype (see ``routing_metadata``); generations files also say how they were made:
backend, device, load_seconds, generate_seconds (``run_metadata``).
"""

from __future__ import annotations

import json

import pyarrow as pa

ITEMS = pa.schema(
    [
        ("item_id", pa.string()),
        ("lang", pa.string()),
        ("prompt", pa.string()),
        ("system", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("choices", pa.list_(pa.string())),
    ]
)

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
    ]
)

GENERATIONS = pa.schema(list(GENERATIONS_BASE) + list(ROUTING_COLUMNS))

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
    "items": ITEMS,
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
