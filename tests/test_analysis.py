"""Routing analysis: divergence, entropy, consistency, correlation, specialisation (model-free)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats

from moe_routing.multilingual import analysis as an
from moe_routing.cli import main
from moe_routing.core.contracts import routing_metadata
from moe_routing.core.io import write_parquet

MOE_LAYERS = [1, 2, 3, 4, 5, 6, 7]  # model layer indices (layer 0 dense, as in GLM)
E = 8
TOP_K = 2


def random_dists(rng, shape, sharp=1.0):
    z = rng.normal(size=shape) * sharp
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------- float64 references


def ref_hjs(p, q):
    p = [float(x) / sum(p) for x in p]
    q = [float(x) / sum(q) for x in q]
    m = [(a + b) / 2 for a, b in zip(p, q)]
    kl = lambda a, b: sum(x * math.log(x / y) for x, y in zip(a, b) if x > 0)  # noqa: E731
    h = lambda a: -sum(x * math.log(x) for x in a if x > 0)  # noqa: E731
    js = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    return js / (math.log(len(p)) - 0.5 * (h(p) + h(q)))


def test_hjs_matches_float64_reference():
    rng = np.random.default_rng(0)
    p = random_dists(rng, (20, E), sharp=2.0)
    q = random_dists(rng, (20, E), sharp=2.0)
    q[3, :3] = 0.0  # zero entries must not produce NaN
    q[3] /= q[3].sum()
    got = an.hjs_divergence(p, q)
    want = np.array([ref_hjs(a, b) for a, b in zip(p, q)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert np.all(np.isfinite(got))


def test_hjs_zero_for_identical_and_symmetric():
    rng = np.random.default_rng(1)
    p = random_dists(rng, (5, 3, E))
    q = random_dists(rng, (5, 3, E))
    np.testing.assert_allclose(an.hjs_divergence(p, p), 0.0, atol=1e-15)
    np.testing.assert_allclose(an.hjs_divergence(p, q), an.hjs_divergence(q, p), rtol=1e-14)
    uniform = np.full((2, E), 1.0 / E)
    assert np.all(an.hjs_divergence(uniform, uniform) == 0.0)
    # JS in nats agrees with scipy's distance (its square root), a second reference
    from scipy.spatial.distance import jensenshannon

    np.testing.assert_allclose(an.js_divergence(p[0, 0], q[0, 0]), jensenshannon(p[0, 0], q[0, 0]) ** 2, rtol=1e-10)


def test_entropy_and_consistency_match_references():
    rng = np.random.default_rng(2)
    n, n_layers = 6, 4
    ent = rng.uniform(0.5, 2.0, size=(n, n_layers))
    tokens = rng.integers(1, 30, size=n).astype(float)
    got = an.mean_entropy(ent, tokens)
    want = [sum(ent[i, layer] * tokens[i] for i in range(n)) / sum(tokens) for layer in range(n_layers)]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    cons = rng.uniform(0, 1, size=(n, n_layers))
    cons[2, :] = np.nan  # a one-token sequence has no token pair
    want_c = [np.mean([cons[i, layer] for i in range(n) if i != 2]) for layer in range(n_layers)]
    np.testing.assert_allclose(an.mean_consistency(cons), want_c, rtol=1e-13)
    p = random_dists(rng, (3, E))
    np.testing.assert_allclose(an.entropy_nats(p), [stats.entropy(x) for x in p], rtol=1e-12)


def test_correlation_matches_scipy_and_handles_few_languages():
    rng = np.random.default_rng(3)
    langs = ["de", "fr", "sw", "bn", "zh"]
    div = pl.DataFrame(
        [(layer, lang, float(rng.uniform())) for layer in (3, 4) for lang in langs],
        schema={"layer": pl.Int64, "lang": pl.String, "value": pl.Float64},
        orient="row",
    )
    acc = pl.DataFrame({"lang": langs + ["xx"], "accuracy": list(rng.uniform(size=5)) + [0.5]})
    table = an.correlation_table(div, acc)
    for layer in (3, 4):
        sub = div.filter(pl.col("layer") == layer).join(acc, on="lang")
        want = stats.pearsonr(sub["value"].to_numpy(), sub["accuracy"].to_numpy())
        row = table.filter(pl.col("layer") == layer).row(0, named=True)
        assert row["r"] == pytest.approx(want.statistic, rel=1e-12)
        assert row["p_value"] == pytest.approx(want.pvalue, rel=1e-10)
        assert row["n_langs"] == 5
    few = an.correlation_table(div.filter(pl.col("lang").is_in(["de", "fr"])), acc)
    assert few["r"].is_nan().all()


# ---------------------------------------------------------------- synthetic generations


def planted_corpus(rng, n_items=12, langs=("en", "de", "sw"), noise=None, planted=None):
    """Per-language arrays with a U-shaped departure from English and optional planted experts.

    noise[lang][layer] scales how far a language's routing moves from the English one.
    planted: {(lang, layer_pos, expert): extra activation frequency}.
    """
    n_layers = len(MOE_LAYERS)
    base_logits = rng.normal(size=(n_items, n_layers, E)) * 1.5
    out = {}
    for lang in langs:
        scale = np.zeros(n_layers) if lang == "en" else np.asarray(noise[lang])
        logits = base_logits + rng.normal(size=base_logits.shape) * scale[None, :, None]
        soft = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        freq = np.clip(soft * TOP_K + rng.normal(scale=0.01, size=soft.shape), 0, 1)
        for (plang, li, e), extra in (planted or {}).items():
            if plang == lang:
                freq[:, li, e] = np.clip(freq[:, li, e] + extra, 0, 1)
        out[lang] = {
            "softmax_mean": soft,
            "freq": freq,
            "entropy": -(soft * np.log(soft)).sum(-1),
            "consistency": rng.uniform(0.2, 0.6, size=(n_items, n_layers)),
        }
    return out


def write_generations(path, lang, arrays, item_ids=None, model="synthetic"):
    n = arrays["softmax_mean"].shape[0]
    item_ids = item_ids or [f"q{i}" for i in range(n)]
    table = pa.table(
        {
            "item_id": item_ids,
            "lang": [lang] * n,
            "output": [""] * n,
            "prompt_token_ids": pa.array([[1] * (5 + i) for i in range(n)], type=pa.list_(pa.int32())),
            "output_token_ids": pa.array([[] for _ in range(n)], type=pa.list_(pa.int32())),
            **{
                k: pa.array([list(map(float, v[i].reshape(-1))) for i in range(n)], type=pa.list_(pa.float32()))
                for k, v in arrays.items()
            },
        }
    )
    write_parquet(table, path, routing_metadata(model, MOE_LAYERS, E, TOP_K))


U = [2.0, 1.0, 0.3, 0.1, 0.3, 1.0, 2.0]


def test_planted_u_shape_is_recovered():
    rng = np.random.default_rng(4)
    corpus = planted_corpus(rng, n_items=40, noise={"de": U, "sw": [2 * x for x in U]})
    shape = an.RoutingShape(MOE_LAYERS, E, TOP_K)
    res = {lang: an.divergence_per_layer(corpus["en"]["softmax_mean"], corpus[lang]["softmax_mean"]) for lang in ("de", "sw")}
    for lang, d in res.items():
        mid = int(np.argmin(d))
        assert 2 <= mid <= 4, (lang, d)
        assert d[0] > 3 * d[3] and d[-1] > 3 * d[3]
        assert np.all(np.diff(d[:4]) < 0) and np.all(np.diff(d[3:]) > 0)
    # a language routed further from English diverges more at every layer
    assert np.all(res["sw"] > res["de"])
    assert shape.n_layers == len(res["de"])


def test_planted_language_expert_found_by_delta():
    rng = np.random.default_rng(5)
    corpus = planted_corpus(rng, noise={"de": U, "sw": U}, planted={("sw", 5, 3): 0.6})
    delta = an.specialisation_delta(corpus["sw"]["freq"], corpus["en"]["freq"])
    experts = an.experts_above({"sw-vs-en": delta}, MOE_LAYERS, tau=0.3)
    assert experts.select("layer", "expert").rows() == [(MOE_LAYERS[5], 3)]
    assert experts["comparisons"].to_list() == ["sw-vs-en"]
    assert an.experts_above({"sw-vs-en": delta}, MOE_LAYERS, tau=0.3, layers=[1, 2, 3]).height == 0
    np.testing.assert_allclose(delta, corpus["sw"]["freq"].mean(0) - corpus["en"]["freq"].mean(0), rtol=1e-14)


def test_analyze_stage_end_to_end(tmp_path):
    rng = np.random.default_rng(6)
    corpus = planted_corpus(rng, noise={"de": U, "sw": [2 * x for x in U]}, planted={("sw", 1, 2): 0.7})
    task = planted_corpus(rng, langs=("en",), planted={("en", 4, 6): 0.5})["en"]
    gens = []
    for lang, arrays in corpus.items():
        gens.append(tmp_path / "flores" / "generations" / f"{lang}.parquet")
        # one item missing in de: pairing must use shared ids only
        ids = [f"q{i}" for i in range(arrays["softmax_mean"].shape[0])]
        write_generations(gens[-1], lang, arrays, ids)
    task_path = tmp_path / "math" / "generations" / "en.parquet"
    write_generations(task_path, "en", task)
    acc = tmp_path / "acc.tsv"
    pl.DataFrame({"lang": ["de", "sw", "fr"], "accuracy": [0.8, 0.4, 0.7]}).write_csv(acc, separator="\t")
    out, figs = tmp_path / "routing", tmp_path / "figs"
    rc = main(
        [
            "analyze",
            "--generations",
            *map(str, gens),
            "--english",
            "en",
            "--out-dir",
            str(out),
            "--accuracy",
            str(acc),
            "--task",
            f"math={task_path}",
            "--tau",
            "0.3",
            "0.2",
            "--figures-dir",
            str(figs),
            "--target-layers",
            "3-5",
            "--delta-layer",
            "2",
        ]
    )
    assert rc == 0
    div = pl.read_csv(out / "divergence.tsv", separator="\t")
    assert div.columns == ["layer", "lang", "value"]
    assert sorted(div["lang"].unique()) == ["de", "sw"]
    assert sorted(div["layer"].unique()) == MOE_LAYERS
    ent = pl.read_csv(out / "entropy.tsv", separator="\t")
    assert sorted(ent["lang"].unique()) == ["de", "en", "sw"]
    # token-weighted entropy: prompt lengths 5..16 are the weights
    w = np.arange(5, 5 + corpus["de"]["entropy"].shape[0], dtype=float)
    want = (corpus["de"]["entropy"] * w[:, None]).sum(0) / w.sum()
    got = ent.filter(pl.col("lang") == "de").sort("layer")["value"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    corr = pl.read_csv(out / "correlation.tsv", separator="\t")
    assert corr["n_langs"].to_list() == [2] * len(MOE_LAYERS)  # two shared languages: r undefined
    lang_exp = pl.read_csv(out / "language_experts.tsv", separator="\t")
    assert (MOE_LAYERS[1], 2) in lang_exp.filter(pl.col("tau") == 0.3).select("layer", "expert").rows()
    task_exp = pl.read_csv(out / "task_experts.tsv", separator="\t")
    assert task_exp.filter(pl.col("tau") == 0.3).select("set", "layer", "expert").rows() == [("math", MOE_LAYERS[4], 6)]
    overlap = pl.read_csv(out / "overlap.tsv", separator="\t")
    assert overlap.filter(pl.col("tau") == 0.3)["n_overlap"].to_list() == [0]
    spec = pl.read_csv(out / "specialisation.tsv", separator="\t")
    assert set(spec["comparison"].unique()) == {"de-vs-en", "sw-vs-en", "math-vs-en"}
    for name in ("divergence", "entropy", "consistency", "delta", "experts_per_layer"):
        assert (figs / f"{name}.png").stat().st_size > 1000


def test_analyze_errors_are_clear(tmp_path, capsys):
    rng = np.random.default_rng(7)
    corpus = planted_corpus(rng, langs=("en", "de"), noise={"de": U})
    en, de = tmp_path / "en.parquet", tmp_path / "de.parquet"
    write_generations(en, "en", corpus["en"])
    write_generations(de, "de", corpus["de"], item_ids=[f"other{i}" for i in range(12)])
    assert main(["analyze", "--generations", str(en), str(de), "--english", "en", "--out-dir", str(tmp_path / "o")]) == 2
    assert "share no item_id" in capsys.readouterr().err
    assert main(["analyze", "--generations", str(de), "--english", "en", "--out-dir", str(tmp_path / "o")]) == 2
    assert "English ('en') is not among" in capsys.readouterr().err
    bad = dict(corpus["de"])
    bad["softmax_mean"] = bad["softmax_mean"][:, :, :4]
    write_generations(de, "de", bad)
    assert main(["analyze", "--generations", str(en), str(de), "--english", "en", "--out-dir", str(tmp_path / "o")]) == 2
    assert "must hold 56 values" in capsys.readouterr().err


# ---------------------------------------------------------------- public-code variants, grouped files


def test_sequence_entropy_equals_a_float64_reference():
    rng = np.random.default_rng(8)
    p = random_dists(rng, (5, 3, E), sharp=2.0)
    p[0, 1] = 0.0
    p[0, 1, 2] = 1.0  # a one-hot distribution: H = 0 (up to the public code's +1e-10)
    want = np.array([[stats.entropy(p[i, layer]) for layer in range(3)] for i in range(5)]).mean(axis=0)
    np.testing.assert_allclose(an.sequence_entropy(p), want, atol=1e-8, rtol=0)


def test_files_holding_several_languages_and_the_variants(tmp_path):
    """One file of en+de+sw rows gives the same tables as one file per language; --importance topk
    reads topk_mean; --entropy sequence is the entropy of each sequence's importance, unweighted."""
    rng = np.random.default_rng(9)
    corpus = planted_corpus(rng, noise={"de": U, "sw": [2 * x for x in U]})
    for arrays in corpus.values():
        arrays["topk_mean"] = random_dists(rng, arrays["softmax_mean"].shape, sharp=3.0)
    single = []
    for lang, arrays in corpus.items():
        single.append(tmp_path / "one" / f"{lang}.parquet")
        write_generations(single[-1], lang, arrays)
    frames = [pl.read_parquet(p) for p in single]
    grouped = tmp_path / "grouped" / "en+de+sw.parquet"
    write_parquet(
        pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=1).to_arrow(),
        grouped,
        routing_metadata("synthetic", MOE_LAYERS, E, TOP_K),
    )
    for flags in ([], ["--importance", "topk", "--entropy", "sequence"]):
        tag = "-".join(flags) or "paper"
        assert main(["analyze", "--generations", *map(str, single), "--out-dir", str(tmp_path / tag / "a"), *flags]) == 0
        assert main(["analyze", "--generations", str(grouped), "--out-dir", str(tmp_path / tag / "b"), *flags]) == 0
        for name in ("divergence", "entropy", "consistency", "specialisation"):
            a = pl.read_csv(tmp_path / tag / "a" / f"{name}.tsv", separator="\t")
            b = pl.read_csv(tmp_path / tag / "b" / f"{name}.tsv", separator="\t")
            keys = [c for c, t in a.schema.items() if t != pl.Float64]
            a, b = a.sort(keys), b.sort(keys)
            assert a.select(keys).equals(b.select(keys)), (tag, name)
            for c in set(a.columns) - set(keys):  # pairs are averaged in another order
                np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-12, err_msg=f"{tag} {name} {c}")
    topk = pl.read_csv(tmp_path / "--importance-topk---entropy-sequence" / "a" / "divergence.tsv", separator="\t")
    de = topk.filter(pl.col("lang") == "de").sort("layer")["value"].to_numpy()
    want = [
        np.mean([ref_hjs(corpus["en"]["topk_mean"][i, li], corpus["de"]["topk_mean"][i, li]) for i in range(12)])
        for li in range(len(MOE_LAYERS))
    ]
    np.testing.assert_allclose(de, want, rtol=1e-5)
    ent = pl.read_csv(tmp_path / "--importance-topk---entropy-sequence" / "a" / "entropy.tsv", separator="\t")
    sw = ent.filter(pl.col("lang") == "sw").sort("layer")["value"].to_numpy()
    want = stats.entropy(corpus["sw"]["topk_mean"], axis=-1).mean(axis=0)
    np.testing.assert_allclose(sw, want, rtol=1e-5)


