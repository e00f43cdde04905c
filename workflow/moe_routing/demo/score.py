"""The demo's results scored against the planted truth (``demo_truth``): the pipeline's own error rates.

- **XICI**: per cap of the sweep, precision and recall of the identified experts (``rank <= cap``
  in ``experts.parquet``, found at the configured α) against the planted experts of the same
  questions (the mixed questions; planted experts in excluded layers do not count), pooled over
  questions (micro-averages).
- **Ablation**: the ASR of deactivating each question's planted experts (the ceiling), beside the
  pipeline's XICI, shuffled and random ASR at the main cap, on the same questions (those of the XICI
  plan).
- **Routing study**: the language experts (any language vs English) and task experts it found at
  its τ against the planted non-English language experts and the planted task experts.
- **Divergence**: mean divergence from English per layer beside the planted role of the layer;
  separated when every planted language layer diverges more than every shared layer.
- **Steering**: the mean change of accuracy over the non-English (question, language) pairs with a
  95 % confidence interval: Student's t over questions of each question's mean change.

The table (``truth_scores.tsv``): ``section``, ``metric``, ``cap`` (the XICI cap, else empty), ``layer``
(a model layer, else empty), ``value``. Sections: ``xici`` (per cap: questions, identified, planted,
both, precision, recall), ``ablation`` (``planted_asr``, ``xici_asr``, ``shuffled_asr``,
``random_asr`` at the main cap), ``language_experts`` and ``task_experts`` (found, planted, precision,
recall), ``divergence`` (per layer: ``language`` or ``shared`` holding the mean divergence; then
``separated`` 1 or 0), ``steering`` (base, steered, effect, ci_low, ci_high, questions).
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
from scipy import stats

from moe_routing.core.errors import ContractError, DatasetError
from moe_routing.core.io import read_json

SCORE_SCHEMA = {"section": pl.String, "metric": pl.String, "cap": pl.Int64, "layer": pl.Int64, "value": pl.Float64}
TRUTH_KEYS = ("schema_version", "moe_layers", "num_experts", "facts", "language_experts", "task_experts", "divergence_profile")


def load_truth(path: str | Path) -> dict:
    p = Path(path)
    truth = read_json(p, "planted truth")
    missing = [k for k in TRUTH_KEYS if k not in truth]
    if missing:
        raise DatasetError(f"{p}: planted truth lacks {missing}")
    if truth["schema_version"] != 1:
        raise DatasetError(f"{p}: planted truth schema_version {truth['schema_version']}, this code reads 1")
    return truth


def kept_layers(truth: dict, exclude_first: int, exclude_last: int) -> list[int]:
    layers = list(truth["moe_layers"])
    return layers[exclude_first : len(layers) - exclude_last]


def planted_experts(truth: dict, kept: list[int]) -> dict[str, set[tuple[int, int]]]:
    """item_id -> planted (layer, expert) pairs in the kept layers."""
    keep = set(kept)
    return {f["item_id"]: {(int(lay), int(e)) for lay, e in f["experts"] if int(lay) in keep} for f in truth["facts"]}


def set_scores(found: set, planted: set) -> tuple[int, int, int]:
    """(found, planted, both)."""
    return len(found), len(planted), len(found & planted)


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def xici_scores(experts: pl.DataFrame, planted: dict[str, set], questions: list[str], caps: list[int]) -> pl.DataFrame:
    """Per cap: questions, identified, planted, both, precision, recall (pooled over ``questions``)."""
    for c in ("item_id", "layer", "expert", "rank"):
        if c not in experts.columns:
            raise ContractError(f"experts table lacks column {c!r}")
    unknown = sorted(set(questions) - set(planted))
    if unknown:
        raise ContractError(f"questions without a planted truth: {unknown[:5]}")
    rows = []
    for cap in caps:
        kept = experts.filter(pl.col("rank") <= cap)
        found: dict[str, set] = {}
        for item, layer, expert in kept.select("item_id", "layer", "expert").iter_rows():
            found.setdefault(item, set()).add((int(layer), int(expert)))
        n_found = n_planted = n_both = 0
        for q in questions:
            a, b, c = set_scores(found.get(q, set()), planted[q])
            n_found, n_planted, n_both = n_found + a, n_planted + b, n_both + c
        rows.append(
            {
                "cap": cap,
                "questions": len(questions),
                "identified": n_found,
                "planted": n_planted,
                "both": n_both,
                "precision": _ratio(n_both, n_found),
                "recall": _ratio(n_both, n_planted),
            }
        )
    return pl.DataFrame(rows)


def planted_plan(truth: dict, questions: list[str], kept: list[int]) -> pl.DataFrame:
    """Interventions (deactivate) of each question's planted experts in the kept layers."""
    from moe_routing.xici.ablation import deactivation_plan

    planted = planted_experts(truth, kept)
    ids, layers, experts = [], [], []
    for q in sorted(questions):
        for layer, expert in sorted(planted[q]):
            ids.append(q)
            layers.append(layer)
            experts.append(expert)
    return deactivation_plan(ids, layers, experts)


