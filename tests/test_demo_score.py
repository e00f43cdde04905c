"""Scoring the demo against its planted truth: precision/recall, ASR rows, routing sets, divergence
separation and the steering interval, on small hand-made tables."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from scipy import stats

from moe_routing.demo import score as ds
from moe_routing.core.errors import ContractError, DatasetError

TRUTH = {
    "schema_version": 1,
    "english": "en",
    "moe_layers": [0, 1, 2, 3],
    "num_experts": 4,
    "facts": [
        {"item_id": "q1", "experts": [[1, 2], [2, 3], [0, 1]]},
        {"item_id": "q2", "experts": [[1, 1], [2, 2]]},
    ],
    "language_experts": [
        {"lang": "en", "layer": 0, "expert": 0},
        {"lang": "de", "layer": 0, "expert": 1},
        {"lang": "de", "layer": 3, "expert": 1},
    ],
    "task_experts": [{"task": "math", "layer": 2, "expert": 0}],
    "divergence_profile": {"0": "language", "1": "shared", "2": "shared", "3": "language"},
}


def test_planted_experts_leave_out_excluded_layers():
    kept = ds.kept_layers(TRUTH, 1, 1)
    assert kept == [1, 2]
    assert ds.planted_experts(TRUTH, kept) == {"q1": {(1, 2), (2, 3)}, "q2": {(1, 1), (2, 2)}}


def test_xici_precision_and_recall_by_cap_are_pooled_over_questions():
    planted = ds.planted_experts(TRUTH, [1, 2])
    experts = pl.DataFrame(
        {
            "item_id": ["q1", "q1", "q1", "q2"],
            "layer": [1, 2, 1, 2],
            "expert": [2, 3, 3, 2],
            "rank": [1, 2, 3, 1],
        }
    )
    table = ds.xici_scores(experts, planted, ["q1", "q2"], [1, 2, 3])
    rows = {r["cap"]: r for r in table.iter_rows(named=True)}
    # cap 1: q1 (1,2) right, q2 (2,2) right: 2 of 2 identified, 2 of 4 planted
    assert (rows[1]["precision"], rows[1]["recall"]) == (1.0, 0.5)
    assert (rows[2]["identified"], rows[2]["both"]) == (3, 3)
    # cap 3 adds (1,3) for q1, which is not planted
    assert rows[3]["precision"] == pytest.approx(3 / 4) and rows[3]["recall"] == pytest.approx(3 / 4)
    with pytest.raises(ContractError, match="q9"):
        ds.xici_scores(experts, planted, ["q9"], [1])


def test_planted_plan_deactivates_each_question_s_planted_experts():
    plan = ds.planted_plan(TRUTH, ["q2", "q1"], [1, 2])
    assert plan.select("item_id", "layer", "expert").rows() == [("q1", 1, 2), ("q1", 2, 3), ("q2", 1, 1), ("q2", 2, 2)]
    assert set(plan["mode"]) == {"deactivate"}


def test_routing_scores_compare_with_the_non_english_language_experts():
    lang = pl.DataFrame({"tau": [0.25, 0.25, 0.5], "layer": [0, 1, 3], "expert": [1, 0, 1]})
    task = pl.DataFrame({"tau": [0.25], "layer": [2], "expert": [0]})
    rows = {(r["section"], r["metric"]): r["value"] for r in ds.routing_scores(TRUTH, lang, task, 0.25, ["de"])}
    assert rows[("language_experts", "found")] == 2 and rows[("language_experts", "planted")] == 2
    assert rows[("language_experts", "precision")] == 0.5 and rows[("language_experts", "recall")] == 0.5
    assert rows[("task_experts", "precision")] == 1.0 and rows[("task_experts", "recall")] == 1.0
    # a language the study did not compare has no planted experts to find
    rows = {(r["section"], r["metric"]): r["value"] for r in ds.routing_scores(TRUTH, lang, task, 0.25, [])}
    assert rows[("language_experts", "planted")] == 0


def test_divergence_is_separated_only_when_every_language_layer_is_above_every_shared_one():
    div = pl.DataFrame(
        {"lang": ["de"] * 4 + ["fr"] * 4, "layer": [0, 1, 2, 3] * 2, "value": [0.5, 0.1, 0.2, 0.4, 0.7, 0.1, 0.0, 0.6]}
    )
    table, separated = ds.divergence_scores(TRUTH, div)
    assert table["role"].to_list() == ["language", "shared", "shared", "language"]
    assert table["divergence"].to_list() == pytest.approx([0.6, 0.1, 0.1, 0.5])
    assert separated
    _, separated = ds.divergence_scores(
        TRUTH, div.with_columns(pl.when(pl.col("layer") == 2).then(0.9).otherwise(pl.col("value")).alias("value"))
    )
    assert not separated


def test_steering_effect_is_a_t_interval_over_questions():
    base = pl.DataFrame(
        {
            "item_id": ["a", "a", "b", "b", "c", "c", "a"],
            "lang": ["de", "fr"] * 3 + ["en"],
            "correct": [False, True, False, False, True, True, False],
        }
    )
    steered = base.with_columns(pl.Series("correct", [True, True, True, False, True, True, True]))
    got = ds.steering_effect(base, steered, "en")
    diffs = [0.5, 0.5, 0.0]  # per question, English left out
    mean = sum(diffs) / 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(diffs) / math.sqrt(3)
    assert got["effect"] == pytest.approx(mean)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((mean - half, mean + half))
    assert got["base"] == pytest.approx(3 / 6) and got["steered"] == pytest.approx(5 / 6)
    with pytest.raises(ContractError, match="no non-English"):
        ds.steering_effect(base.filter(pl.col("lang") == "en"), steered, "en")


def test_scores_table_round_trips_into_the_summary_lines(tmp_path):
    xici = ds.xici_scores(
        pl.DataFrame({"item_id": ["q1"], "layer": [1], "expert": [2], "rank": [1]}),
        ds.planted_experts(TRUTH, [1, 2]),
        ["q1"],
        [5, 25],
    )
    cap_sweep = pl.DataFrame(
        {"dataset": ["d"] * 3, "condition": ["xici", "shuffled", "random"], "cap": [25] * 3, "asr": [0.9, 0.2, 0.05]}
    )
    div = pl.DataFrame({"lang": ["de"] * 4, "layer": [0, 1, 2, 3], "value": [0.5, 0.1, 0.2, 0.4]})
    rows = ds.xici_rows(xici) + ds.ablation_rows(cap_sweep, 25, 1.0, "d")
    rows += ds.divergence_rows(*ds.divergence_scores(TRUTH, div))
    rows += ds.steering_rows({"base": 0.5, "steered": 0.9, "effect": 0.4, "ci_low": 0.3, "ci_high": 0.5, "questions": 8})
    path = tmp_path / "scores.tsv"
    ds.score_frame(rows).write_csv(path, separator="\t")
    back = pl.read_csv(path, separator="\t", schema=ds.SCORE_SCHEMA)
    lines = dict(ds.summary_lines(back, 25))
    assert lines["XICI vs planted experts (precision / recall by cap, α 0.05)"] == "5: 1.00 / 0.50, 25: 1.00 / 0.50"
    assert lines["ASR vs the ceiling (cap 25)"] == "planted experts 100.0 %, XICI 90.0 %, shuffled 20.0 %, random 5.0 %"
    assert lines["divergence vs planted profile (* planted language layers)"].startswith(
        "0*: 0.500, 1: 0.100, 2: 0.200, 3*: 0.400;"
    )
    assert lines["steering effect (non-English, 95 % CI over questions)"] == "0.50 → 0.90: +0.40 [+0.30, +0.50]"


def test_truth_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(DatasetError, match="t.json: planted truth lacks"):
        ds.load_truth(bad)
    bad.write_text(json.dumps({**TRUTH, "schema_version": 2}))
    with pytest.raises(DatasetError, match="schema_version 2"):
        ds.load_truth(bad)