def test_language_given_twice_and_task_rows(tmp_path, capsys):
    rng = np.random.default_rng(10)
    corpus = planted_corpus(rng, langs=("en", "de"), noise={"de": U})
    en, de, again = tmp_path / "en.parquet", tmp_path / "de.parquet", tmp_path / "de2.parquet"
    write_generations(en, "en", corpus["en"])
    write_generations(de, "de", corpus["de"])
    write_generations(again, "de", corpus["de"])
    assert main(["analyze", "--generations", str(en), str(de), str(again), "--out-dir", str(tmp_path / "o")]) == 2
    assert "language 'de' appears 2 times" in capsys.readouterr().err
    # a task set given as a file of two languages: its English rows are the task set
    task = planted_corpus(rng, langs=("en", "de"), noise={"de": U}, planted={("en", 4, 6): 0.5})
    parts = []
    for lang in ("en", "de"):
        write_generations(tmp_path / f"t_{lang}.parquet", lang, task[lang])
        parts.append(pl.read_parquet(tmp_path / f"t_{lang}.parquet"))
    both = tmp_path / "math" / "generations" / "en+de.parquet"
    write_parquet(pl.concat(parts).to_arrow(), both, routing_metadata("synthetic", MOE_LAYERS, E, TOP_K))
    assert main(["analyze", "--generations", str(en), str(de), "--task", f"math={both}", "--out-dir", str(tmp_path / "t")]) == 0
    spec = pl.read_csv(tmp_path / "t" / "specialisation.tsv", separator="\t").filter(pl.col("comparison") == "math-vs-en")
    li = MOE_LAYERS.index(5)
    want = task["en"]["freq"].mean(0) - corpus["en"]["freq"].mean(0)
    got = spec.filter(pl.col("layer") == 5).sort("expert")["delta"].to_numpy()
    np.testing.assert_allclose(got, want[li], atol=1e-6)