def routing_scores(
    truth: dict, language_experts: pl.DataFrame, task_experts: pl.DataFrame, tau: float, languages: list[str]
) -> list[dict]:
    """Precision and recall of the routing study's language and task experts at ``tau``; the planted
    language experts are those of the non-English ``languages`` the study compared with English."""
    english = truth.get("english", "en")
    rows = []
    planted_lang = {
        (r["layer"], r["expert"]) for r in truth["language_experts"] if r["lang"] != english and r["lang"] in languages
    }
    planted_task = {(r["layer"], r["expert"]) for r in truth["task_experts"]}
    for kind, frame, planted in (("language", language_experts, planted_lang), ("task", task_experts, planted_task)):
        for c in ("tau", "layer", "expert"):
            if c not in frame.columns:
                raise ContractError(f"{kind} experts table lacks column {c!r}")
        at = frame.filter((pl.col("tau") - tau).abs() < 1e-12)
        found = {(int(a), int(b)) for a, b in at.select("layer", "expert").iter_rows()}
        n_found, n_planted, both = set_scores(found, planted)
        rows += [
            {"section": f"{kind}_experts", "metric": "found", "value": n_found},
            {"section": f"{kind}_experts", "metric": "planted", "value": n_planted},
            {"section": f"{kind}_experts", "metric": "precision", "value": _ratio(both, n_found)},
            {"section": f"{kind}_experts", "metric": "recall", "value": _ratio(both, n_planted)},
        ]
    return rows


def divergence_scores(truth: dict, divergence: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """(layer, role, divergence) with the mean over languages, and whether every planted language
    layer diverges more than every shared layer."""
    profile = {int(k): v for k, v in truth["divergence_profile"].items()}
    mean = divergence.group_by("layer").agg(pl.col("value").mean().alias("divergence")).sort("layer")
    table = mean.with_columns(pl.col("layer").replace_strict(profile, default="unknown").alias("role")).select(
        "layer", "role", "divergence"
    )
    lang = table.filter(pl.col("role") == "language")["divergence"]
    shared = table.filter(pl.col("role") == "shared")["divergence"]
    separated = bool(lang.len() and shared.len() and lang.min() > shared.max())
    return table, separated


def steering_effect(base: pl.DataFrame, steered: pl.DataFrame, english: str, level: float = 0.95) -> dict:
    """Mean change of accuracy over the non-English pairs and its t-interval over questions."""
    keep = pl.col("lang") != english
    pairs = (
        base.filter(keep)
        .select("item_id", "lang", b=pl.col("correct").cast(pl.Float64))
        .join(steered.filter(keep).select("item_id", "lang", s=pl.col("correct").cast(pl.Float64)), on=["item_id", "lang"])
    )
    if pairs.is_empty():
        raise ContractError("steering: no non-English (question, language) pair in both the base and the steered run")
    per_q = pairs.group_by("item_id").agg((pl.col("s") - pl.col("b")).mean().alias("d"))["d"].to_numpy()
    n = len(per_q)
    mean = float(per_q.mean())
    if n > 1:
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * per_q.std(ddof=1) / math.sqrt(n))
    else:
        half = float("nan")
    return {
        "base": float(pairs["b"].mean()),
        "steered": float(pairs["s"].mean()),
        "effect": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "questions": n,
    }


