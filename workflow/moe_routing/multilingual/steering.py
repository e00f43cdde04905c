"""Router steering (routing paper Section 5–6): pick English task experts, evaluate base vs steered.

Plan: experts with Δ > τ (Eq. 3: a task set in English minus the English parallel baseline)
in the configured target layers only, boosted on every item (item_id ``*``) either softly
(``soft``: z_k += λ·std(z)) or hard (``activate``: z_k = max(z) + ε). Layers are model layer
indices (0-based, as in ``moe_layers``); the paper's "(8,35)" is 1-indexed, i.e. 7–34 here.

Table (paper Tables 1–2): per language base accuracy, steered accuracy and their difference,
then the mean over the non-English languages and over a configured low-resource list.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import polars as pl

from moe_routing.core.contracts import INTERVENTIONS
from moe_routing.core.errors import ConfigError, InterventionError

log = logging.getLogger(__name__)

STEER_MODES = ("soft", "activate")
# the paper's words for the modes -> the interventions contract's
MODE_ALIASES = {"hard": "activate", "soft": "soft", "activate": "activate"}


def parse_layers(spec: str | list | None) -> list[int]:
    """'8-35', '8,9,12-14', a list of ints or of such strings → sorted unique model layer indices."""
    if spec is None:
        return []
    items = [str(x) for x in spec] if isinstance(spec, (list, tuple)) else [str(spec)]
    parts = [x for item in items for x in re.split(r"[,\s]+", item.strip()) if x]
    out: set[int] = set()
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError(f"bad layer spec {part!r}: use '8-35' or '8,9,12-14' (model layer indices)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"bad layer range {part!r}: end before start")
        out.update(range(lo, hi + 1))
    return sorted(out)


def comparison_delta(
    specialisation: pl.DataFrame, comparison: str, name: str = "specialisation table"
) -> tuple[np.ndarray, list[int]]:
    """One comparison of analyze's specialisation table -> (Δ as (L, E), the MoE layers)."""
    rows = specialisation.filter(pl.col("comparison") == comparison)
    if rows.height == 0:
        known = sorted(specialisation["comparison"].unique().to_list())
        raise ConfigError(f"{name}: no comparison {comparison!r} (has {known})")
    moe_layers = sorted(set(rows["layer"].to_list()))
    num_experts = int(rows["expert"].max()) + 1
    if rows.height != len(moe_layers) * num_experts:
        raise ConfigError(
            f"{name}: comparison {comparison!r} has {rows.height} rows, not {len(moe_layers)} layers x {num_experts} experts"
        )
    ordered = rows.sort("layer", "expert")
    return ordered["delta"].to_numpy().reshape(len(moe_layers), num_experts), moe_layers


def plan_steering(
    delta: np.ndarray,
    moe_layers: list[int],
    target_layers: list[int],
    tau: float,
    mode: str = "soft",
    strength: float | None = 0.5,
) -> pl.DataFrame:
    """Interventions contract rows for experts with Δ > τ in the target layers, item_id '*'.

    ``delta`` is (L, E) over ``moe_layers``. Raises when a target layer is not an MoE layer or
    when no expert passes (steering with nothing would silently equal the base run).
    """
    if mode not in MODE_ALIASES:
        raise ConfigError(f"steering mode {mode!r}: choose one of {sorted(MODE_ALIASES)}")
    mode = MODE_ALIASES[mode]
    if mode == "soft" and (strength is None or not np.isfinite(strength)):
        raise ConfigError("soft steering needs a strength λ")
    missing = sorted(set(target_layers) - set(moe_layers))
    if missing:
        raise InterventionError(f"target layers {missing} are not MoE layers of this model ({moe_layers})")
    if not target_layers:
        raise ConfigError("no target layers given")
    rows = []
    layer_pos = {int(layer): i for i, layer in enumerate(moe_layers)}
    for layer in sorted(target_layers):
        d = delta[layer_pos[layer]]
        for e in np.flatnonzero(d > tau):
            rows.append((layer, int(e), float(d[e])))
    if not rows:
        best = max(float(delta[layer_pos[layer]].max()) for layer in target_layers)
        raise InterventionError(
            f"no expert has Δ > τ={tau} in target layers {target_layers[0]}–{target_layers[-1]} (largest Δ there is {best:.4f}); lower τ"
        )
    log.info("steering %d expert(s) in %d layer(s), mode %s", len(rows), len({r[0] for r in rows}), mode)
    return pl.DataFrame(
        {
            "item_id": ["*"] * len(rows),
            "layer": [r[0] for r in rows],
            "expert": [r[1] for r in rows],
            "mode": [mode] * len(rows),
            "strength": [float(strength) if mode == "soft" else None for _ in rows],
        },
        schema=dict(zip(INTERVENTIONS.names, [pl.String, pl.Int64, pl.Int64, pl.String, pl.Float64])),
    )


def accuracy_by_lang(judgments: pl.DataFrame) -> dict[str, tuple[float, int, set[str]]]:
    out = {}
    for lang, sub in judgments.group_by("lang"):
        lang = lang[0] if isinstance(lang, tuple) else lang
        out[str(lang)] = (float(sub["correct"].cast(pl.Float64).mean()), sub.height, set(sub["item_id"].to_list()))
    return out


def steering_table(
    base: pl.DataFrame, steered: pl.DataFrame, english: str = "en", low_resource: list[str] | None = None
) -> pl.DataFrame:
    """Rows: each language (English first), then 'non-{english} mean' and 'low-resource mean'.

    Columns: lang, base, steered, difference (steered − base, fractions), n. Base and steered must
    judge the same items per language; means are over languages (as in the paper), not items.
    """
    b, s = accuracy_by_lang(base), accuracy_by_lang(steered)
    if set(b) != set(s):
        raise ConfigError(f"base judgments cover languages {sorted(b)}, steered {sorted(s)}; they must match")
    for lang in b:
        if b[lang][2] != s[lang][2]:
            diff = sorted(b[lang][2] ^ s[lang][2])
            raise ConfigError(f"language {lang}: base and steered judgments cover different items, e.g. {diff[:5]}")
    langs = sorted(b, key=lambda x: (x != english, x))
    rows = [(lang, b[lang][0], s[lang][0], s[lang][0] - b[lang][0], b[lang][1]) for lang in langs]

    def mean_row(name: str, members: list[str]):
        if not members:
            return None
        bb = float(np.mean([b[x][0] for x in members]))
        ss = float(np.mean([s[x][0] for x in members]))
        return (name, bb, ss, ss - bb, len(members))

    others = [x for x in langs if x != english]
    low = [x for x in (low_resource or []) if x in b]
    absent = sorted(set(low_resource or []) - set(b))
    if absent:
        log.warning("low-resource languages %s have no judgments; left out of the low-resource mean", absent)
    for row in (mean_row(f"non-{english} mean", others), mean_row("low-resource mean", low)):
        if row is not None:
            rows.append(row)
    return pl.DataFrame(
        rows,
        schema={"lang": pl.String, "base": pl.Float64, "steered": pl.Float64, "difference": pl.Float64, "n": pl.Int64},
        orient="row",
    )
