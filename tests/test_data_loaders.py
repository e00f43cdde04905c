"""Dataset loaders on fixture files written in each source's real schema, read through `datasets`.

Schemas (checked against the published cards/code, see docs/datasets.md):
ECLeKTic eclektic_main.jsonl (wide q_id/{l}_q/{l}_a), MultiLoKo GitHub benchmark_data,
Global-MMLU parquet per config, FLORES+ / facebook/flores, BELEBELE data/{code}.jsonl with
README configs, MathOctopus MGSM8KInstruct_Parallel.json, AlpaCare, MGSM per-config parquet.
The rows and files are built by moe_routing.rehearsal.mirrors, which writes the rehearsal mirrors
(whole synthetic datasets in these layouts: tests/test_mirrors.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from moe_routing.cli import main as cli_main
from moe_routing.core.contracts import ITEMS
from moe_routing.data import lang_codes
from moe_routing.data.loading import describe_load_error, is_auth_error
from moe_routing.rehearsal.mirrors import (
    belebele_record,
    eclektic_records,
    flores_plus_record,
    gmmlu_record as mirror_gmmlu_record,
    multiloko_record as mirror_multiloko_record,
    octopus_prompt,
    write_jsonl,
    write_parquet,
    write_readme_configs,
)
from moe_routing.data.sources import load_items, parse_option
from moe_routing.core.errors import DatasetError
from moe_routing.core.io import read_table
from moe_routing.core.paths import GLOBAL_MMLU_IDS, repository_file

LANGS12 = "de en es fr he hi id it ja ko pt zh".split()


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "hf_cache")


def rows(table: pa.Table) -> list[dict]:
    assert table.schema.equals(ITEMS), table.schema
    return table.to_pylist()


# ---------------------------------------------------------------- language codes


def test_lang_table_counts_and_aliases():
    t = lang_codes.default_table()
    assert len(t.languages("eclektic")) == 12
    assert len(t.languages("multiloko")) == 31
    assert len(t.languages("global_mmlu")) == 42
    assert len(t.languages("mgsm")) == 11
    assert sorted(t.languages("eclektic")) == sorted(LANGS12)
    for alias, code in [
        ("eng_Latn", "en"),
        ("cmn_Hans", "zh"),
        ("zho_Hans", "zh"),
        ("english", "en"),
        ("simplified_mandarin", "zh"),
        ("Farsi", "fa"),
        ("pes_Arab", "fa"),
        ("swh_Latn", "sw"),
        ("zh", "zh"),
    ]:
        assert t.normalise(alias) == code
    assert t.source_code("zh", "flores_plus") == "cmn_Hans"
    assert t.source_code("zh", "belebele") == "zho_Hans"
    with pytest.raises(DatasetError, match="klingon"):
        t.normalise("klingon")
    with pytest.raises(DatasetError, match="'th' is not available.*eclektic"):
        t.source_code("th", "eclektic")


def test_lang_table_rejects_ambiguous_alias(tmp_path):
    header = "\t".join(lang_codes.REQUIRED_COLUMNS)
    blank = [""] * len(lang_codes.SOURCE_COLUMNS)
    p = tmp_path / "codes.tsv"
    p.write_text("\n".join([header, "\t".join(["aa", "Same", "aaa", *blank]), "\t".join(["bb", "Same", "bbb", *blank])]) + "\n")
    with pytest.raises(DatasetError, match="'Same'.*names both"):
        lang_codes.read_table(p)


# ---------------------------------------------------------------- ECLeKTic


def eclektic_rows(n=3, drop=None):
    out = eclektic_records(n)
    if drop:
        i, col = drop
        out[i][col] = ""
    return out


def test_eclektic_wide_jsonl(tmp_path, cache):
    recs = eclektic_rows()
    f = write_jsonl(tmp_path / "eclektic_main.jsonl", recs)
    got = rows(load_items("eclektic", str(f), "ja", cache_dir=cache))
    assert [r["item_id"] for r in got] == ["0", "1", "2"]
    assert got[1]["prompt"] == recs[1]["ja_q"] and got[1]["answers"] == [recs[1]["ja_a"]]
    assert got[0]["lang"] == "ja" and got[0]["choices"] is None
    assert got[0]["system"] == "In just a few words, answer in the language of the question."
    assert rows(load_items("eclektic", str(f), "ja", system="", cache_dir=cache))[0]["system"] is None


def test_eclektic_missing_translation_is_named(tmp_path, cache):
    f = write_jsonl(tmp_path / "eclektic_main.jsonl", eclektic_rows(drop=(1, "ko_q")))
    with pytest.raises(DatasetError, match=r"eclektic \[ko\]: item '1' has no prompt"):
        load_items("eclektic", str(f), "ko", cache_dir=cache)
    got = rows(load_items("eclektic", str(f), "ko", missing="skip", cache_dir=cache))
    assert [r["item_id"] for r in got] == ["0", "2"]


def test_eclektic_schema_change_names_column(tmp_path, cache):
    recs = eclektic_rows()
    for r in recs:
        del r["it_a"]
    f = write_jsonl(tmp_path / "eclektic_main.jsonl", recs)
    with pytest.raises(DatasetError, match=r"eclektic \[it\].*lacks column\(s\) \['it_a'\]"):
        load_items("eclektic", str(f), "it", cache_dir=cache)


def test_eclektic_long_csv(tmp_path, cache):
    f = tmp_path / "eclektic_long.csv"
    f.write_text("q_id,lang,question,answer\n7,en,Who?,Ada\n7,fr,Qui ?,Ada\n8,en,When?,1815\n", encoding="utf-8")
    got = rows(load_items("eclektic", str(f), "en", cache_dir=cache))
    assert [(r["item_id"], r["prompt"], r["answers"]) for r in got] == [("7", "Who?", ["Ada"]), ("8", "When?", ["1815"])]


# ---------------------------------------------------------------- MultiLoKo


def multiloko_record(i, question, targets):
    return mirror_multiloko_record(f"{i:03d}_page_{i}.txt", question, targets, "paragraph", "a year")


def write_multiloko(root: Path) -> Path:
    bench = root / "benchmark_data"
    write_jsonl(
        bench / "english" / "dev.jsonl",
        [
            multiloko_record(1, "When did X happen?", ["1946", "nineteen forty-six"]),
            multiloko_record(2, "Who built Y?", "['Jawhar', 'Jawhar al-Siqilli']"),  # stringified list, as seen in the data
        ],
    )
    write_jsonl(
        bench / "english" / "dev_translated_human_german.jsonl",
        [
            multiloko_record(1, "Wann geschah X?", ["1946"]),
            multiloko_record(2, "Wer baute Y?", '["Jawhar"]'),
        ],
    )
    write_jsonl(bench / "german" / "dev.jsonl", [multiloko_record(9, "Lokale Frage?", ["Berlin"])])
    return bench


def test_multiloko_github_layout(tmp_path, cache):
    bench = write_multiloko(tmp_path)
    en = rows(load_items("multiloko", str(tmp_path), "en", cache_dir=cache))
    de = rows(load_items("multiloko", str(bench), "deu_Latn", cache_dir=cache))
    assert [r["item_id"] for r in en] == [r["item_id"] for r in de] == ["001_page_1.txt", "002_page_2.txt"]
    assert en[1]["answers"] == ["Jawhar", "Jawhar al-Siqilli"]
    assert de[0]["prompt"] == "Wann geschah X?" and de[1]["answers"] == ["Jawhar"]
    with pytest.raises(DatasetError, match=r"multiloko \[fr\].*dev_translated_human_french.jsonl not found"):
        load_items("multiloko", str(bench), "fr", cache_dir=cache)


def test_multiloko_broken_config_falls_back_to_default(tmp_path, cache):
    # a hub-style copy whose per-language config is unreadable: the default config is filtered instead
    repo = tmp_path / "multiloko_hub"
    recs = [
        {
            "id": "a",
            "question": "When?",
            "targets": "['1990']",
            "answer": "1990",
            "output_type": "year",
            "question_language": "english",
            "source_language": "english",
        },
        {
            "id": "a",
            "question": "Wann?",
            "targets": "['1990']",
            "answer": "1990",
            "output_type": "Jahr",
            "question_language": "german",
            "source_language": "english",
        },
        {
            "id": "z",
            "question": "Lokal?",
            "targets": ["Bonn"],
            "answer": "Bonn",
            "output_type": "Ort",
            "question_language": "german",
            "source_language": "german",
        },
    ]
    write_jsonl(repo / "data" / "all.jsonl", recs)
    (repo / "broken").mkdir()
    (repo / "broken" / "dev.jsonl").write_text("{not json\n")
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: dev\n    path: data/all.jsonl\n"
        "- config_name: german\n  data_files:\n  - split: dev\n    path: broken/dev.jsonl\n---\n"
    )
    got = rows(load_items("multiloko", str(repo), "de", cache_dir=cache))
    assert [(r["item_id"], r["prompt"], r["answers"]) for r in got] == [("a", "Wann?", ["1990"])]


def test_multiloko_hub_rows_without_source_language_are_refused(tmp_path, cache):
    repo = tmp_path / "multiloko_hub"
    write_jsonl(repo / "german" / "dev.jsonl", [multiloko_record(9, "Lokale Frage?", ["Berlin"])])
    with pytest.raises(DatasetError, match=r"multiloko \[de\].*no 'source_language' column"):
        load_items("multiloko", str(repo), "de", cache_dir=cache)
    got = rows(load_items("multiloko", str(repo), "de", config="german", cache_dir=cache))
    assert [r["item_id"] for r in got] == ["009_page_9.txt"]


# ---------------------------------------------------------------- Global-MMLU


def gmmlu_record(i, subject, lang, answer="B"):
    return mirror_gmmlu_record(
        f"{subject}/test/{i}", subject, f"[{lang}] question {i} on {subject}", [f"[{lang}] {x}{i}" for x in "abcd"], answer
    )


def write_global_mmlu(root: Path, langs=("en", "sw")) -> Path:
    for lang in langs:
        recs = [gmmlu_record(i, "prehistory", lang, "ABCD"[i % 4]) for i in range(4)]
        recs += [gmmlu_record(i, "human_aging", lang, "C") for i in range(2)] + [gmmlu_record(0, "astronomy", lang)]
        # anatomy is not among the routing paper's medical subjects (its public evaluation code)
        recs += [gmmlu_record(i, "anatomy", lang) for i in range(2)]
        recs += [gmmlu_record(i, "virology", lang, "ABCD"[i % 4]) for i in range(5)]
        write_parquet(root / lang / "test-00000-of-00001.parquet", recs)
        write_parquet(root / lang / "dev-00000-of-00001.parquet", [gmmlu_record(0, "prehistory", lang)])
    return root


def test_global_mmlu_short_answer_with_ids_file(tmp_path, cache):
    repo = write_global_mmlu(tmp_path / "gmmlu")
    ids = tmp_path / "ids.txt"
    ids.write_text("# chosen\nprehistory/test/3\nprehistory/test/1\n")
    got = rows(load_items("global_mmlu", str(repo), "sw", ids_file=str(ids), format="short", cache_dir=cache))
    assert [r["item_id"] for r in got] == ["prehistory/test/1", "prehistory/test/3"]
    assert got[0]["prompt"] == "[sw] question 1 on prehistory"
    assert got[0]["answers"] == ["[sw] b1"] and got[1]["answers"] == ["[sw] d3"] and got[0]["choices"] is None


def test_global_mmlu_short_answer_all_when_no_ids(tmp_path, cache, monkeypatch):
    from moe_routing.data import global_mmlu

    repo = write_global_mmlu(tmp_path / "gmmlu")
    monkeypatch.setattr(global_mmlu, "DEFAULT_IDS_FILE", tmp_path / "absent.txt")
    got = rows(load_items("global_mmlu", str(repo), "en", format="short", cache_dir=cache))
    assert len(got) == 4 and all(r["item_id"].startswith("prehistory/") for r in got)
    # the shipped file lists no ids, so it means "all" too
    monkeypatch.setattr(global_mmlu, "DEFAULT_IDS_FILE", repository_file(GLOBAL_MMLU_IDS))
    assert len(rows(load_items("global_mmlu", str(repo), "en", format="short", cache_dir=cache))) == 4
    # an explicit ids file that lists no ids means all questions as well
    empty = tmp_path / "empty_ids.txt"
    empty.write_text("# nothing chosen yet\n")
    got = rows(load_items("global_mmlu", str(repo), "en", format="short", ids_file=str(empty), cache_dir=cache))
    assert len(got) == 4


def test_global_mmlu_medical_multiple_choice(tmp_path, cache):
    repo = write_global_mmlu(tmp_path / "gmmlu")
    got = rows(load_items("global_mmlu", str(repo), "en", format="mc", cache_dir=cache))
    assert [r["item_id"] for r in got][:2] == ["human_aging/test/0", "human_aging/test/1"]
    assert {r["item_id"].split("/")[0] for r in got} == {"human_aging", "virology"}
    assert got[0]["answers"] == ["C"] and got[0]["choices"] == ["[en] a0", "[en] b0", "[en] c0", "[en] d0"]
    assert "\nA. [en] a0\nB. [en] b0\nC. [en] c0\nD. [en] d0\n" in got[0]["prompt"]
    # dev.parquet is called 'validation' by datasets without a README: the alias finds it
    dev = rows(load_items("global_mmlu", str(repo), "en", format="short", split="dev", cache_dir=cache))
    assert [r["item_id"] for r in dev] == ["prehistory/test/0"]
    with pytest.raises(DatasetError, match=r"global_mmlu: language 'th' is not available"):
        load_items("global_mmlu", str(repo), "th", cache_dir=cache)


def test_global_mmlu_seeded_per_subject_sample_is_the_same_in_every_language(tmp_path, cache):
    repo = write_global_mmlu(tmp_path / "gmmlu")
    picks = {}
    for lang in ("en", "sw"):
        got = rows(load_items("global_mmlu", str(repo), lang, format="mc", per_subject=2, seed=3, cache_dir=cache))
        picks[lang] = [r["item_id"] for r in got]
    assert picks["en"] == picks["sw"]
    assert sorted(i.split("/")[0] for i in picks["en"]) == ["human_aging"] * 2 + ["virology"] * 2
    other = [
        r["item_id"]
        for r in rows(load_items("global_mmlu", str(repo), "en", format="mc", per_subject=2, seed=4, cache_dir=cache))
    ]
    vir = [
        r["item_id"] for r in rows(load_items("global_mmlu", str(repo), "en", format="mc", subjects="virology", cache_dir=cache))
    ]
    # the draw depends on the seed only through the per-item hash: another seed, another pair (here)
    assert len(vir) == 5 and set(other) != set(picks["en"])
    with pytest.raises(DatasetError, match="fewer than per_subject=3"):
        load_items("global_mmlu", str(repo), "en", format="mc", per_subject=3, cache_dir=cache)


def test_global_mmlu_sample_file_and_harness_prompt(tmp_path, cache):
    repo = write_global_mmlu(tmp_path / "gmmlu")
    sample = tmp_path / "samples.json"
    sample.write_text('{"virology": [4, 1], "human_aging": [0]}')
    got = rows(load_items("global_mmlu", str(repo), "sw", format="mc", sample_file=str(sample), style="harness", cache_dir=cache))
    assert [r["item_id"] for r in got] == ["human_aging/test/0", "virology/test/1", "virology/test/4"]
    assert got[1]["prompt"] == "[sw] question 1 on virology\nA. [sw] a1\nB. [sw] b1\nC. [sw] c1\nD. [sw] d1\nAnswer:"
    sample.write_text('{"virology": [5]}')
    with pytest.raises(DatasetError, match="out of range"):
        load_items("global_mmlu", str(repo), "sw", format="mc", sample_file=str(sample), cache_dir=cache)


# ---------------------------------------------------------------- FLORES


def test_flores_plus_save_to_disk_per_config(tmp_path):
    import datasets

    root = tmp_path / "flores_plus"
    for code in ("eng_Latn", "cmn_Hans"):
        dd = datasets.DatasetDict(
            {
                split: datasets.Dataset.from_list([flores_plus_record(i, code, f"{code} {split} {i}") for i in range(1, 4)])
                for split in ("dev", "devtest")
            }
        )
        dd.save_to_disk(str(root / code))
    got = rows(load_items("flores", str(root), "zh"))
    assert [r["item_id"] for r in got] == ["1", "2", "3"] and got[0]["prompt"] == "cmn_Hans devtest 1"
    assert got[0]["answers"] == [] and got[0]["system"] is None
    dev = rows(load_items("flores", str(root), "en", split="dev", limit=2))
    assert [r["prompt"] for r in dev] == ["eng_Latn dev 1", "eng_Latn dev 2"]


def test_flores_old_layout_and_release_text(tmp_path, cache):
    # facebook/flores 'all'-style rows: one sentence_{code} column per language (FLORES-200 codes)
    recs = [
        {
            "id": i,
            "URL": "u",
            "domain": "wikinews",
            "topic": "t",
            "has_image": 0,
            "has_hyperlink": 0,
            "sentence_eng_Latn": f"Hello {i}",
            "sentence_zho_Hans": f"你好 {i}",
        }
        for i in (1, 2)
    ]
    f = write_jsonl(tmp_path / "flores200_devtest.jsonl", recs)
    got = rows(load_items("flores", str(f), "zh", naming="flores", cache_dir=cache))
    assert [(r["item_id"], r["prompt"]) for r in got] == [("1", "你好 1"), ("2", "你好 2")]
    # FLORES+ release archive: <root>/dev/dev.<code>, one sentence per line
    rel = tmp_path / "floresp-v2.0"
    (rel / "dev").mkdir(parents=True)
    (rel / "dev" / "dev.cmn_Hans").write_text("第一句\n第二句\n", encoding="utf-8")
    got = rows(load_items("flores", str(rel), "zh", split="dev", naming="flores_plus"))
    assert [(r["item_id"], r["prompt"]) for r in got] == [("1", "第一句"), ("2", "第二句")]
    # FLORES+ names Chinese cmn_Hans: a FLORES-200 file read with FLORES+ naming has no such column
    with pytest.raises(DatasetError, match=r"flores \[zh\].*none of the sentence columns \['text', 'sentence_cmn_Hans'"):
        load_items("flores", str(f), "zh", naming="flores_plus", cache_dir=cache)


# ---------------------------------------------------------------- BELEBELE


def write_belebele(root: Path) -> Path:
    codes = ["eng_Latn", "zho_Hans"]
    for code in codes:
        write_jsonl(
            root / "data" / f"{code}.jsonl",
            [
                belebele_record(
                    f"https://en.wikibooks.org/wiki/P{p}",
                    q,
                    f"{code} passage {p}",
                    f"{code} question {p}.{q}",
                    ["one", "two", "three", "four"],
                    (p + q) % 4 + 1,
                    code,
                )
                for p in (1, 2)
                for q in (1, 2)
            ],
        )
    write_readme_configs(root, {code: {"test": f"data/{code}.jsonl"} for code in codes}, "belebele fixture")
    return root


def test_belebele_hub_layout(tmp_path, cache):
    repo = write_belebele(tmp_path / "belebele")
    en = rows(load_items("belebele", str(repo), "en", cache_dir=cache))
    zh = rows(load_items("belebele", str(repo), "zh", cache_dir=cache))
    assert [r["item_id"] for r in en] == [r["item_id"] for r in zh]
    assert en[0]["item_id"] == "https://en.wikibooks.org/wiki/P1#1"
    assert en[0]["answers"] == ["C"] and en[0]["choices"] == ["one", "two", "three", "four"]
    assert en[0]["prompt"].startswith("eng_Latn passage 1\n\neng_Latn question 1.1\n\nA. one\n")
    assert zh[0]["prompt"].startswith("zho_Hans passage 1")
    with pytest.raises(DatasetError, match=r"belebele \[fr\].*no config 'fra_Latn'"):
        load_items("belebele", str(repo), "fr", cache_dir=cache)
    harness = rows(load_items("belebele", str(repo), "en", style="harness", cache_dir=cache))
    assert harness[0]["prompt"] == ("P: eng_Latn passage 1\nQ: eng_Latn question 1.1\nA: one\nB: two\nC: three\nD: four\nAnswer:")
    assert all(r["assistant"] is None for r in harness)


# ---------------------------------------------------------------- GSM8K-Instruct, AlpaCare


def test_gsm8k_instruct_language_from_prompt(tmp_path, cache):
    recs = [
        {"prompt": octopus_prompt("English", "Tom has 3 apples. How many?"), "chosen": " Let's think. The answer is 3."},
        {"prompt": octopus_prompt("Chinese", "汤姆有3个苹果。"), "chosen": " 答案是3。"},
        {"prompt": octopus_prompt("English", "Ann has 2 pens."), "chosen": " The answer is 2."},
        {"prompt": "no template here", "chosen": "x"},
    ]
    f = tmp_path / "MGSM8KInstruct_Parallel.json"
    f.write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    en = rows(load_items("gsm8k_instruct", str(f), "en", cache_dir=cache))
    assert [(r["item_id"], r["prompt"]) for r in en] == [
        ("gsm8k-0", "Tom has 3 apples. How many?"),
        ("gsm8k-1", "Ann has 2 pens."),
    ]
    zh = rows(load_items("gsm8k_instruct", str(f), "zh", strip_template=False, cache_dir=cache))
    assert zh[0]["prompt"].startswith("Below is an instruction") and "汤姆" in zh[0]["prompt"]
    with pytest.raises(DatasetError, match=r"gsm8k_instruct \[de\]: no row"):
        load_items("gsm8k_instruct", str(f), "de", cache_dir=cache)
    assert [r["assistant"] for r in en] == [None, None]
    answered = rows(load_items("gsm8k_instruct", str(f), "en", with_answer=True, cache_dir=cache))
    assert [(r["prompt"], r["assistant"]) for r in answered] == [
        ("Tom has 3 apples. How many?", "Let's think. The answer is 3."),
        ("Ann has 2 pens.", "The answer is 2."),
    ]


def test_alpacare(tmp_path, cache):
    recs = [
        {"instruction": "List symptoms of flu.", "input": "<noinput>", "output": "Fever..."},
        {"instruction": "Summarise the note.", "input": "Patient, 54, chest pain.", "output": "..."},
    ]
    f = write_parquet(tmp_path / "alpacare" / "train-00000-of-00001.parquet", recs)
    got = rows(load_items("alpacare", str(f.parent), "en", cache_dir=cache))
    assert [r["prompt"] for r in got] == ["List symptoms of flu.", "Summarise the note.\n\nPatient, 54, chest pain."]
    assert [r["assistant"] for r in got] == [None, None]
    answered = rows(load_items("alpacare", str(f.parent), "en", with_answer=True, cache_dir=cache))
    assert [r["assistant"] for r in answered] == ["Fever...", "..."]
    with pytest.raises(DatasetError, match="English only"):
        load_items("alpacare", str(f.parent), "de", cache_dir=cache)


# ---------------------------------------------------------------- MGSM


def write_mgsm(root: Path) -> Path:
    # the layout of the hub's Parquet export: <config>/<split>/0000.parquet
    for lang, ql, al in [("en", "Question:", "Step-by-Step Answer:"), ("bn", "প্রশ্ন:", "ধাপে ধাপে উত্তর:")]:
        train = [
            {
                "question": f"{ql} exemplar {i} ({lang})",
                "answer": f"{al} worked {i}. The answer is {i}.",
                "answer_number": i,
                "equation_solution": f"{i} = {i}",
            }
            for i in range(8)
        ]
        test = [
            {"question": f"test problem {i} ({lang})", "answer": None, "answer_number": 10 * i + 1, "equation_solution": None}
            for i in range(3)
        ]
        write_parquet(root / lang / "train" / "0000.parquet", train)
        write_parquet(root / lang / "test" / "0000.parquet", test)
    return root


def test_mgsm_two_shot(tmp_path, cache):
    repo = write_mgsm(tmp_path / "mgsm")
    bn = rows(load_items("mgsm", str(repo), "bn", cache_dir=cache))
    assert [r["item_id"] for r in bn] == ["test-0", "test-1", "test-2"]
    assert bn[1]["answers"] == ["11"]
    assert bn[1]["prompt"] == (
        "প্রশ্ন: exemplar 0 (bn)\nধাপে ধাপে উত্তর: worked 0. The answer is 0.\n\n"
        "প্রশ্ন: exemplar 1 (bn)\nধাপে ধাপে উত্তর: worked 1. The answer is 1.\n\n"
        "প্রশ্ন: test problem 1 (bn)\nধাপে ধাপে উত্তর:"
    )
    zero = rows(load_items("mgsm", str(repo), "en", few_shot=0, cache_dir=cache))
    assert zero[0]["prompt"] == "test problem 0 (en)"
    with pytest.raises(DatasetError, match=r"mgsm: language 'ko' is not available"):
        load_items("mgsm", str(repo), "ko", cache_dir=cache)


# ---------------------------------------------------------------- shared behaviour


def test_seeded_limit_keeps_same_items_across_languages(tmp_path, cache):
    f = write_jsonl(tmp_path / "eclektic_main.jsonl", eclektic_rows(n=12))
    a = [r["item_id"] for r in rows(load_items("eclektic", str(f), "en", limit=4, seed=3, cache_dir=cache))]
    b = [r["item_id"] for r in rows(load_items("eclektic", str(f), "hi", limit=4, seed=3, cache_dir=cache))]
    c = [r["item_id"] for r in rows(load_items("eclektic", str(f), "hi", limit=4, seed=4, cache_dir=cache))]
    assert a == b and len(a) == 4 and a != c
    assert [r["item_id"] for r in rows(load_items("eclektic", str(f), "en", limit=2, cache_dir=cache))] == ["0", "1"]


def test_unknown_options_are_rejected(tmp_path):
    with pytest.raises(DatasetError, match="unknown option"):
        load_items("flores", str(tmp_path), "en", translation="human")
    with pytest.raises(DatasetError, match="not supported"):
        load_items("belebele", str(tmp_path), "en", few_shot=2)
    assert parse_option("gsm8k_instruct", "strip_template", "false") is False
    assert parse_option("mgsm", "few_shot", "2") == 2
    with pytest.raises(DatasetError, match="integer"):
        parse_option("mgsm", "limit", "ten")


def test_gated_dataset_error_says_how_to_authenticate(monkeypatch):
    import datasets
    import httpx2
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import GatedRepoError

    # the exception datasets raises for a gated repo without a token (network is unavailable here)
    simulated = DatasetNotFoundError(
        "Dataset 'facebook/multiloko' is a gated dataset on the Hub. You must be authenticated to access it."
    )
    assert is_auth_error(simulated)
    msg = str(
        describe_load_error(simulated, dataset="multiloko", lang="de", path="facebook/multiloko", config="german", split="dev")
    )
    assert "multiloko [de]" in msg and "huggingface-cli login" in msg and "HF_TOKEN" in msg
    assert "https://huggingface.co/datasets/facebook/multiloko" in msg

    response = httpx2.Response(
        401, request=httpx2.Request("GET", "https://huggingface.co/api/datasets/openlanguagedata/flores_plus")
    )
    inner = GatedRepoError("401 Client Error. Cannot access gated repo.", response=response)
    assert is_auth_error(RuntimeError("wrapped")) is False

    def fake_load_dataset(*args, **kwargs):
        raise OSError("could not fetch") from inner

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    with pytest.raises(DatasetError, match=r"flores \[zh\].*gated.*huggingface-cli login.*HF_TOKEN"):
        load_items("flores", "openlanguagedata/flores_plus", "zh")


def test_prepare_stage_writes_items_contract(tmp_path, cache, monkeypatch):
    f = write_jsonl(tmp_path / "eclektic_main.jsonl", eclektic_rows())
    out = tmp_path / "items" / "eclektic" / "fr.parquet"
    monkeypatch.setenv("HF_DATASETS_CACHE", cache)
    rc = cli_main(
        [
            "prepare",
            "--source",
            "eclektic",
            "--path",
            str(f),
            "--lang",
            "fra_Latn",
            "--out",
            str(out),
            "--limit",
            "2",
            "--system",
            "Answer briefly.",
        ]
    )
    assert rc == 0
    table = read_table(out, contract="items")
    assert table.column("lang").to_pylist() == ["fr", "fr"]
    assert table.column("system").to_pylist() == ["Answer briefly.", "Answer briefly."]
    assert not list(out.parent.glob(".*.tmp"))
    bad = tmp_path / "items" / "eclektic" / "th.parquet"
    assert cli_main(["prepare", "--source", "eclektic", "--path", str(f), "--lang", "th", "--out", str(bad)]) == 2
    assert not bad.exists()
    assert (
        cli_main(
            ["prepare", "--source", "global_mmlu", "--path", str(f), "--lang", "en", "--out", str(bad), "--option", "format"]
        )
        == 2
    )
