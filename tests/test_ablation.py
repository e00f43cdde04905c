"""Ablation plans (xici, shuffled, random) and metrics on hand-made examples."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from moe_routing.xici.ablation import (
    ablation_metrics,
    derangement,
    make_plan,
    metrics_frame,
)
from moe_routing.core.errors import ContractError, MoeRoutingError
from moe_routing.xici.identify import EXPERTS_SCHEMA

KEPT = [3, 4, 5]
E = 8


def experts_table(sizes: dict[str, int], seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for item, n in sizes.items():
        flat = rng.choice(len(KEPT) * E, n, replace=False)
        for r, f in enumerate(flat, start=1):
            rows.append((item, KEPT[f // E], int(f % E), 0.01, 0.02, 0.1 / r, r))
    return pl.DataFrame(
        rows,
        schema=EXPERTS_SCHEMA,
        orient="row",
    )


def sets_of(plan: pl.DataFrame) -> dict[str, set]:
    return {i: set(zip(g["layer"], g["expert"])) for (i,), g in plan.group_by("item_id")}


def test_derangement_has_no_fixed_points_and_is_seeded():
    for n in (2, 3, 10, 57):
        for seed in range(20):
            p = derangement(n, np.random.default_rng(seed))
            assert sorted(p) == list(range(n)) and not (p == np.arange(n)).any()
    assert (derangement(30, np.random.default_rng(5)) == derangement(30, np.random.default_rng(5))).all()
    with pytest.raises(MoeRoutingError):
        derangement(1, np.random.default_rng(0))


def test_xici_plan_respects_cap_and_contract():
    ex = experts_table({"a": 5, "b": 2, "c": 20})
    plan = make_plan(ex, "xici", 4, 0, KEPT, E)
    assert plan.columns == ["item_id", "layer", "expert", "mode", "strength"]
    assert (plan["mode"] == "deactivate").all() and plan["strength"].is_null().all()
    assert dict(plan.group_by("item_id").len().iter_rows()) == {"a": 4, "b": 2, "c": 4}
    want = ex.filter(pl.col("rank") <= 4)
    assert sets_of(plan) == sets_of(want)
    assert make_plan(ex, "xici", None, 0, KEPT, E).height == 27


def test_shuffled_plan_gives_each_question_another_questions_set():
    sizes = {f"q{i}": i % 5 + 1 for i in range(12)}
    ex = experts_table(sizes, seed=1)
    own = sets_of(make_plan(ex, "xici", 25, 0, KEPT, E))
    sh = sets_of(make_plan(ex, "shuffled", 25, 7, KEPT, E))
    assert set(sh) == set(own)
    donors = {}
    for item, s in sh.items():
        matches = [d for d, o in own.items() if o == s]
        assert matches and item not in matches
        donors[item] = matches[0]
    assert len(set(donors.values())) == len(own)  # a permutation: each set used once
    assert sh == sets_of(make_plan(ex, "shuffled", 25, 7, KEPT, E))
    assert sh != sets_of(make_plan(ex, "shuffled", 25, 8, KEPT, E))


def test_random_plan_sizes_layers_and_seed():
    sizes = {f"q{i}": n for i, n in enumerate([1, 3, 7, 24, 24])}
    ex = experts_table(sizes, seed=2)
    plan = make_plan(ex, "random", 20, 3, KEPT, E)
    got = dict(plan.group_by("item_id").len().iter_rows())
    assert got == {k: min(v, 20) for k, v in sizes.items()}
    assert set(plan["layer"]) <= set(KEPT) and plan["expert"].min() >= 0 and plan["expert"].max() < E
    assert not plan.select(pl.struct("item_id", "layer", "expert").is_duplicated().any()).item()
    assert plan.equals(make_plan(ex, "random", 20, 3, KEPT, E))
    # uniform over the pool: over many questions every kept layer is hit about equally
    big = experts_table({f"r{i}": 4 for i in range(600)}, seed=3)
    counts = make_plan(big, "random", None, 1, KEPT, E).group_by("layer").len()["len"].to_numpy()
    assert np.abs(counts / counts.sum() - 1 / 3).max() < 0.03


def test_plan_rejects_experts_outside_kept_layers():
    ex = experts_table({"a": 3}).with_columns(layer=pl.lit(0, dtype=pl.Int64))
    with pytest.raises(ContractError, match="outside the kept layers"):
        make_plan(ex, "xici", 25, 0, KEPT, E)
    with pytest.raises(MoeRoutingError, match="unknown ablation condition"):
        make_plan(ex, "nope", 25, 0, KEPT, E)


def _judg(rows):
    return pl.DataFrame(rows, schema={"item_id": pl.String, "lang": pl.String, "correct": pl.Boolean}, orient="row")


def test_metrics_on_hand_made_example():
    # q1: en ok->wrong, fr ok->ok, de wrong->wrong ; q2: en ok->wrong, fr wrong->ok ; q3 not in the plan
    original = _judg(
        [("q1", "en", True), ("q1", "fr", True), ("q1", "de", False), ("q2", "en", True), ("q2", "fr", False), ("q3", "en", True)]
    )
    ablated = _judg(
        [
            ("q1", "en", False),
            ("q1", "fr", True),
            ("q1", "de", False),
            ("q2", "en", False),
            ("q2", "fr", True),
            ("q3", "en", False),
        ]
    )
    plan = make_plan(experts_table({"q1": 2, "q2": 3}), "xici", 25, 0, KEPT, E)
    m = ablation_metrics(original, ablated, plan)
    assert m["questions"] == 2 and m["experts_total"] == 5 and m["mean_experts_per_question"] == 2.5
    assert (m["pairs"], m["orig_correct"], m["orig_wrong"], m["broken"], m["gained"]) == (5, 3, 2, 2, 1)
    assert m["asr"] == pytest.approx(2 / 3) and m["sgr"] == pytest.approx(1 / 2)
    assert m["rd"] == pytest.approx(2 / 3 - 1 / 2)
    assert m["now_wrong_everywhere"] == 0
    ablated2 = ablated.with_columns(correct=pl.when(pl.col("item_id") == "q2").then(False).otherwise(pl.col("correct")))
    assert ablation_metrics(original, ablated2, plan)["now_wrong_everywhere"] == 1
    f = metrics_frame([m], {"dataset": "d", "condition": "xici"})
    assert f.row(0, named=True)["broken"] == 2 and f["dataset"].item() == "d"
    with pytest.raises(ContractError, match="lack an ablated judgment"):
        ablation_metrics(original, ablated.filter(pl.col("lang") != "de"), plan)


def test_stages_plan_and_metrics(tmp_path):
    from moe_routing.cli import main
    from moe_routing.core.contracts import routing_metadata
    from moe_routing.core.io import write_parquet

    gen = tmp_path / "gen.parquet"
    write_parquet(
        pl.DataFrame({"item_id": ["q1"], "lang": ["en"]}), gen, metadata=routing_metadata("m", [1, 2, 3, 4, 5, 6, 7], E, 2)
    )
    ex = experts_table({"q1": 3, "q2": 2, "q3": 4})
    write_parquet(ex, tmp_path / "experts.parquet")
    for cond in ("xici", "shuffled", "random"):
        rc = main(
            [
                "ablation-plan",
                "--experts",
                str(tmp_path / "experts.parquet"),
                "--generations",
                str(gen),
                "--condition",
                cond,
                "--cap",
                "3",
                "--seed",
                "1",
                "--exclude-first",
                "2",
                "--exclude-last",
                "2",
                "--out",
                str(tmp_path / f"{cond}.parquet"),
            ]
        )
        assert rc == 0
        plan = pl.read_parquet(tmp_path / f"{cond}.parquet")
        assert plan["item_id"].n_unique() == 3 and set(plan["layer"]) <= set(KEPT)
    orig = _judg([(q, l, (i + j) % 2 == 0) for i, q in enumerate(["q1", "q2", "q3"]) for j, l in enumerate(["en", "fr"])])
    abl = orig.with_columns(correct=pl.lit(False))
    for name, f in (("orig", orig), ("abl", abl)):
        write_parquet(f.with_columns(judge=pl.lit("exact"), detail=pl.lit("")), tmp_path / f"{name}.parquet")
    rc = main(
        [
            "ablation-metrics",
            "--original",
            str(tmp_path / "orig.parquet"),
            "--ablated",
            str(tmp_path / "abl.parquet"),
            "--plan",
            str(tmp_path / "xici.parquet"),
            "--dataset",
            "d",
            "--condition",
            "xici",
            "--cap",
            "3",
            "--out",
            str(tmp_path / "m.tsv"),
        ]
    )
    assert rc == 0
    row = pl.read_csv(tmp_path / "m.tsv", separator="\t").row(0, named=True)
    assert (row["orig_correct"], row["broken"], row["asr"], row["now_wrong_everywhere"], row["cap"]) == (3, 3, 1.0, 3, 3)


def test_degenerate_inputs_give_empty_plans_and_null_rates():
    one = experts_table({"solo": 3})
    assert make_plan(one, "shuffled", 25, 0, KEPT, E).height == 0
    empty = one.filter(pl.col("rank") < 0)
    for cond in ("xici", "shuffled", "random"):
        plan = make_plan(empty, cond, 25, 0, KEPT, E)
        assert plan.height == 0 and plan.columns == ["item_id", "layer", "expert", "mode", "strength"]
    m = ablation_metrics(_judg([("a", "en", True)]), _judg([("a", "en", False)]), make_plan(empty, "xici", 25, 0, KEPT, E))
    assert m["questions"] == 0 and m["pairs"] == 0 and m["asr"] is None and m["rd"] is None


def test_non_boolean_correct_is_rejected():
    plan = make_plan(experts_table({"a": 1}), "xici", 25, 0, KEPT, E)
    bad = pl.DataFrame({"item_id": ["a"], "lang": ["en"], "correct": ["no"]})
    with pytest.raises(ContractError, match="boolean"):
        ablation_metrics(bad, _judg([("a", "en", False)]), plan)
