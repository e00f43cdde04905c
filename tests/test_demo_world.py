"""The demo world: items contract, parallel ids, uneven coverage by design, determinism."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from moe_routing.cli import main as cli_main
from moe_routing.core.contracts import ITEMS
from moe_routing.demo.templates import FACT_SYSTEM, LANGUAGES, LETTERS, RELATIONS, TASK
from moe_routing.demo.world import (
    DATASETS,
    build_world,
    coverage_summary,
    default_coverage,
    items,
    read_corpus,
    training_corpus,
    world_summary_path,
    write_world,
)
from moe_routing.core.errors import DatasetError
from moe_routing.core.io import read_table

LANGS = ("en", "de", "fr", "es", "tr")


@pytest.fixture(scope="module")
def world():
    return build_world(LANGS, n_entities=60, seed=3)


def test_templates_cover_every_language_and_slot():
    for rel, per_lang in RELATIONS.items():
        assert set(per_lang) == set(LANGUAGES), rel
        for lang, (q, s) in per_lang.items():
            assert "{e}" in q and "{a}" not in q, (rel, lang)
            assert "{e}" in s and "{a}" in s, (rel, lang)
    assert set(TASK) == set(LANGUAGES) and len(LANGUAGES) >= 8
    assert all("{n}" in t and "{x}" in t and "{y}" in t for t in TASK.values())


def test_written_files_follow_items_contract(tmp_path, world):
    written = write_world(world, tmp_path / "data", tmp_path / "corpus.jsonl", n_parallel=20, n_task=10, n_bench=12)
    assert set(written) == set(DATASETS)
    for dataset in DATASETS:
        langs = ["en"] if dataset == "demo_task" else list(LANGS)
        assert sorted(p.stem for p in written[dataset]) == sorted(langs)
        for lang in langs:
            path = tmp_path / "data" / dataset / f"{lang}.parquet"
            table = read_table(path, contract="items")
            assert table.schema.remove_metadata().equals(ITEMS), (dataset, lang)
            assert set(table.column("lang").to_pylist()) == {lang}
    assert pq.read_table(tmp_path / "data/demo_task/en.parquet").num_rows == 10
    summary = json.loads(world_summary_path(tmp_path / "corpus.jsonl").read_text())
    assert summary["n_facts"] == 60 and summary["languages"] == list(LANGS)


def test_parallel_datasets_share_ids_and_answers(world):
    out = items(world, n_parallel=20, n_task=10, n_bench=12)
    for dataset in ("demo_facts", "demo_mc", "demo_parallel", "demo_task_bench"):
        per_lang = {lang: t.to_pylist() for lang, t in out[dataset].items()}
        en_ids = [r["item_id"] for r in per_lang["en"]]
        assert len(en_ids) == len(set(en_ids))
        for lang, rows in per_lang.items():
            assert [r["item_id"] for r in rows] == en_ids, (dataset, lang)
            # answers are invented words or numbers: identical in every language
            assert [r["answers"] for r in rows] == [r["answers"] for r in per_lang["en"]], (dataset, lang)
            if lang != "en" and dataset != "demo_task_bench":
                assert all(a["prompt"] != b["prompt"] for a, b in zip(rows, per_lang["en"])), (dataset, lang)
    facts = out["demo_facts"]["de"].to_pylist()
    assert all(r["system"] == FACT_SYSTEM and len(r["answers"]) == 1 and r["choices"] is None for r in facts)
    assert all(r["answers"] == [] and r["system"] is None for r in out["demo_parallel"]["fr"].to_pylist())


def test_multiple_choice_points_at_the_fact_answer(world):
    out = items(world)
    answer = {f.fact_id: f.answer for f in world.facts}
    for row in out["demo_mc"]["es"].to_pylist():
        assert len(row["choices"]) == 4 and len(set(row["choices"])) == 4
        letter = row["answers"][0]
        assert letter in LETTERS
        assert row["choices"][LETTERS.index(letter)] == answer[row["item_id"]]
        for letter_, choice in zip(LETTERS, row["choices"]):
            assert f"{letter_}. {choice}" in row["prompt"]


def test_task_answers_are_the_sums(world):
    out = items(world, n_task=10, n_bench=12)
    for row in out["demo_task_bench"]["tr"].to_pylist() + out["demo_task"]["en"].to_pylist():
        numbers = [int(w) for w in row["prompt"].replace("?", " ").replace(".", " ").split() if w.isdigit()]
        assert row["answers"] == [str(sum(numbers))]


def test_coverage_varies_and_corpus_teaches_only_covered_languages():
    world = build_world(LANGUAGES, n_entities=400, seed=0)
    measured = coverage_summary(world)
    others = [measured[lang] for lang in LANGUAGES if lang != "en"]
    assert measured["en"] > max(others)
    assert max(others) - min(others) > 0.3
    for lang, target in default_coverage(LANGUAGES).items():
        assert abs(measured[lang] - target) < 0.08, lang
    # facts taught in a strict subset of languages are what makes answers differ by language
    assert sum(len(c) < len(LANGUAGES) for c in world.covered.values()) > 0.9 * len(world.facts)
    corpus = training_corpus(world)
    covered = {(fid, lang) for fid, langs in world.covered.items() for lang in langs}
    assert {(r["ref"], r["lang"]) for r in corpus if r["kind"] in ("sentence", "mc")} <= covered
    assert {(r["ref"], r["lang"]) for r in corpus if r["kind"] == "fact"} == covered
    assert {r["kind"] for r in corpus} == {"fact", "sentence", "mc", "task"}
    tasks = {lang: sum(r["kind"] == "task" and r["lang"] == lang for r in corpus) for lang in LANGUAGES}
    assert tasks["en"] == max(tasks.values()) and tasks["tr"] < tasks["en"]


def test_same_seed_same_files_other_seed_differs(tmp_path):
    def make(seed, where):
        w = build_world(LANGS, n_entities=30, seed=seed)
        write_world(w, where / "data", where / "c.jsonl", n_parallel=10, n_task=5, n_bench=5)
        return (where / "c.jsonl").read_bytes(), pq.read_table(where / "data/demo_mc/fr.parquet")

    a, b, c = make(7, tmp_path / "a"), make(7, tmp_path / "b"), make(8, tmp_path / "c")
    assert a[0] == b[0] and a[1].equals(b[1])
    assert a[0] != c[0] and not a[1].equals(c[1])


def test_bad_requests_fail_clearly(tmp_path):
    with pytest.raises(DatasetError, match="xx"):
        build_world(["en", "xx"], n_entities=20)
    with pytest.raises(DatasetError, match="'en'"):
        build_world(["de", "fr"], n_entities=20)
    with pytest.raises(DatasetError, match="coverage"):
        build_world(["en", "de"], n_entities=20, coverage={"en": 0.9})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        read_corpus(bad)


def test_cli_writes_everything(tmp_path, capsys):
    rc = cli_main(
        [
            "demo-world",
            "--out-dir",
            str(tmp_path / "data"),
            "--corpus",
            str(tmp_path / "c.jsonl"),
            "--languages",
            "en,de,pl",
            "--n-entities",
            "24",
            "--coverage",
            "en=0.9,de=0.5,pl=0.2",
            "--n-parallel",
            "8",
            "--n-task",
            "6",
            "--n-bench",
            "6",
            "--seed",
            "1",
        ]
    )
    assert rc == 0
    assert len(read_corpus(tmp_path / "c.jsonl")) > 24
    assert read_table(tmp_path / "data/demo_facts/pl.parquet").num_rows == 24
    assert (
        cli_main(["demo-world", "--out-dir", str(tmp_path), "--corpus", str(tmp_path / "c.jsonl"), "--languages", "en,ja"]) == 2
    )
    assert "ja" in capsys.readouterr().err
