"""The file contracts between stages (see ARCHITECTURE.md), as pyarrow schemas.

Routing arrays are layer-major flat lists: [layer0 experts..., layer1 experts...].
Parquet files that carry routing also carry schema metadata: model, moe_layers,
num_experts, top_k (see ``routing_metadata``).
"""

from __future__ import annotations

import json

import pyarrow as pa

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


def routing_metadata(model: str, moe_layers: list[int], num_experts: int, top_k: int) -> dict[bytes, bytes]:
    """Parquet schema metadata for files that carry routing arrays."""
    return {
        b"model": model.encode(),
        b"moe_layers": json.dumps([int(x) for x in moe_layers]).encode(),
        b"num_experts": str(int(num_experts)).encode(),
        b"top_k": str(int(top_k)).encode(),
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
    return out
