"""Steering: plan (task experts in target layers only), table arithmetic, and both stages."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from moe_routing.multilingual import analysis
from moe_routing.multilingual import steering as S
from moe_routing.multilingual.steering import comparison_delta
from moe_routing.cli import main
from moe_routing.core.contracts import INTERVENTIONS, JUDGMENTS
from moe_routing.core.errors import ConfigError, InterventionError
from moe_routing.core.io import read_frame, write_parquet

MOE_LAYERS = [0, 1, 2, 3, 4, 5]
E = 6


def test_parse_layers():
    assert S.parse_layers("2-4") == [2, 3, 4]
    assert S.parse_layers("1, 3,5-6") == [1, 3, 5, 6]
    assert S.parse_layers([4, 2, 2]) == [2, 4]
    assert S.parse_layers(["7", "9-10"]) == [7, 9, 10]
    with pytest.raises(ConfigError, match="bad layer"):
        S.parse_layers("a-b")
    with pytest.raises(ConfigError, match="end before start"):
        S.parse_layers("5-2")


def planted_delta():
    delta = np.full((len(MOE_LAYERS), E), -0.02)
    delta[0, 1] = 0.9  # strong, but outside the target layers
    delta[2, 3] = 0.6
    delta[3, 0] = 0.45
    delta[3, 5] = 0.35  # below τ = 0.4
    delta[5, 2] = 0.8  # outside
    return delta


def test_plan_selects_only_target_layer_experts_above_tau():
    plan = S.plan_steering(planted_delta(), MOE_LAYERS, [2, 3, 4], tau=0.4, mode="soft", strength=0.5)
    assert plan.columns == INTERVENTIONS.names
    assert plan.select("layer", "expert").rows() == [(2, 3), (3, 0)]
    assert set(plan["item_id"]) == {"*"} and set(plan["mode"]) == {"soft"} and set(plan["strength"]) == {0.5}
    hard = S.plan_steering(planted_delta(), MOE_LAYERS, [2, 3, 4], tau=0.3, mode="activate")
    assert hard.select("layer", "expert").rows() == [(2, 3), (3, 0), (3, 5)]
    assert hard["strength"].null_count() == hard.height and set(hard["mode"]) == {"activate"}


def test_plan_errors():
    with pytest.raises(InterventionError, match=r"target layers \[9\] are not MoE layers"):
        S.plan_steering(planted_delta(), MOE_LAYERS, [2, 9], tau=0.4)
    with pytest.raises(InterventionError, match="largest Δ there is 0.6000"):
        S.plan_steering(planted_delta(), MOE_LAYERS, [2, 3], tau=0.7)
    with pytest.raises(ConfigError, match="mode"):
        S.plan_steering(planted_delta(), MOE_LAYERS, [2], tau=0.1, mode="deactivate")


def judgments(lang_correct: dict[str, list[bool]]) -> pl.DataFrame:
    rows = [
        {"item_id": f"q{i}", "lang": lang, "correct": c, "judge": "number", "detail": ""}
        for lang, cs in lang_correct.items()
        for i, c in enumerate(cs)
    ]
    return pl.from_arrow(pa.Table.from_pylist(rows, schema=JUDGMENTS))


BASE = {"en": [1, 1, 1, 0], "bn": [1, 0, 0, 0], "de": [1, 1, 0, 0], "sw": [0, 0, 0, 0]}
STEERED = {"en": [1, 1, 0, 0], "bn": [1, 1, 0, 0], "de": [1, 1, 1, 0], "sw": [1, 0, 0, 0]}


def as_bool(d):
    return {k: [bool(x) for x in v] for k, v in d.items()}


def test_steering_table_arithmetic():
    table = S.steering_table(judgments(as_bool(BASE)), judgments(as_bool(STEERED)), english="en", low_resource=["bn", "sw", "te"])
    rows = {r["lang"]: r for r in table.iter_rows(named=True)}
    assert table["lang"].to_list() == ["en", "bn", "de", "sw", "non-en mean", "low-resource mean"]
    assert rows["en"]["base"] == 0.75 and rows["en"]["steered"] == 0.5 and rows["en"]["difference"] == pytest.approx(-0.25)
    assert rows["de"]["difference"] == pytest.approx(0.25)
    assert rows["non-en mean"]["base"] == pytest.approx((0.25 + 0.5 + 0.0) / 3)
    assert rows["non-en mean"]["steered"] == pytest.approx((0.5 + 0.75 + 0.25) / 3)
    assert rows["non-en mean"]["difference"] == pytest.approx(0.25)
    assert rows["low-resource mean"]["base"] == pytest.approx(0.125)  # te has no judgments: left out
    assert rows["low-resource mean"]["steered"] == pytest.approx(0.375)
    assert rows["low-resource mean"]["n"] == 2 and rows["bn"]["n"] == 4


def test_steering_table_requires_same_items():
    steered = judgments(as_bool(STEERED)).filter(~((pl.col("lang") == "de") & (pl.col("item_id") == "q3")))
    with pytest.raises(ConfigError, match="language de: base and steered judgments cover different items"):
        S.steering_table(judgments(as_bool(BASE)), steered)
    with pytest.raises(ConfigError, match="languages"):
        S.steering_table(judgments(as_bool(BASE)), judgments(as_bool({"en": STEERED["en"]})))


def test_steer_plan_and_table_stages(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.4, size=(10, len(MOE_LAYERS), E))
    task = base[:8] + rng.normal(scale=0.01, size=(8, len(MOE_LAYERS), E))
    task[:, 3, 4] += 0.5  # task expert inside the target layers
    task[:, 0, 2] += 0.5  # task expert outside them
    out = tmp_path / "steer" / "interventions.parquet"
    spec = tmp_path / "specialisation.tsv"
    analysis.delta_table(
        {"math-vs-en": analysis.specialisation_delta(task, base), "de-vs-en": analysis.specialisation_delta(base, task)},
        MOE_LAYERS,
    ).write_csv(spec, separator="\t")
    rc = main(
        [
            "steer-plan",
            "--specialisation",
            str(spec),
            "--task",
            "math",
            "--english",
            "en",
            "--layers",
            "2",
            "3-4",
            "--tau",
            "0.3",
            "--mode",
            "hard",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    plan = read_frame(out, "interventions")
    assert plan.select("item_id", "layer", "expert", "mode").rows() == [("*", 3, 4, "activate")]
    delta, layers = comparison_delta(pl.read_csv(spec, separator="\t"), "math-vs-en")
    assert layers == MOE_LAYERS and delta.shape == (len(MOE_LAYERS), E)
    assert delta[MOE_LAYERS.index(3), 4] == pytest.approx(task[:, 3, 4].mean() - base[:, 3, 4].mean(), rel=1e-9)
    assert (
        main(
            [
                "steer-plan",
                "--specialisation",
                str(spec),
                "--task",
                "medicine",
                "--layers",
                "2",
                "--tau",
                "0.3",
                "--out",
                str(tmp_path / "x.parquet"),
            ]
        )
        == 2
    )

    paths = {}
    for name, d in (("base", BASE), ("steered", STEERED)):
        paths[name] = []
        for lang, cs in as_bool(d).items():
            p = tmp_path / name / f"{lang}.parquet"
            write_parquet(judgments({lang: cs}), p)
            paths[name].append(str(p))
    rc = main(
        [
            "steering-table",
            "--base",
            *(f"mgsm={p}" for p in paths["base"]),
            "--steered",
            *(f"mgsm={p}" for p in paths["steered"]),
            "--english",
            "en",
            "--low-resource",
            "bn",
            "sw",
            "--out",
            str(tmp_path / "steering_table.tsv"),
        ]
    )
    assert rc == 0
    table = pl.read_csv(tmp_path / "steering_table.tsv", separator="\t")
    assert table.columns == ["benchmark", "lang", "base", "steered", "difference", "n"]
    assert table.filter(pl.col("lang") == "low-resource mean")["difference"][0] == pytest.approx(0.25)
    # two benchmarks in one table; the second only has en and de
    rc = main(
        [
            "steering-table",
            "--base",
            *(f"mgsm={p}" for p in paths["base"]),
            *(f"gmmlu={p}" for p in paths["base"][:3:2]),
            "--steered",
            *(f"mgsm={p}" for p in paths["steered"]),
            *(f"gmmlu={p}" for p in paths["steered"][:3:2]),
            "--english",
            "en",
            "--low-resource",
            "bn",
            "sw",
            "--out",
            str(tmp_path / "two.tsv"),
        ]
    )
    assert rc == 0
    two = pl.read_csv(tmp_path / "two.tsv", separator="\t")
    assert two.filter(pl.col("benchmark") == "mgsm").drop("benchmark").equals(table.drop("benchmark"))
    assert two.filter(pl.col("benchmark") == "gmmlu")["lang"].to_list() == ["en", "de", "non-en mean"]


# ---------------------------------------------------------------- on a tiny Qwen3-MoE model


def _items(prompts: dict[str, list[str]]) -> pl.DataFrame:
    from moe_routing.core.contracts import ITEMS

    rows = [
        {"item_id": f"i{n}", "lang": lang, "prompt": p, "system": None, "answers": ["1"], "choices": None}
        for lang, ps in prompts.items()
        for n, p in enumerate(ps)
    ]
    return pl.from_arrow(pa.Table.from_pylist(rows, schema=ITEMS))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["activate", "soft"])
def test_steering_changes_routing_only_from_target_layer_on_and_only_for_chosen_experts(hf_backend, mode):
    from moe_routing.multilingual import analysis as an
    from moe_routing.capture.backends import GenerationOptions

    backend = hf_backend("qwen3_moe")  # 3 MoE layers, 8 experts, top-2
    layers, n_exp, k = backend.moe_layers, backend.num_experts, backend.top_k
    shape = an.RoutingShape(layers, n_exp, k)
    # prefill only: steering cannot change which tokens pass through, so routing upstream of the
    # target layer must be bit-identical and the chosen experts' frequencies are directly comparable
    opts = GenerationOptions(batch_size=8, max_new_tokens=0, capture=True)
    task = pl.from_arrow(
        backend.generate(
            _items({"en": [f"{a} plus {b} equals {a + b}" for a, b in [(1, 2), (3, 4), (10, 5), (7, 7)]]}), options=opts
        )
    )
    flores = pl.from_arrow(
        backend.generate(
            _items(
                {"en": ["the cat sat on the mat", "rain falls in spring", "we walked to the old town", "music fills the hall"]}
            ),
            options=opts,
        )
    )
    delta = an.specialisation_delta(an.routing_array(task, "freq", shape), an.routing_array(flores, "freq", shape))
    target = [layers[1]]
    # τ between the two largest Δ of the target layer: one chosen expert, as with a strict τ in the paper
    top2 = np.sort(delta[1])[-2:]
    tau = float(top2.mean())
    assert top2[1] > top2[0] and top2[1] > 0
    plan = S.plan_steering(delta, layers, target, tau, mode=mode, strength=1.0)
    chosen = set(plan["expert"].to_list())
    assert set(plan["layer"]) == set(target) and chosen

    evaluation = _items(
        {"de": ["der Hund läuft schnell", "zwei und drei sind fünf"], "sw": ["mbwa anakimbia haraka", "mbili na tatu ni tano"]}
    )
    base = pl.from_arrow(backend.generate(evaluation, options=opts))
    steered = pl.from_arrow(backend.generate(evaluation, plan, options=opts))
    fb, fs = an.routing_array(base, "freq", shape), an.routing_array(steered, "freq", shape)
    np.testing.assert_array_equal(fs[:, 0], fb[:, 0])  # layer before the target: untouched
    np.testing.assert_allclose(fs.sum(-1), k, rtol=1e-5)  # still top-k per token
    others = [e for e in range(n_exp) if e not in chosen]
    chosen_idx = sorted(chosen)
    assert len(chosen) == 1
    if mode == "activate":
        np.testing.assert_allclose(fs[:, 1, chosen_idx], 1.0)  # forced on every token
    else:
        assert np.all(fs[:, 1, chosen_idx] >= fb[:, 1, chosen_idx])
        assert fs[:, 1, chosen_idx].sum() > fb[:, 1, chosen_idx].sum()
    # at the target layer the other experts can only lose tokens (they are displaced, never boosted)
    assert np.all(fs[:, 1, others] <= fb[:, 1, others] + 1e-6)
