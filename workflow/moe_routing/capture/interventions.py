"""Interventions table (ARCHITECTURE.md contract) -> validated frame -> per-batch tensors.

Rows: ``item_id`` (``*`` = every item), ``layer`` (MODEL layer index, must be an MoE layer),
``expert`` (0 <= expert < E), ``mode`` (deactivate | activate | soft), ``strength`` (lambda,
required for soft, ignored otherwise). One (item, layer, expert) may carry one mode only, counting
``*`` rows for every item: conflicting or duplicate rows are an error naming them.
"""

from __future__ import annotations

import math
import os

import polars as pl
import torch

from moe_routing.capture.adapters.base import CompiledPlan
from moe_routing.core.contracts import INTERVENTION_MODES
from moe_routing.core.errors import InterventionError
from moe_routing.core.io import read_frame

ALL_ITEMS = "*"


def read_interventions(path: str | os.PathLike) -> pl.DataFrame:
    """Read and check the interventions contract (columns, modes, strengths); layers are checked by ``validate``."""
    df = read_frame(path, contract="interventions")
    return check_interventions(df, str(path))


def check_interventions(df: pl.DataFrame, source: str = "interventions") -> pl.DataFrame:
    df = df.select("item_id", "layer", "expert", "mode", "strength").with_columns(
        pl.col("item_id").cast(pl.Utf8),
        pl.col("layer").cast(pl.Int64),
        pl.col("expert").cast(pl.Int64),
        pl.col("mode").cast(pl.Utf8),
        pl.col("strength").cast(pl.Float64),
    )
    for i, row in enumerate(df.iter_rows(named=True)):
        where = f"{source}: row {i} ({row})"
        if row["item_id"] is None or row["layer"] is None or row["expert"] is None:
            raise InterventionError(f"{where}: item_id, layer and expert must not be null")
        if row["mode"] not in INTERVENTION_MODES:
            raise InterventionError(f"{where}: mode must be one of {list(INTERVENTION_MODES)}")
        if row["mode"] == "soft":
            s = row["strength"]
            if s is None or not math.isfinite(s):
                raise InterventionError(f"{where}: mode 'soft' needs a finite strength (lambda)")
    dup = df.group_by("item_id", "layer", "expert").len().filter(pl.col("len") > 1)
    if dup.height:
        raise InterventionError(f"{source}: (item_id, layer, expert) given more than once: {dup.head(5).rows()}")
    star = df.filter(pl.col("item_id") == ALL_ITEMS).select("layer", "expert")
    clash = df.filter(pl.col("item_id") != ALL_ITEMS).join(star, on=["layer", "expert"])
    if clash.height:
        raise InterventionError(f"{source}: (layer, expert) given both for '*' and for specific items: {clash.head(5).rows()}")
    return df


def validate(df: pl.DataFrame, moe_layers: list[int], num_experts: int, source: str = "interventions") -> None:
    """Every layer must be an MoE layer of the model and every expert < E."""
    moe = set(int(x) for x in moe_layers)
    for i, row in enumerate(df.iter_rows(named=True)):
        if row["layer"] not in moe:
            raise InterventionError(
                f"{source}: row {i}: layer {row['layer']} is not an MoE layer of this model (MoE layers: {sorted(moe)})"
            )
        if not 0 <= row["expert"] < num_experts:
            raise InterventionError(f"{source}: row {i}: expert {row['expert']} out of range 0..{num_experts - 1}")


def intervened_items(df: pl.DataFrame | None) -> set[str]:
    """Items with at least one item-specific (not ``*``) intervention."""
    if df is None:
        return set()
    return set(df.filter(pl.col("item_id") != ALL_ITEMS)["item_id"].to_list())


def compile_batch(
    df: pl.DataFrame | None, item_ids: list[str], moe_layers: list[int], num_experts: int, eps: torch.Tensor
) -> CompiledPlan | None:
    """Dense per-sequence plan for one batch (sequence s = item_ids[s]); None if nothing applies."""
    if df is None or df.height == 0:
        return None
    pos = {int(layer): p for p, layer in enumerate(moe_layers)}
    wanted = set(item_ids)
    rows = df.filter(pl.col("item_id").is_in(list(wanted)) | (pl.col("item_id") == ALL_ITEMS))
    if rows.height == 0:
        return None
    shape = (len(item_ids), len(moe_layers), num_experts)
    deact = torch.zeros(shape, dtype=torch.bool)
    act = torch.zeros(shape, dtype=torch.bool)
    soft = torch.zeros(shape, dtype=torch.float64)
    seqs_of = {}
    for s, item in enumerate(item_ids):
        seqs_of.setdefault(item, []).append(s)
    every = list(range(len(item_ids)))
    for item, layer, expert, mode, strength in rows.iter_rows():
        seqs = every if item == ALL_ITEMS else seqs_of[item]
        p = pos[int(layer)]
        if mode == "deactivate":
            deact[seqs, p, expert] = True
        elif mode == "activate":
            act[seqs, p, expert] = True
        else:
            soft[seqs, p, expert] = float(strength)
    return CompiledPlan(deactivate=deact, activate=act, soft=soft, eps=eps)
