"""Causal-ablation plans and metrics (METHOD XICI steps 10-12).

Plans are interventions-contract frames (item_id, layer, expert, mode='deactivate', strength=null):

- ``xici``: each question deactivates its own experts (``rank <= cap``), all together;
- ``shuffled``: question i gets the experts of question pi(i), pi a seeded uniform random
  derangement over the questions with experts (no question keeps its own set);
- ``random``: question i gets a same-size set drawn uniformly without replacement from all
  experts of the kept layers (seeded), as the paper's baseline ("not from the excluded layers").

Metrics are over the (question, language) pairs of the plan's questions: ASR (originally correct,
now wrong / originally correct), SGR (originally wrong, now correct / originally wrong), RD = ASR
- SGR, and the number of questions wrong in every language after ablation.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import polars as pl

from moe_routing.core.errors import ContractError, MoeRoutingError

log = logging.getLogger(__name__)

CONDITIONS = ("xici", "shuffled", "random")

INTERVENTION_SCHEMA = {
    "item_id": pl.String,
    "layer": pl.Int64,
    "expert": pl.Int64,
    "mode": pl.String,
    "strength": pl.Float64,
}


def deactivation_plan(item_ids: Sequence[str], layers: Sequence[int], experts: Sequence[int]) -> pl.DataFrame:
    n = len(item_ids)
    return pl.DataFrame(
        {
            "item_id": list(item_ids),
            "layer": np.asarray(layers, dtype=np.int64),
            "expert": np.asarray(experts, dtype=np.int64),
            "mode": ["deactivate"] * n,
            "strength": [None] * n,
        },
        schema=INTERVENTION_SCHEMA,
    )


def capped_sets(experts: pl.DataFrame, cap: int | None) -> dict[str, np.ndarray]:
    """item_id -> (n, 2) array of (layer, expert) with rank <= cap, items sorted by id."""
    for c in ("item_id", "layer", "expert", "rank"):
        if c not in experts.columns:
            raise ContractError(f"experts table lacks column {c!r}")
    if cap is not None:
        if cap < 1:
            raise MoeRoutingError(f"cap must be >= 1, got {cap}")
        experts = experts.filter(pl.col("rank") <= cap)
    out = {}
    for (item,), g in experts.sort("item_id", "rank").group_by("item_id", maintain_order=True):
        out[str(item)] = g.select("layer", "expert").to_numpy().astype(np.int64)
    return out


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random permutation without fixed points (rejection; ~e tries on average)."""
    if n == 1:
        raise MoeRoutingError("a derangement needs at least 2 questions with experts (got 1)")
    while True:
        perm = rng.permutation(n)
        if n == 0 or not (perm == np.arange(n)).any():
            return perm


def plan_xici(experts: pl.DataFrame, cap: int | None = None) -> pl.DataFrame:
    sets = capped_sets(experts, cap)
    items = [i for i, s in sets.items() for _ in range(len(s))]
    pairs = np.concatenate(list(sets.values())) if sets else np.zeros((0, 2), np.int64)
    return deactivation_plan(items, pairs[:, 0], pairs[:, 1])


def plan_shuffled(experts: pl.DataFrame, cap: int | None, seed: int) -> pl.DataFrame:
    sets = capped_sets(experts, cap)
    ids = list(sets)
    if len(ids) < 2:
        # no derangement of a single question exists: the baseline is empty, not an error in the data
        log.warning("shuffled baseline: %d question(s) with experts, need 2; writing an empty plan", len(ids))
        return deactivation_plan([], [], [])
    perm = derangement(len(ids), np.random.default_rng(seed))
    items, layers, exps = [], [], []
    for i, item in enumerate(ids):
        donor = sets[ids[perm[i]]]
        items += [item] * len(donor)
        layers += donor[:, 0].tolist()
        exps += donor[:, 1].tolist()
    return deactivation_plan(items, layers, exps)


