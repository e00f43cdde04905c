"""Paper Tables 1 and 2: every cell recomputed here from the inputs, independently of tables.py."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from moe_routing.cli import main
from moe_routing.core.errors import ContractError
from moe_routing.core.io import write_parquet

LANGS = ["en", "de", "fr", "sw"]


def judgments(seed: int, n_q: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    acc = rng.uniform(0, 1, n_q)
    acc[:2] = [1.0, 0.0]  # one all-correct and one all-incorrect question
    rows = [(f"q{q}", l, bool(rng.random() < acc[q])) for q in range(n_q) for l in LANGS]
    return pl.DataFrame(rows, schema={"item_id": pl.String, "lang": pl.String, "correct": pl.Boolean}, orient="row")


def read_tsv(path) -> dict[str, dict[str, str]]:
    t = pl.read_csv(path, separator="\t", infer_schema=False)
    return {r["metric"]: r for r in t.iter_rows(named=True)}


def num(cell):
    return None if cell in (None, "") else float(cell)


def test_outcome_table_stage(tmp_path):
    data = {"alpha": judgments(1, 20), "beta": judgments(2, 15)}
    args = ["outcome-table", "--english", "en", "--out", str(tmp_path / "t1.tsv")]
    for name, j in data.items():
        paths = []
        for lang in LANGS:  # one file per language, like the workflow
            p = tmp_path / f"{name}_{lang}.parquet"
            write_parquet(j.filter(pl.col("lang") == lang).with_columns(judge=pl.lit("exact"), detail=pl.lit("")), p)
            paths.append(f"{name}={p}")
        args += ["--judgments", *paths]
    assert main(args) == 0
    t = read_tsv(tmp_path / "t1.tsv")
    for name, j in data.items():
        by_q: dict[str, list[bool]] = {}
        for item, lang, ok in j.iter_rows():
            by_q.setdefault(item, []).append(ok)
        acc = {l: np.mean([ok for _, lg, ok in j.iter_rows() if lg == l]) for l in LANGS}
        assert num(t["questions"][name]) == len(by_q)
        assert num(t["languages"][name]) == len(LANGS)
        assert num(t["english_accuracy"][name]) == pytest.approx(acc["en"], abs=1e-6)
        assert num(t["mean_accuracy"][name]) == pytest.approx(np.mean(list(acc.values())), abs=1e-6)
        assert num(t["all_correct"][name]) == sum(all(v) for v in by_q.values())
        assert num(t["all_incorrect"][name]) == sum(not any(v) for v in by_q.values())
        assert num(t["mixed"][name]) == sum(any(v) and not all(v) for v in by_q.values())


def _metrics_row(dataset, condition, rng):
    oc, ow = int(rng.integers(5, 50)), int(rng.integers(5, 50))
    q = int(rng.integers(3, 20))
    return {
        "dataset": dataset,
        "condition": condition,
        "cap": 25,
        "questions": q,
        "experts_total": q * int(rng.integers(1, 25)),
        "mean_experts_per_question": None,
        "pairs": oc + ow,
        "orig_correct": oc,
        "orig_wrong": ow,
        "broken": int(rng.integers(0, oc)),
        "gained": int(rng.integers(0, ow)),
        "asr": None,
        "sgr": None,
        "rd": None,
        "now_wrong_everywhere": int(rng.integers(0, q)),
    }


def test_ablation_table_stage(tmp_path):
    rng = np.random.default_rng(0)
    names = ["ds1", "ds2"]
    args = ["ablation-table", "--out", str(tmp_path / "t2.tsv")]
    summaries, black, metrics = {}, {"ds1": 7, "ds2": 3}, []
    for name in names:
        outcomes = rng.choice(["mixed", "all_correct", "all_incorrect"], 30, p=[0.6, 0.1, 0.3])
        s = pl.DataFrame({"item_id": [f"q{i}" for i in range(30)], "outcome": outcomes, "n_langs": rng.integers(8, 12, 30)})
        summaries[name] = s
        write_parquet(s, tmp_path / f"{name}_s.parquet")
        write_parquet(
            pl.DataFrame({"layer": np.arange(black[name]), "expert": np.zeros(black[name], int), "share": np.ones(black[name])}),
            tmp_path / f"{name}_b.parquet",
        )
        args += [
            "--summary",
            f"{name}={tmp_path / f'{name}_s.parquet'}",
            "--blacklist",
            f"{name}={tmp_path / f'{name}_b.parquet'}",
        ]
        for cond in ("xici", "shuffled", "random"):
            metrics.append(_metrics_row(name, cond, rng))
    m = pl.DataFrame(metrics)
    m.write_csv(tmp_path / "m.tsv", separator="\t")
    # metrics of another cap (cap sweep files) cannot be mixed into Table 2
    pl.DataFrame([{**metrics[0], "cap": 5, "broken": 0}]).write_csv(tmp_path / "m5.tsv", separator="\t")
    assert main(args + ["--metrics", str(tmp_path / "m.tsv"), str(tmp_path / "m5.tsv")]) == 2
    assert main(args + ["--metrics", str(tmp_path / "m.tsv")]) == 0
    t = read_tsv(tmp_path / "t2.tsv")
    assert [t[k]["row"] for k in ("mixed_questions", "xici_asr", "random_rd")] == ["1", "7", "16"]

    def get(d, c):
        return next(r for r in metrics if r["dataset"] == d and r["condition"] == c)

    for name in names:
        s = summaries[name]
        assert num(t["mixed_questions"][name]) == int((s["outcome"] == "mixed").sum())
        assert num(t["languages"][name]) == s["n_langs"].max()
        assert num(t["blacklisted_experts"][name]) == black[name]
        x = get(name, "xici")
        assert num(t["questions_with_experts"][name]) == x["questions"]
        assert num(t["mean_experts_per_question"][name]) == pytest.approx(x["experts_total"] / x["questions"], abs=1e-4)
        assert num(t["orig_correct_pairs"][name]) == x["orig_correct"]
        for cond in ("xici", "shuffled", "random"):
            r = get(name, cond)
            asr, sgr = r["broken"] / r["orig_correct"], r["gained"] / r["orig_wrong"]
            assert num(t[f"{cond}_asr"][name]) == pytest.approx(asr, abs=1e-6)
            assert num(t[f"{cond}_sgr"][name]) == pytest.approx(sgr, abs=1e-6)
            assert num(t[f"{cond}_rd"][name]) == pytest.approx(asr - sgr, abs=1e-6)
            assert num(t[f"{cond}_now_wrong_everywhere"][name]) == r["now_wrong_everywhere"]
    # totals pool the pairs
    for cond in ("xici", "shuffled", "random"):
        rs = [get(n, cond) for n in names]
        asr = sum(r["broken"] for r in rs) / sum(r["orig_correct"] for r in rs)
        sgr = sum(r["gained"] for r in rs) / sum(r["orig_wrong"] for r in rs)
        assert num(t[f"{cond}_asr"]["total"]) == pytest.approx(asr, abs=1e-6)
        assert num(t[f"{cond}_rd"]["total"]) == pytest.approx(asr - sgr, abs=1e-6)
    xs = [get(n, "xici") for n in names]
    assert num(t["mean_experts_per_question"]["total"]) == pytest.approx(
        sum(r["experts_total"] for r in xs) / sum(r["questions"] for r in xs), abs=1e-4
    )
    assert num(t["mixed_questions"]["total"]) == sum(int((s["outcome"] == "mixed").sum()) for s in summaries.values())
    assert t["languages"]["total"] in (None, "") and t["blacklisted_experts"]["total"] in (None, "")


def test_missing_condition_gives_empty_cells():
    from moe_routing.xici.tables import ablation_table

    s = pl.DataFrame({"item_id": ["a", "b"], "outcome": ["mixed", "mixed"], "n_langs": [3, 3]})
    m = pl.DataFrame([_metrics_row("d", "xici", np.random.default_rng(1))])
    t = {r["metric"]: r for r in ablation_table({"d": s}, {"d": 0}, m).iter_rows(named=True)}
    assert t["shuffled_asr"]["d"] is None and t["xici_asr"]["d"] is not None
    with pytest.raises(ContractError, match="no xici summary"):
        ablation_table({"other": s}, {}, m)
