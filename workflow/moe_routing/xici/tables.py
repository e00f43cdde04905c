"""Paper tables as TSV: Table 1 (question outcomes) and Table 2 (XICI ablation), XICI paper.

Layout of both tables: one row per metric, one column per dataset (in the order given).
Columns: ``row`` (1..n; for Table 2 the paper's row number, plus rows 17-18 that the paper lacks),
``metric`` (a stable key), ``label`` (the paper's wording), then one column per dataset, and
for Table 2 a ``total`` column. Cells are text: counts as integers, rates as fractions with six
decimals (0.480000 = 48.0 %), mean experts per question with four decimals, and an empty cell
where a value does not exist (no English, a missing condition, a total that is not a sum).

Table 1 rows: questions, languages, english_accuracy, mean_accuracy (mean over languages of
per-language accuracy), all_correct, all_incorrect, mixed.

Table 2 rows (METHOD XICI step 13): 1 mixed questions, 2 languages (most languages a question
has), 3 blacklisted experts, 4 questions with experts, 5 mean experts per question, 6 originally
correct (question, language) pairs, 7-10 XICI ASR, SGR, RD, questions now wrong in every
language, 11-13 shuffled baseline ASR, SGR, RD, 14-16 random baseline ASR, SGR, RD, 17-18
now-wrong-everywhere for the shuffled and random baselines. Totals pool the pairs of all datasets
(ASR = sum broken / sum originally correct), the way the paper's Total column does; languages
and blacklist size have no total.
"""

from __future__ import annotations

from typing import Mapping

import polars as pl

from moe_routing.core.errors import ContractError, MoeRoutingError
from moe_routing.xici.identify import question_outcomes


def _fmt(v, kind: str) -> str | None:
    if v is None:
        return None  # written as an empty cell
    if kind == "int":
        return str(int(v))
    if kind == "mean":
        return f"{float(v):.4f}"
    return f"{float(v):.6f}"


def _frame(spec: list[tuple[str, str, str, str]], columns: list[str], values: dict[str, dict[str, object]]) -> pl.DataFrame:
    """spec: (row, metric, label, kind); values: column -> metric -> value."""
    data = {"row": [s[0] for s in spec], "metric": [s[1] for s in spec], "label": [s[2] for s in spec]}
    for col in columns:
        data[col] = [_fmt(values[col].get(m), kind) for _, m, _, kind in spec]
    return pl.DataFrame(data, schema={k: pl.String for k in data})


OUTCOME_ROWS = [
    ("1", "questions", "Num. Questions", "int"),
    ("2", "languages", "Num. Languages", "int"),
    ("3", "english_accuracy", "English Acc", "rate"),
    ("4", "mean_accuracy", "Avg. Acc", "rate"),
    ("5", "all_correct", "All Correct", "int"),
    ("6", "all_incorrect", "All Incorrect", "int"),
    ("7", "mixed", "Mixed Results", "int"),
]


def outcome_values(judgments: pl.DataFrame, english: str = "en") -> dict[str, object]:
    """Table 1 values of one dataset from its judgments (item_id, lang, correct)."""
    if judgments.height == 0:
        raise MoeRoutingError("no judgments for this dataset")
    if judgments["correct"].null_count():
        raise ContractError("judgments have null 'correct' values")
    per_lang = judgments.group_by("lang").agg(acc=pl.col("correct").cast(pl.Float64).mean())
    eng = per_lang.filter(pl.col("lang") == english)
    out = question_outcomes(judgments)
    counts = {k: int((out["outcome"] == k).sum()) for k in ("all_correct", "all_incorrect", "mixed")}
    return {
        "questions": out.height,
        "languages": per_lang.height,
        "english_accuracy": eng["acc"].item() if eng.height else None,
        "mean_accuracy": float(per_lang["acc"].mean()),
        **counts,
    }


def outcome_table(judgments: Mapping[str, pl.DataFrame], english: str = "en") -> pl.DataFrame:
    """Paper Table 1 for one model; ``judgments``: dataset -> judgments frame (dict order = columns)."""
    values = {name: outcome_values(j, english) for name, j in judgments.items()}
    return _frame(OUTCOME_ROWS, list(judgments), values)