def plan_random(experts: pl.DataFrame, cap: int | None, seed: int, kept_layers: Sequence[int], num_experts: int) -> pl.DataFrame:
    """Same-size sets, uniform without replacement over kept_layers (model indices) x num_experts."""
    if not len(kept_layers):
        raise MoeRoutingError("no kept layers to draw random experts from")
    sets = capped_sets(experts, cap)
    pool = len(kept_layers) * num_experts
    rng = np.random.default_rng(seed)
    kept = np.asarray(kept_layers, dtype=np.int64)
    items, layers, exps = [], [], []
    for item, s in sets.items():
        if len(s) > pool:
            raise MoeRoutingError(f"question {item!r} has {len(s)} experts, more than the {pool} in the kept layers")
        flat = np.sort(rng.choice(pool, size=len(s), replace=False))
        items += [item] * len(s)
        layers += kept[flat // num_experts].tolist()
        exps += (flat % num_experts).tolist()
    return deactivation_plan(items, layers, exps)


def make_plan(
    experts: pl.DataFrame,
    condition: str,
    cap: int | None,
    seed: int,
    kept_layers: Sequence[int],
    num_experts: int,
) -> pl.DataFrame:
    if condition == "xici":
        plan = plan_xici(experts, cap)
    elif condition == "shuffled":
        plan = plan_shuffled(experts, cap, seed)
    elif condition == "random":
        plan = plan_random(experts, cap, seed, kept_layers, num_experts)
    else:
        raise MoeRoutingError(f"unknown ablation condition {condition!r}; expected one of {CONDITIONS}")
    kept = set(int(x) for x in kept_layers)
    if condition != "random" and plan.height:
        bad = plan.filter(~pl.col("layer").is_in(sorted(kept)) | (pl.col("expert") >= num_experts) | (pl.col("expert") < 0))
        if bad.height:
            r = bad.row(0, named=True)
            raise ContractError(
                f"experts table names layer {r['layer']} expert {r['expert']} (item {r['item_id']!r}), "
                f"outside the kept layers {sorted(kept)} x {num_experts} experts"
            )
    return plan


METRIC_SCHEMA = {
    "questions": pl.Int64,
    "experts_total": pl.Int64,
    "mean_experts_per_question": pl.Float64,
    "pairs": pl.Int64,
    "orig_correct": pl.Int64,
    "orig_wrong": pl.Int64,
    "broken": pl.Int64,
    "gained": pl.Int64,
    "asr": pl.Float64,
    "sgr": pl.Float64,
    "rd": pl.Float64,
    "now_wrong_everywhere": pl.Int64,
}


def ablation_metrics(original: pl.DataFrame, ablated: pl.DataFrame, plan: pl.DataFrame) -> dict:
    """Metrics over every (question, language) of the plan's questions that has an original judgment.

    ``original``/``ablated``: item_id, lang, correct (ablated may hold other questions: ignored).
    An original pair of a planned question without an ablated judgment is an error.
    Rates with an empty denominator are None.
    """
    for name, f in (("original", original), ("ablated", ablated)):
        for c in ("item_id", "lang", "correct"):
            if c not in f.columns:
                raise ContractError(f"{name} judgments lack column {c!r}")
        if f.schema["correct"] != pl.Boolean:
            raise ContractError(f"{name} judgments: column 'correct' must be boolean, got {f.schema['correct']}")
        if f.select(pl.struct("item_id", "lang").is_duplicated().any()).item():
            raise ContractError(f"{name} judgments have duplicate (item_id, lang) rows")
    sizes = plan.group_by("item_id").len(name="n_experts")
    items = sizes["item_id"]
    orig = original.filter(pl.col("item_id").is_in(items.implode())).select("item_id", "lang", orig=pl.col("correct"))
    missing_q = set(items) - set(orig["item_id"])
    if missing_q:
        raise ContractError(f"plan questions without original judgments: {sorted(missing_q)[:5]}")
    pairs = orig.join(ablated.select("item_id", "lang", now=pl.col("correct")), on=["item_id", "lang"], how="left")
    lost = pairs.filter(pl.col("now").is_null())
    if lost.height:
        r = lost.row(0, named=True)
        raise ContractError(
            f"{lost.height} planned (question, language) pair(s) lack an ablated judgment, e.g. "
            f"item_id={r['item_id']!r} lang={r['lang']!r}"
        )
    oc = int(pairs["orig"].sum())
    ow = pairs.height - oc
    broken = int((pairs["orig"] & ~pairs["now"]).sum())
    gained = int((~pairs["orig"] & pairs["now"]).sum())
    asr = broken / oc if oc else None
    sgr = gained / ow if ow else None
    dead = pairs.group_by("item_id").agg(pl.col("now").any().alias("any_now"))
    n_q = sizes.height
    return {
        "questions": n_q,
        "experts_total": plan.height,
        "mean_experts_per_question": plan.height / n_q if n_q else None,
        "pairs": pairs.height,
        "orig_correct": oc,
        "orig_wrong": ow,
        "broken": broken,
        "gained": gained,
        "asr": asr,
        "sgr": sgr,
        "rd": asr - sgr if asr is not None and sgr is not None else None,
        "now_wrong_everywhere": int((~dead["any_now"]).sum()),
    }


def metrics_frame(rows: list[dict], keys: dict | None = None) -> pl.DataFrame:
    """Metric dicts as a frame; ``keys`` (e.g. dataset, condition, cap) are prepended to every row."""
    keys = keys or {}
    data = [{**keys, **r} for r in rows]
    schema = {
        k: (pl.Int64 if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else pl.String) for k, v in keys.items()
    }
    return pl.DataFrame(data, schema={**schema, **METRIC_SCHEMA}, orient="row")