def score_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows as the scores table; values rounded to 6 decimals, so what it shows reads the same on every machine."""
    full = [{"cap": None, "layer": None, **r} for r in rows]
    data = {k: [r[k] for r in full] for k in SCORE_SCHEMA}
    data["value"] = [None if v is None else round(float(v), 6) for v in data["value"]]
    return pl.DataFrame(data, schema=SCORE_SCHEMA)


def xici_rows(table: pl.DataFrame) -> list[dict]:
    out = []
    for r in table.iter_rows(named=True):
        for metric in ("questions", "identified", "planted", "both", "precision", "recall"):
            out.append({"section": "xici", "metric": metric, "cap": int(r["cap"]), "value": float(r[metric])})
    return out


def ablation_rows(cap_sweep: pl.DataFrame, main_cap: int, planted_asr: float | None, dataset: str) -> list[dict]:
    """ASR at the main cap of the planted experts and of each condition of the cap sweep table."""
    rows = [{"section": "ablation", "metric": "planted_asr", "cap": main_cap, "value": planted_asr}]
    at = cap_sweep.filter(pl.col("cap") == main_cap)
    if "dataset" in cap_sweep.columns:
        at = at.filter(pl.col("dataset") == dataset)
    for condition, asr in at.select("condition", "asr").iter_rows():
        rows.append({"section": "ablation", "metric": f"{condition}_asr", "cap": main_cap, "value": asr})
    return rows


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f} %"


def _f2(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def summary_lines(scores: pl.DataFrame, main_cap: int) -> list[tuple[str, str]]:
    """The truth section of summary.md, from the scores table."""

    def get(section: str, metric: str, cap: int | None = None):
        hit = scores.filter((pl.col("section") == section) & (pl.col("metric") == metric))
        hit = hit.filter(pl.col("cap").is_null() if cap is None else pl.col("cap") == cap)
        return hit["value"][0] if hit.height else None

    lines = []
    caps = sorted(set(scores.filter(pl.col("section") == "xici")["cap"].to_list()))
    if caps:
        per_cap = ", ".join(f"{c}: {_f2(get('xici', 'precision', c))} / {_f2(get('xici', 'recall', c))}" for c in caps)
        lines.append(("XICI vs planted experts (precision / recall by cap, α 0.05)", per_cap))
    names = (("planted", "planted experts"), ("xici", "XICI"), ("shuffled", "shuffled"), ("random", "random"))
    asr = [f"{label} {_pct(get('ablation', f'{key}_asr', main_cap))}" for key, label in names]
    if get("ablation", "planted_asr", main_cap) is not None:
        lines.append((f"ASR vs the ceiling (cap {main_cap})", ", ".join(asr)))
    for kind in ("language", "task"):
        if get(f"{kind}_experts", "planted") is not None:
            lines.append(
                (
                    f"routing study's {kind} experts vs planted",
                    f"{int(get(f'{kind}_experts', 'found'))} found, {int(get(f'{kind}_experts', 'planted'))} planted; "
                    f"precision {_f2(get(f'{kind}_experts', 'precision'))}, recall {_f2(get(f'{kind}_experts', 'recall'))}",
                )
            )
    div = scores.filter((pl.col("section") == "divergence") & pl.col("layer").is_not_null()).sort("layer")
    if div.height:
        text = ", ".join(
            f"{layer}{'*' if role == 'language' else ''}: {v:.3f}"
            for role, layer, v in div.select("metric", "layer", "value").iter_rows()
        )
        sep = get("divergence", "separated")
        lines.append(
            (
                "divergence vs planted profile (* planted language layers)",
                f"{text}; planted layers {'above' if sep == 1.0 else 'not all above'} the shared ones",
            )
        )
    if get("steering", "effect") is not None:
        lines.append(
            (
                "steering effect (non-English, 95 % CI over questions)",
                f"{get('steering', 'base'):.2f} → {get('steering', 'steered'):.2f}: "
                f"{get('steering', 'effect'):+.2f} [{get('steering', 'ci_low'):+.2f}, {get('steering', 'ci_high'):+.2f}]",
            )
        )
    return lines


def divergence_rows(table: pl.DataFrame, separated: bool) -> list[dict]:
    rows = [
        {"section": "divergence", "metric": role, "layer": int(layer), "value": float(v)} for layer, role, v in table.iter_rows()
    ]
    rows.append({"section": "divergence", "metric": "separated", "value": 1.0 if separated else 0.0})
    return rows


def steering_rows(effect: dict) -> list[dict]:
    return [{"section": "steering", "metric": k, "value": float(v)} for k, v in effect.items()]


def mixed_questions(xici_summary: pl.DataFrame) -> list[str]:
    if "outcome" not in xici_summary.columns:
        raise ContractError("xici summary lacks column 'outcome'")
    return sorted(xici_summary.filter(pl.col("outcome") == "mixed")["item_id"].to_list())
