"""Small files in every contract a stage reads, written through moe_routing.core.io (safety tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from moe_routing.core.contracts import ITEMS, routing_metadata
from moe_routing.core.io import write_parquet

MOE_LAYERS = [1, 2, 3, 4]
E, TOP_K = 8, 2


def items_table(lang: str, n: int = 12) -> pa.Table:
    rows = [
        {
            "item_id": f"q{i}",
            "lang": lang,
            "prompt": f"Question {i} in {lang}?",
            "system": None,
            "answers": [f"a{i}"],
            "choices": None,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=ITEMS)


def routing_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """Per-sequence routing summaries shaped like the accumulator's: (n, L*E) and (n, L)."""
    rng = np.random.default_rng(seed)
    L = len(MOE_LAYERS)
    logits = rng.normal(size=(n, L, E))
    soft = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    top = np.argsort(-soft, axis=-1)[..., :TOP_K]
    freq = np.zeros_like(soft)
    np.put_along_axis(freq, top, 1.0, axis=-1)
    weights = freq * soft / (freq * soft).sum(-1, keepdims=True)
    return {
        "weights": weights.reshape(n, -1),
        "softmax_mean": soft.reshape(n, -1),
        "freq": freq.reshape(n, -1),
        "entropy": -(soft * np.log(soft)).sum(-1),
        "consistency": rng.uniform(0.2, 0.8, size=(n, L)),
    }


def generations_table(lang: str, n: int = 12, seed: int = 0, arrays: dict | None = None) -> pa.Table:
    arrays = routing_arrays(n, seed) if arrays is None else arrays
    data = {
        "item_id": [f"q{i}" for i in range(n)],
        "lang": [lang] * n,
        "output": [f"a{i}" if (i + seed) % 3 else "wrong" for i in range(n)],
        "prompt_token_ids": pa.array([list(range(5 + i % 4)) for i in range(n)], type=pa.list_(pa.int32())),
        "output_token_ids": pa.array([[7, 8] for _ in range(n)], type=pa.list_(pa.int32())),
    }
    for key, values in arrays.items():
        data[key] = pa.array([np.asarray(v, dtype=np.float32).reshape(-1) for v in values], type=pa.list_(pa.float32()))
    return pa.table(data).replace_schema_metadata(routing_metadata("synthetic", MOE_LAYERS, E, TOP_K))


def judgments_table(lang: str, n: int = 12, seed: int = 0) -> pa.Table:
    correct = [bool((i + seed) % 3) for i in range(n)]
    return pa.table(
        {
            "item_id": [f"q{i}" for i in range(n)],
            "lang": [lang] * n,
            "correct": correct,
            "judge": ["exact"] * n,
            "detail": [""] * n,
        }
    )


def write_study(root: Path, langs=("en", "de", "sw"), n: int = 12) -> dict[str, dict[str, Path]]:
    """items/{lang}, generations/{lang}, judgments/{lang} for a few languages; returns kind -> lang -> path."""
    paths: dict[str, dict[str, Path]] = {"items": {}, "generations": {}, "judgments": {}}
    for seed, lang in enumerate(langs):
        for kind, table in (
            ("items", items_table(lang, n)),
            ("generations", generations_table(lang, n, seed)),
            ("judgments", judgments_table(lang, n, seed)),
        ):
            paths[kind][lang] = root / kind / f"{lang}.parquet"
            write_parquet(table, paths[kind][lang])
    return paths