ABLATION_ROWS = [
    ("1", "mixed_questions", "Num. Q's w/ Inconsistency", "int"),
    ("2", "languages", "Num. Languages", "int"),
    ("3", "blacklisted_experts", "Blacklisted experts", "int"),
    ("4", "questions_with_experts", "Num. Q's w/ Experts ID'd", "int"),
    ("5", "mean_experts_per_question", "Avg. Experts ID'd per Q", "mean"),
    ("6", "orig_correct_pairs", "Orig. Correct {lang, Q}", "int"),
    ("7", "xici_asr", "XICI: Ablation Success Rate", "rate"),
    ("8", "xici_sgr", "XICI: Spurious Gain Rate", "rate"),
    ("9", "xici_rd", "XICI: Rate Difference", "rate"),
    ("10", "xici_now_wrong_everywhere", "XICI: Num Q's All Incorrect", "int"),
    ("11", "shuffled_asr", "Question shuffling: Ablation Success Rate", "rate"),
    ("12", "shuffled_sgr", "Question shuffling: Spurious Gain Rate", "rate"),
    ("13", "shuffled_rd", "Question shuffling: Rate Difference", "rate"),
    ("14", "random_asr", "Random same-size set: Ablation Success Rate", "rate"),
    ("15", "random_sgr", "Random same-size set: Spurious Gain Rate", "rate"),
    ("16", "random_rd", "Random same-size set: Rate Difference", "rate"),
    ("17", "shuffled_now_wrong_everywhere", "Question shuffling: Num Q's All Incorrect", "int"),
    ("18", "random_now_wrong_everywhere", "Random same-size set: Num Q's All Incorrect", "int"),
]

# ablation metrics that add up over datasets (or caps); the rates are recomputed from the sums
SUMMED_METRICS = ("questions", "experts_total", "orig_correct", "orig_wrong", "broken", "gained", "now_wrong_everywhere")
_SUMMED = SUMMED_METRICS


def rates(m: Mapping) -> tuple[float | None, float | None, float | None]:
    """ASR, SGR and their difference from (pooled) counts; None where a denominator is 0."""
    oc, ow = m["orig_correct"], m["orig_wrong"]
    asr = m["broken"] / oc if oc else None
    sgr = m["gained"] / ow if ow else None
    return asr, sgr, (asr - sgr if asr is not None and sgr is not None else None)


def _condition_values(prefix: str, m: Mapping | None) -> dict[str, object]:
    if m is None:
        return {}
    asr, sgr, rd = rates(m)
    return {
        f"{prefix}_asr": asr,
        f"{prefix}_sgr": sgr,
        f"{prefix}_rd": rd,
        f"{prefix}_now_wrong_everywhere": m["now_wrong_everywhere"],
    }


def _metrics_by(metrics: pl.DataFrame) -> dict[tuple[str, str], dict]:
    need = ("dataset", "condition") + _SUMMED
    missing = [c for c in need if c not in metrics.columns]
    if missing:
        raise ContractError(f"ablation metrics lack column(s) {missing}")
    dup = metrics.filter(pl.struct("dataset", "condition").is_duplicated())
    if dup.height:
        r = dup.row(0, named=True)
        raise ContractError(
            f"several ablation metrics rows for dataset={r['dataset']!r} condition={r['condition']!r} "
            "(different caps? select one cap)"
        )
    return {(r["dataset"], r["condition"]): r for r in metrics.iter_rows(named=True)}


def ablation_values(summary: pl.DataFrame, blacklist_size: int | None, by_condition: Mapping[str, Mapping]) -> dict:
    """Table 2 values of one dataset; ``by_condition``: condition -> metrics row (ablation.ablation_metrics)."""
    for c in ("outcome", "n_langs"):
        if c not in summary.columns:
            raise ContractError(f"xici summary lacks column {c!r}")
    x = by_condition.get("xici")
    v = {
        "mixed_questions": int((summary["outcome"] == "mixed").sum()),
        "languages": int(summary["n_langs"].max()) if summary.height else 0,
        "blacklisted_experts": blacklist_size,
        "questions_with_experts": x["questions"] if x else None,
        "mean_experts_per_question": (x["experts_total"] / x["questions"] if x and x["questions"] else None),
        "orig_correct_pairs": x["orig_correct"] if x else None,
    }
    for cond in ("xici", "shuffled", "random"):
        v.update(_condition_values(cond, by_condition.get(cond)))
    return v


def ablation_table(
    summaries: Mapping[str, pl.DataFrame], blacklist_sizes: Mapping[str, int], metrics: pl.DataFrame
) -> pl.DataFrame:
    """Paper Table 2 for one model: rows 1-18, a column per dataset (order of ``summaries``) and ``total``."""
    if "total" in summaries:
        raise MoeRoutingError("a dataset may not be called 'total' (the name of the total column)")
    by = _metrics_by(metrics)
    unknown = sorted({d for d, _ in by} - set(summaries))
    if unknown:
        raise ContractError(f"ablation metrics name dataset(s) {unknown} that have no xici summary")
    values, totals = {}, {}
    for name, summary in summaries.items():
        conds = {c: by[(name, c)] for (d, c) in by if d == name}
        values[name] = ablation_values(summary, blacklist_sizes.get(name), conds)
    pooled: dict[str, dict] = {}
    for cond in ("xici", "shuffled", "random"):
        rows = [by[(d, cond)] for d in summaries if (d, cond) in by]
        if rows:
            pooled[cond] = {k: sum(int(r[k]) for r in rows) for k in _SUMMED}
    totals = ablation_values(pl.concat([s.select("outcome", "n_langs") for s in summaries.values()]), None, pooled)
    totals["languages"] = None
    values["total"] = totals
    return _frame(ABLATION_ROWS, list(summaries) + ["total"], values)
