"""XICI identification: exact against a plain per-expert reference, planted-signal recovery, edge cases, IO."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests

from moe_routing.core.contracts import routing_metadata
from moe_routing.core.errors import ContractError, MoeRoutingError
from moe_routing.core.io import write_parquet
from moe_routing.xici.identify import (
    RoutingData,
    XiciSettings,
    identify,
    load_routing,
    mwu_greater,
    question_outcomes,
    sweep,
)

FIRST_LAYER = 10  # model layer index of MoE position 0 in the synthetic data


def synth(n_q=60, n_lang=16, n_layers=6, E=32, boost=0.0, n_planted=8, seed=0, exclude=(1, 1), n_skip=4, shape=16.0):
    """Synthetic per-sequence mean routing weights with planted question experts.

    Expert popularity differs by layer and language (language effects), per-sequence noise is
    multiplicative (gamma, cv = 1/sqrt(shape)), rarely used experts are often exactly zero in a
    sequence (ties at zero), each layer sums to 1 like mean top-k combine weights. For every
    mixed question ``n_planted`` kept-layer experts get ``boost`` (x U(0.5, 1.5)) added in the
    question's correct languages only. The first ``n_skip`` questions are all correct/incorrect.
    """
    rng = np.random.default_rng(seed)
    L = n_layers
    base = rng.gamma(2.0, 1.0, size=(L, E))
    lang_eff = rng.gamma(3.0, 1 / 3.0, size=(n_lang, L, E))
    raw = base[None, None] * lang_eff[None] * rng.gamma(shape, 1 / shape, size=(n_q, n_lang, L, E))
    raw[rng.random(raw.shape) < 0.8 * np.exp(-base)] = 0.0
    w = raw / np.maximum(raw.sum(axis=3, keepdims=True), 1e-12)
    correct = np.zeros((n_q, n_lang), bool)
    kept = np.arange(exclude[0], L - exclude[1])
    planted: dict[int, set[int]] = {}
    for q in range(n_q):
        if q < n_skip:
            correct[q] = q % 2 == 0
            continue
        lo = min(3, n_lang // 2)  # both groups keep at least `lo` languages
        correct[q, rng.choice(n_lang, rng.integers(lo, n_lang - lo + 1), replace=False)] = True
        pos = rng.choice(kept.size * E, n_planted, replace=False)
        cols = kept[pos // E] * E + pos % E
        planted[q] = set(cols.tolist())
        for c in cols:
            w[q, correct[q], c // E, c % E] += boost * rng.uniform(0.5, 1.5, correct[q].sum())
    data = RoutingData(
        item_ids=np.array([f"q{q:03d}" for q in range(n_q)]),
        langs=np.array([f"l{g:02d}" for g in range(n_lang)]),
        q_index=np.repeat(np.arange(n_q), n_lang),
        lang_index=np.tile(np.arange(n_lang), n_q),
        correct=correct.ravel(),
        weights=w.reshape(n_q * n_lang, L * E).astype(np.float32),
        moe_layers=list(range(FIRST_LAYER, FIRST_LAYER + L)),
        num_experts=E,
        top_k=4,
    )
    return data, planted


# ------------------------------------------------------------------ plain reference (steps 1-6, loops)


def reference_identify(data: RoutingData, s: XiciSettings):
    """Straightforward loops over sequences, questions and experts; returns {item: [(layer, expert, p, padj, md)]}."""
    E, L = data.num_experts, len(data.moe_layers)
    kept_cols = [l * E + e for l in range(s.exclude_first, L - s.exclude_last) for e in range(E)]
    n_top = max(1, math.ceil(s.blacklist_top * len(kept_cols) - 1e-9))
    marks = {c: 0 for c in kept_cols}
    for r in range(data.weights.shape[0]):
        vals = [(float(data.weights[r, c]), c) for c in kept_cols]
        vals.sort(key=lambda t: -t[0])
        for v, c in vals[:n_top]:
            if v > 0:
                marks[c] += 1
    tested = [c for c in kept_cols if marks[c] / data.weights.shape[0] <= s.blacklist_share]
    means = {}
    for g in range(len(data.langs)):
        rows = [r for r in range(len(data.lang_index)) if data.lang_index[r] == g]
        for c in tested:
            means[g, c] = sum(float(data.weights[r, c]) for r in rows) / len(rows)
    out = {}
    for q, item in enumerate(data.item_ids):
        rows = [r for r in range(len(data.q_index)) if data.q_index[r] == q]
        ok = [r for r in rows if data.correct[r]]
        bad = [r for r in rows if not data.correct[r]]
        if not ok or not bad:
            continue
        stats = []
        for c in tested:
            x = np.array([float(data.weights[r, c]) - means[data.lang_index[r], c] for r in ok], dtype=np.float64)
            y = np.array([float(data.weights[r, c]) - means[data.lang_index[r], c] for r in bad], dtype=np.float64)
            p = mannwhitneyu(x, y, alternative="greater").pvalue
            stats.append([c, p, np.median(x) - np.median(y)])
        padj = multipletests([t[1] for t in stats], method="fdr_bh")[1]
        passing = [(c, p, pa_, md) for (c, p, md), pa_ in zip(stats, padj) if p < s.alpha and md > s.tau]
        rp = {c: 1 + sum(o[2] < pa_ for o in passing) for c, p, pa_, md in passing}
        rm = {c: 1 + sum(o[3] > md for o in passing) for c, p, pa_, md in passing}
        passing.sort(key=lambda t: (rp[t[0]] + rm[t[0]], t[2], -t[3], t[0]))
        out[str(item)] = [(data.moe_layers[c // E], c % E, p, pa_, md) for c, p, pa_, md in passing[: s.cap]]
    return out, len(kept_cols) - len(tested)


def test_mwu_vectorised_equals_per_expert_loop():
    rng = np.random.default_rng(1)
    for n1, n2 in [(1, 7), (3, 5), (8, 8), (9, 12), (2, 30)]:
        x = rng.normal(size=(n1, 40))
        y = rng.normal(size=(n2, 40)) - 0.3
        x[:, :5] = np.round(x[:, :5])  # ties in some columns: scipy 'auto' goes asymptotic there
        y[:, :5] = np.round(y[:, :5])
        x[:, 5], y[:, 5] = 0.0, 0.0  # all tied
        got = mwu_greater(x.T, y.T)  # experts as rows
        want = [mannwhitneyu(x[:, c], y[:, c], alternative="greater").pvalue for c in range(40)]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert np.isfinite(got).all()


@pytest.mark.parametrize("seed,boost,alpha,tau,cap", [(3, 0.0, 0.2, 0.005, 4), (4, 0.04, 0.2, 0.005, 4), (6, 0.04, 0.3, 0.03, 3)])
def test_identify_equals_loop_reference(seed, boost, alpha, tau, cap):
    data, _ = synth(n_q=10, n_lang=9, n_layers=5, E=8, boost=boost, n_planted=3, seed=seed, n_skip=2)
    s = XiciSettings(exclude_first=1, exclude_last=1, alpha=alpha, tau=tau, cap=cap, blacklist_top=0.05, blacklist_share=0.2)
    res = identify(data, s, progress=False)
    if tau > 0.01:  # this setting must exercise the magnitude filter too
        assert (res.summary["pass_magnitude"] < res.summary["pass_test"]).any()
    ref, n_black = reference_identify(data, s)
    assert res.blacklist.height == n_black
    got = {
        item: [
            (r["layer"], r["expert"], r["p_value"], r["p_adjusted"], r["median_diff"])
            for r in g.sort("rank").iter_rows(named=True)
        ]
        for (item,), g in res.experts.group_by("item_id")
    }
    _close(ref, got)
    assert sum(len(v) for v in ref.values()) > 0


def _close(ref, got):
    ref = {k: v for k, v in ref.items() if v}
    assert set(ref) == set(got)
    for k in ref:
        assert [(a, b) for a, b, *_ in ref[k]] == [(a, b) for a, b, *_ in got[k]], k
        np.testing.assert_allclose([t[2:] for t in ref[k]], [t[2:] for t in got[k]], rtol=1e-9, atol=1e-12)


def _recovery(data, planted, res):
    E = data.num_experts
    black = {(l - FIRST_LAYER) * E + e for l, e in zip(res.blacklist["layer"], res.blacklist["expert"])}
    found = {(int(r["item_id"][1:]), (r["layer"] - FIRST_LAYER) * E + r["expert"]) for r in res.experts.iter_rows(named=True)}
    # blacklisted experts are untestable by design, so recall counts the testable planted ones
    true = {(q, c) for q, cs in planted.items() for c in cs if c not in black}
    tp = len(found & true)
    return tp / len(true), (tp / len(found) if found else 1.0), len(found)


def test_planted_signal_recovery(capsys):
    tau = 0.02  # ~0.64 x the mean expert weight (1/32), the paper's tau/mean ratio for Qwen3 (0.005 / (1/128))
    s = XiciSettings(exclude_first=1, exclude_last=1, alpha=0.05, tau=tau, cap=25)
    table = {}
    for k in (0.5, 1.0, 2.0, 3.0):
        data, planted = synth(boost=k * tau, seed=7)
        table[k] = _recovery(data, planted, identify(data, s, progress=False))
    with capsys.disabled():
        print("\nplanted boost (x tau): recall / precision / found")
        for k, (r, p, n) in table.items():
            print(f"  {k:>4}: {r:.3f} / {p:.3f} / {n}")
    assert table[3.0][0] >= 0.9 and table[3.0][1] >= 0.9
    assert table[2.0][0] >= 0.9 and table[2.0][1] >= 0.9
    assert table[0.5][0] < table[1.0][0] < table[2.0][0]


def test_no_signal_false_discoveries_at_alpha_level():
    s = XiciSettings(exclude_first=1, exclude_last=1, alpha=0.05, tau=0.02)
    data, _ = synth(boost=0.0, seed=11)
    res = identify(data, s, progress=False)
    mixed = res.summary.filter(pl.col("outcome") == "mixed")
    n_tests = int(mixed["tested"].sum())
    n_sig = int(mixed["pass_test"].sum())
    # the test alone: a binomial(n_tests, <= alpha) count (MWU with continuity is slightly conservative)
    assert n_sig <= s.alpha * n_tests + 3 * math.sqrt(n_tests * s.alpha)
    assert n_sig >= 0.5 * s.alpha * n_tests
    # the magnitude threshold only removes: false discoveries stay well under the alpha level
    assert int(mixed["pass_magnitude"].sum()) <= 0.25 * s.alpha * n_tests
    assert res.experts.height == int(mixed["kept"].sum())


def test_summary_counts_and_skipped_questions():
    data, _ = synth(n_q=12, n_lang=8, n_layers=4, E=8, boost=0.05, n_planted=2, seed=2, n_skip=3)
    res = identify(data, XiciSettings(exclude_first=1, exclude_last=1, tau=0.01, cap=2), progress=False)
    sm = res.summary
    assert sm.height == 12
    skipped = sm.filter(pl.col("outcome") != "mixed")
    assert skipped.height == 3 and (skipped["tested"] == 0).all() and (skipped["kept"] == 0).all()
    mixed = sm.filter(pl.col("outcome") == "mixed")
    assert (mixed["tested"] == 2 * 8 - res.blacklist.height).all()
    assert (mixed["n_correct"] + mixed["n_wrong"] == mixed["n_langs"]).all()
    assert (mixed["kept"] <= 2).all() and (mixed["kept"] <= mixed["pass_magnitude"]).all()
    assert (mixed["pass_magnitude"] <= mixed["pass_test"]).all()
    counts = res.experts.group_by("item_id").len()
    assert dict(counts.iter_rows()) == {r["item_id"]: r["kept"] for r in mixed.iter_rows(named=True) if r["kept"]}
    assert not any(res.experts[c].is_nan().any() for c in ("p_value", "p_adjusted", "median_diff"))
    assert set(res.experts["layer"]) <= {FIRST_LAYER + 1, FIRST_LAYER + 2}


def test_edge_cases_one_language_group_zero_experts_identical_groups():
    data, _ = synth(n_q=6, n_lang=6, n_layers=3, E=8, seed=5, n_skip=0)
    w = data.weights.reshape(6, 6, 3, 8)
    w[:, :, :, 0] = 0.0  # an expert never used anywhere
    w[:, :, :, 1] = 0.01  # an expert with identical weight everywhere: identical groups after centering
    corr = data.correct.reshape(6, 6)
    corr[0] = [True, False, False, False, False, False]  # one language in the correct group
    corr[2] = [False, True, True, True, True, True]  # one language in the wrong group
    res = identify(data, XiciSettings(alpha=0.5, tau=0.0, blacklist_top=0.05, blacklist_share=0.5), progress=False)
    t = res.tests
    assert np.isfinite(t.p_value).all() and np.isfinite(t.p_adjusted).all() and np.isfinite(t.median_diff).all()
    assert res.summary.filter(pl.col("item_id") == "q000")["n_correct"].item() == 1
    assert res.summary.filter(pl.col("item_id") == "q002")["n_wrong"].item() == 1
    flat = np.flatnonzero(t.columns % 8 <= 1)
    assert flat.size and (t.p_value[:, flat] == 1.0).all() and (np.abs(t.median_diff[:, flat]) < 1e-12).all()
    assert not res.experts.filter(pl.col("expert") <= 1).height
    x = np.random.default_rng(0).normal(size=(3, 4))
    assert (mwu_greater(x, x.copy()) >= 0.5).all()  # identical groups never look 'greater'


def test_cap_order_is_prefix_stable_and_sweep_counts():
    data, _ = synth(n_q=20, n_lang=12, n_layers=4, E=16, boost=0.06, n_planted=10, seed=9)
    base = XiciSettings(exclude_first=1, exclude_last=1, tau=0.01)
    big = identify(data, XiciSettings(**{**base.__dict__, "cap": 65}), progress=False).experts
    small = identify(data, XiciSettings(**{**base.__dict__, "cap": 3}), progress=False)
    assert small.experts.height > 0
    assert big.filter(pl.col("rank") <= 3).sort("item_id", "rank").equals(small.experts.sort("item_id", "rank"))
    serial = identify(data, XiciSettings(**{**base.__dict__, "cap": 3}), progress=False, workers=1)
    assert serial.experts.equals(small.experts) and np.array_equal(serial.tests.p_value, small.tests.p_value)
    sw = sweep(small.tests, alphas=[0.01, 0.05], taus=[0.005, 0.01], caps=[3, 65])
    assert sw.height == 8
    row = sw.filter((pl.col("alpha") == 0.05) & (pl.col("tau") == 0.01) & (pl.col("cap") == 3)).row(0, named=True)
    assert row["experts_total"] == small.experts.height
    assert row["questions_with_experts"] == small.experts["item_id"].n_unique()
    row65 = sw.filter((pl.col("alpha") == 0.05) & (pl.col("tau") == 0.01) & (pl.col("cap") == 65)).row(0, named=True)
    assert row65["experts_total"] == big.height


def test_question_outcomes():
    j = pl.DataFrame(
        {"item_id": ["a", "a", "b", "b", "c", "c"], "lang": ["x", "y"] * 3, "correct": [True, True, False, False, True, False]}
    )
    o = question_outcomes(j)
    assert o["outcome"].to_list() == ["all_correct", "all_incorrect", "mixed"]
    assert o["n_correct"].to_list() == [2, 0, 1]


# ------------------------------------------------------------------ loading from the file contracts


def _write_dataset(tmp_path, data: RoutingData):
    gens, juds = [], []
    meta = routing_metadata("synthetic", data.moe_layers, data.num_experts, data.top_k)
    for g, lang in enumerate(data.langs):
        rows = np.flatnonzero(data.lang_index == g)
        items = [str(data.item_ids[q]) for q in data.q_index[rows]]
        gt = pa.table(
            {
                "item_id": items,
                "lang": [str(lang)] * len(rows),
                "weights": pa.array(list(data.weights[rows]), type=pa.list_(pa.float32())),
            }
        )
        jt = pl.DataFrame(
            {
                "item_id": items,
                "lang": [str(lang)] * len(rows),
                "correct": data.correct[rows],
                "judge": ["exact"] * len(rows),
                "detail": [""] * len(rows),
            }
        )
        gp, jp = tmp_path / f"gen_{lang}.parquet", tmp_path / f"jud_{lang}.parquet"
        write_parquet(gt, gp, metadata=meta)
        write_parquet(jt, jp)
        gens.append(gp)
        juds.append(jp)
    return gens, juds


def test_load_routing_roundtrip_and_stage(tmp_path):
    data, _ = synth(n_q=8, n_lang=5, n_layers=4, E=8, boost=0.05, n_planted=2, seed=4, n_skip=1)
    gens, juds = _write_dataset(tmp_path, data)
    loaded = load_routing(gens, juds[::-1])
    s = XiciSettings(exclude_first=1, exclude_last=1, tau=0.005)
    a = identify(data, s, progress=False)
    b = identify(loaded, s, progress=False)
    assert a.experts.equals(b.experts) and a.summary.equals(b.summary)

    from moe_routing.cli import main

    out = tmp_path / "experts.parquet"
    rc = main(
        [
            "xici",
            "--generations",
            *map(str, gens),
            "--judgments",
            *map(str, juds),
            "--out",
            str(out),
            "--summary",
            str(tmp_path / "s.parquet"),
            "--blacklist",
            str(tmp_path / "b.parquet"),
            "--exclude-first",
            "1",
            "--exclude-last",
            "1",
            "--tau",
            "0.005",
            "--no-progress",
            "--alphas",
            "0.05",
            "0.1",
            "--taus",
            "0.005",
            "--caps",
            "5",
            "25",
            "--sweep-out",
            str(tmp_path / "sweep.tsv"),
        ]
    )
    assert rc == 0
    assert pl.read_parquet(out).equals(a.experts)
    assert pl.read_parquet(tmp_path / "b.parquet").height == a.blacklist.height
    assert pl.read_csv(tmp_path / "sweep.tsv", separator="\t").height == 4


def test_load_routing_mismatch_names_the_file(tmp_path):
    data, _ = synth(n_q=4, n_lang=3, n_layers=2, E=4, n_planted=1, seed=1, n_skip=0, exclude=(0, 0))
    gens, juds = _write_dataset(tmp_path, data)
    with pytest.raises(ContractError, match="gen_l01.parquet.*no judgment"):
        load_routing(gens, [juds[0], juds[2]])
    with pytest.raises(ContractError, match="jud_l01.parquet.*no generation"):
        load_routing([gens[0], gens[2]], juds)
    with pytest.raises(ContractError, match="duplicate"):
        load_routing(gens + [gens[0]], juds)
    with pytest.raises(MoeRoutingError, match="leaves none"):
        identify(data, XiciSettings(exclude_first=1, exclude_last=1), progress=False)


def test_no_mixed_question_gives_empty_outputs():
    data, _ = synth(n_q=4, n_lang=5, n_layers=3, E=4, n_planted=1, seed=1, n_skip=4, exclude=(0, 0))
    res = identify(data, XiciSettings(), progress=False)
    assert res.experts.height == 0 and res.experts.columns == list(res.experts.schema)
    assert (res.summary["outcome"] != "mixed").all() and (res.summary["tested"] == 0).all()
    assert sweep(res.tests, [0.05], [0.005], [25])["questions_with_experts"].to_list() == [0]
