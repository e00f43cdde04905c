"""Every loader reads each form its dataset is published in: real excerpts (tests/fixtures/datasets,
sources and licences in its README) where licences allow, exact replicas of the layout otherwise.

Per dataset, the forms and the test reading each:
- MGSM: url-nlp release folder, its parent, a hub repository copy, one TSV (real files:
  test_mgsm_release_forms_give_250_items_with_comma_free_numbers); Parquet export
  (test_data_loaders.test_mgsm_two_shot); hub id and its Parquet-export fallback (test_hub_id_falls_back_to_parquet_export).
- FLORES: FLORES-200 release folder, its parent, one file; FLORES+ release (test_flores200_release_*);
  hub copy / save_to_disk (test_data_loaders, test_mirrors).
- BELEBELE: release folder, its parent, one file (real row), 900-row replica (test_belebele_release_*);
  hub copy (test_data_loaders.test_belebele_hub_layout).
- ECLeKTic, MultiLoKo, AlpaCare, GSM8K-Instruct: their release files (test_*_release_layout).
- Global-MMLU: hub copy (test_data_loaders), one JSON export (test_global_mmlu_json_export).
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
from pathlib import Path

import pytest

from moe_routing.cli import main as cli_main
from moe_routing.data import mgsm
from moe_routing.rehearsal.mirrors import (
    eclektic_records,
    gmmlu_record,
    multiloko_record,
    octopus_prompt,
    write_jsonl,
    write_mirror,
)
from moe_routing.data.sources import SOURCES, count_mismatch, get, load_items
from moe_routing.core.errors import DatasetError

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"
MGSM_RELEASE = FIXTURES / "mgsm_url-nlp" / "mgsm"
BELEBELE_RELEASE = FIXTURES / "belebele" / "Belebele"


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "hf_cache")


def column(table, name):
    return table.column(name).to_pylist()


# ---------------------------------------------------------------- MGSM (real files)


def mgsm_hub_copy(root: Path) -> Path:
    """A clone of the hub repository juletxara/mgsm: the release files, its loading script and a README
    whose dataset_info names every config (but no data files: only the script knows them)."""
    root.mkdir(parents=True)
    for f in MGSM_RELEASE.iterdir():
        shutil.copy(f, root / f.name)
    (root / "mgsm.py").write_text("import datasets  # the hub's loading script (never run)\n")
    langs = "bn de en es fr ja ru sw te th zh".split()
    info = "".join(
        f"- config_name: {lang}\n  features:\n  - name: question\n    dtype: string\n  - name: answer_number\n    dtype: int32\n"
        f"  splits:\n  - name: train\n    num_examples: 8\n  - name: test\n    num_examples: 250\n"
        for lang in langs
    )
    (root / "README.md").write_text(f"---\nlicense: cc-by-sa-4.0\ndataset_info:\n{info}---\n# MGSM\n", encoding="utf-8")
    return root


def test_mgsm_release_forms_give_250_items_with_comma_free_numbers(tmp_path, cache):
    forms = {
        "release folder": MGSM_RELEASE,
        "its parent": MGSM_RELEASE.parent,
        "hub repository copy": mgsm_hub_copy(tmp_path / "juletxara_mgsm"),
        "single file": MGSM_RELEASE / "mgsm_en.tsv",
    }
    tables = {name: load_items("mgsm", str(p), "en", cache_dir=cache) for name, p in forms.items()}
    for name, table in tables.items():
        assert table.num_rows == 250, name
        golds = [a[0] for a in column(table, "answers")]
        assert all("," not in g and g.lstrip("-").replace(".", "").isdigit() for g in golds), name
        # the TSV writes 2,125 / 114,200 / 276,000 / 5,600 (rows 147, 202, 231, 250)
        assert [golds[i] for i in (146, 201, 230, 249)] == ["2125", "114200", "276000", "5600"], name
    assert len({tuple(column(t, "prompt")) for t in tables.values()}) == 1
    prompt = column(tables["single file"], "prompt")[0]
    # 2-shot from exemplars.py, the first problem without its answer
    assert prompt.startswith("Question: Roger has 5 tennis balls.")
    assert prompt.endswith("Question: Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and "
                           "bakes muffins for her friends every day with four. She sells the remainder at the farmers' market "
                           "daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?"
                           "\nStep-by-Step Answer:")  # fmt: skip
    assert prompt.count("Step-by-Step Answer:") == 3


def test_mgsm_languages_are_parallel_in_the_release(cache):
    golds = {lang: column(load_items("mgsm", str(MGSM_RELEASE), lang, cache_dir=cache), "answers") for lang in ("en", "de", "zh")}
    assert golds["en"] == golds["de"] == golds["zh"]
    zh = column(load_items("mgsm", str(MGSM_RELEASE), "zh", few_shot=1, cache_dir=cache), "prompt")[0]
    assert zh.startswith("问题：罗杰有 5 个网球。") and zh.endswith("逐步解答：")


def test_mgsm_thousands_separators_are_dropped():
    assert [mgsm.format_number(v) for v in ("2,125", "114,200", " 18 ", 2125, 2125.0, "1,000,000")] == [
        "2125",
        "114200",
        "18",
        "2125",
        "2125",
        "1000000",
    ]
    assert mgsm.format_number("3,5") == "3,5"  # not a thousands separator: left as written


def test_mgsm_single_tsv_needs_its_exemplars_or_zero_shot(tmp_path, cache):
    f = tmp_path / "mgsm_de.tsv"
    shutil.copy(MGSM_RELEASE / "mgsm_de.tsv", f)
    with pytest.raises(DatasetError, match=r"mgsm \[de\]: 2-shot needs the release's exemplars.py next to mgsm_de.tsv"):
        load_items("mgsm", str(f), "de", cache_dir=cache)
    assert load_items("mgsm", str(f), "de", few_shot=0, cache_dir=cache).num_rows == 250
    with pytest.raises(DatasetError, match=r"holds language 'de', not 'en'"):
        load_items("mgsm", str(f), "en", few_shot=0, cache_dir=cache)
    with pytest.raises(DatasetError, match=r"mgsm \[fr\]: .* has MGSM release files but no mgsm_fr.tsv"):
        load_items("mgsm", str(MGSM_RELEASE), "fr", cache_dir=cache)


def test_hub_id_falls_back_to_parquet_export(monkeypatch):
    import datasets

    calls = []
    rows = {"test": [{"question": "q", "answer_number": 7}], "train": [{"question": "Question: e", "answer": "A: 1"}] * 2}

    def fake_load_dataset(path, **kw):
        calls.append((path, kw.get("name"), kw.get("data_dir"), kw.get("revision"), kw["split"]))
        if kw.get("revision") != "refs/convert/parquet":
            raise RuntimeError("Dataset scripts are no longer supported, but found mgsm.py")
        return datasets.Dataset.from_list(rows[kw["split"]])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    table = load_items("mgsm", None, "de")
    assert column(table, "answers") == [["7"]]
    assert calls[:2] == [
        ("juletxara/mgsm", "de", None, None, "test"),
        ("juletxara/mgsm", None, "de", "refs/convert/parquet", "test"),
    ]


# ---------------------------------------------------------------- FLORES-200 (replica of the release)


FLORES_CODES = ("eng_Latn", "zho_Hans", "fra_Latn")


def flores200_release(root: Path) -> Path:
    """flores200_dataset/{dev,devtest}/{code}.{split}: one sentence per line, line n the same sentence in every language."""
    rel = root / "flores200_dataset"
    for split, n in (("dev", 997), ("devtest", 1012)):
        (rel / split).mkdir(parents=True)
        for code in FLORES_CODES:
            (rel / split / f"{code}.{split}").write_text("".join(f"{code} {split} {i}.\n" for i in range(1, n + 1)), "utf-8")
    (rel / "metadata_devtest.tsv").write_text("URL\tdomain\ttopic\thas_image\thas_hyperlink\n", encoding="utf-8")
    return rel


def test_flores200_release_gives_1012_aligned_sentences(tmp_path, cache):
    rel = flores200_release(tmp_path)
    by_lang = {lang: load_items("flores", str(rel), lang, cache_dir=cache) for lang in ("en", "zh", "fr")}
    for lang, table in by_lang.items():
        assert table.num_rows == 1012, lang
    assert column(by_lang["en"], "item_id") == column(by_lang["zh"], "item_id") == [str(i) for i in range(1, 1013)]
    assert column(by_lang["zh"], "prompt")[41] == "zho_Hans devtest 42."  # FLORES-200 calls Chinese zho_Hans
    assert load_items("flores", str(tmp_path), "zh", cache_dir=cache).equals(by_lang["zh"])  # the parent folder
    single = load_items("flores", str(rel / "devtest" / "fra_Latn.devtest"), "fr", cache_dir=cache)
    assert single.equals(by_lang["fr"])
    assert load_items("flores", str(rel), "en", split="dev", cache_dir=cache).num_rows == 997
    with pytest.raises(
        DatasetError, match=r"flores \[de\]: .* FLORES release without a 'devtest' file for this language \(deu_Latn\)"
    ):
        load_items("flores", str(rel), "de", cache_dir=cache)


def test_flores_plus_release_naming(tmp_path, cache):
    rel = tmp_path / "floresp-v2.0-rc.3"
    (rel / "devtest").mkdir(parents=True)
    (rel / "devtest" / "devtest.cmn_Hans").write_text("第一句\n第二句\n", encoding="utf-8")
    # the file naming says FLORES+, so Chinese is cmn_Hans, whatever the folder is called
    other = tmp_path / "copy"
    shutil.copytree(rel, other)
    for path in (rel, other, other / "devtest" / "devtest.cmn_Hans"):
        assert column(load_items("flores", str(path), "zh", cache_dir=cache), "prompt") == ["第一句", "第二句"]


# ---------------------------------------------------------------- BELEBELE (real row, replica release)


def test_belebele_release_real_row(tmp_path, cache):
    for path in (BELEBELE_RELEASE, BELEBELE_RELEASE.parent, BELEBELE_RELEASE / "eng_Latn.jsonl"):
        rows = load_items("belebele", str(path), "en", style="harness", cache_dir=cache).to_pylist()
        assert [r["item_id"] for r in rows] == ["https://en.wikibooks.org/wiki/Accordion/Right_hand#1"]
        assert rows[0]["answers"] == ["A"]
        assert rows[0]["prompt"].startswith("P: Make sure your hand is as relaxed as possible")
        assert rows[0]["prompt"].endswith(
            "D: Increase the speed with which you operate the bellows to achieve extra volume\nAnswer:"
        )


def belebele_release(root: Path, codes=("eng_Latn", "zho_Hans"), n=900) -> Path:
    real = json.loads((BELEBELE_RELEASE / "eng_Latn.jsonl").read_text(encoding="utf-8"))
    rel = root / "Belebele"
    for code in codes:
        rows = [
            {**real, "link": f"https://en.wikibooks.org/wiki/P{i // 2}", "question_number": i % 2 + 1, "dialect": code}
            for i in range(n)
        ]
        write_jsonl(rel / f"{code}.jsonl", rows)
    return rel


def test_belebele_release_gives_900_aligned_questions(tmp_path, cache):
    rel = belebele_release(tmp_path)
    en, zh = (load_items("belebele", str(tmp_path), lang, cache_dir=cache) for lang in ("en", "zh"))
    assert en.num_rows == zh.num_rows == 900 and column(en, "item_id") == column(zh, "item_id")
    assert count_mismatch("belebele", en) is None
    with pytest.raises(DatasetError, match=r"belebele \[fr\]: .* no fra_Latn.jsonl, i.e. the language is missing; it has 2"):
        load_items("belebele", str(rel), "fr", cache_dir=cache)


# ---------------------------------------------------------------- ECLeKTic, MultiLoKo, AlpaCare, GSM8K-Instruct (replicas)


def test_eclektic_release_layout(tmp_path, cache):
    write_jsonl(tmp_path / "eclektic" / "eclektic_main.jsonl", eclektic_records(5))
    (tmp_path / "eclektic" / "README.md").write_text("ECLeKTic\n")
    for path in (tmp_path / "eclektic", tmp_path / "eclektic" / "eclektic_main.jsonl"):
        assert column(load_items("eclektic", str(path), "he", cache_dir=cache), "item_id") == ["0", "1", "2", "3", "4"]


def test_multiloko_release_layout(tmp_path, cache):
    bench = tmp_path / "benchmark_data"
    english = [multiloko_record(f"{i:03d}_Page_{i}", f"Question {i}?", [f"A{i}"], f"Text {i}.", "a name") for i in range(3)]
    write_jsonl(bench / "english" / "dev.jsonl", english)
    write_jsonl(bench / "english" / "knowledge_fewshot.jsonl", english[:1])
    for kind in ("human", "machine"):
        for lang in ("german", "french"):
            rows = [{**r, "question": f"{kind} {lang} {r['question']}"} for r in english]
            write_jsonl(bench / "english" / f"dev_translated_{kind}_{lang}.jsonl", rows)
        write_jsonl(bench / "german" / f"dev_translated_{kind}_english.jsonl", english)
    write_jsonl(bench / "german" / "dev.jsonl", [multiloko_record("de_local", "Lokal?", ["Bonn"])])
    write_jsonl(bench / "german" / "knowledge_fewshot.jsonl", [multiloko_record("de_shot", "Beispiel?", ["Ja"])])
    de = load_items("multiloko", str(tmp_path), "de", cache_dir=cache)
    fr = load_items("multiloko", str(bench), "fr", translation="machine", cache_dir=cache)
    assert column(de, "item_id") == column(fr, "item_id") == ["000_Page_0", "001_Page_1", "002_Page_2"]
    assert column(de, "prompt")[0] == "human german Question 0?" and column(fr, "prompt")[0] == "machine french Question 0?"


def test_alpacare_release_layout(tmp_path, cache):
    recs = [
        {"instruction": "Explain the dosage of ibuprofen.", "input": "<noinput>", "output": "Ibuprofen ..."},
        {"instruction": "Summarise the note.", "input": "Patient, 54, chest pain.", "output": "A 54-year-old ..."},
    ]
    repo = tmp_path / "AlpaCare"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "MedInstruct-52k.json").write_text(json.dumps(recs, indent=4), encoding="utf-8")
    (repo / "data" / "med_seed.json").write_text(json.dumps([{"instruction": "seed", "instances": []}]), encoding="utf-8")
    write_jsonl(repo / "data" / "MedInstruct-test.jsonl", [{**recs[0], "difficulty": "3"}])
    for path in (repo, repo / "data", repo / "data" / "MedInstruct-52k.json"):
        table = load_items("alpacare", str(path), "en", cache_dir=cache)
        assert column(table, "prompt") == ["Explain the dosage of ibuprofen.", "Summarise the note.\n\nPatient, 54, chest pain."]


def test_gsm8k_instruct_release_layout(tmp_path, cache):
    recs = [
        {"prompt": octopus_prompt("English", "Tom has 3 apples."), "chosen": "3"},
        {"prompt": octopus_prompt("German", "Tom hat 3 Äpfel."), "chosen": "3"},
    ]
    repo = tmp_path / "GSM8KInstruct_Parallel"
    repo.mkdir()
    (repo / "MGSM8KInstruct_Parallel.json").write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    (repo / "README.md").write_text("---\nlicense: apache-2.0\n---\n# MGSM8KInstruct\n", encoding="utf-8")
    (repo / "MSVAMP_test.json").write_text(json.dumps([{"other": "schema"}]), encoding="utf-8")
    assert column(load_items("gsm8k_instruct", str(repo), "de", cache_dir=cache), "prompt") == ["Tom hat 3 Äpfel."]


def test_global_mmlu_json_export(tmp_path, cache):
    rows = [gmmlu_record(f"virology/test/{i}", "virology", f"Q{i}?", ["a", "b", "c", "d"], "C") for i in range(3)]
    f = tmp_path / "global_mmlu_sw_test.json"
    f.write_text(json.dumps(rows), encoding="utf-8")
    assert column(load_items("global_mmlu", str(f), "sw", cache_dir=cache), "answers") == [["C"]] * 3


# ---------------------------------------------------------------- unknown layouts, offline, published counts


@pytest.mark.parametrize("source", sorted(s for s in SOURCES if s != "paraphrases"))
def test_unknown_layout_is_one_line_naming_the_forms(source, tmp_path, cache):
    odd = tmp_path / "download"
    odd.mkdir()
    (odd / "scan.pdf").write_bytes(b"%PDF-1.4")
    (odd / "notes.docx").write_bytes(b"PK")
    lang = "en"
    with pytest.raises(DatasetError) as err:
        load_items(source, str(odd), lang, cache_dir=cache)
    msg = str(err.value)
    assert "\n" not in msg and "matches none of the forms this loader reads" in msg, msg
    assert all(form in msg for form in get(source).FORMS), msg
    assert "Found: notes.docx, scan.pdf" in msg and "language is missing" not in msg


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_local_copies_are_read_offline_whatever_the_environment(tmp_path, monkeypatch):
    import datasets.config

    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    paths = {
        "mgsm": [MGSM_RELEASE, MGSM_RELEASE / "mgsm_en.tsv"],
        "flores": [flores200_release(tmp_path / "f200")],
        "belebele": [BELEBELE_RELEASE],
    }
    for source in sorted(s for s in SOURCES if s != "paraphrases"):
        name = "flores_plus" if source == "flores" else source
        paths.setdefault(source, []).append(write_mirror(source, tmp_path / "mirrors" / name, languages=["en"], items=4))
    _no_network(monkeypatch)
    for source, found in paths.items():
        for path in found:
            assert load_items(source, str(path), "en", limit=1).num_rows == 1, (source, path)
    assert datasets.config.HF_HUB_OFFLINE is False  # switched off only while a local copy is read


def test_published_counts():
    assert get("mgsm").published_count(None, {}) == 250
    assert get("flores").published_count("devtest", {}) == 1012 and get("flores").published_count("dev", {}) == 997
    assert get("belebele").published_count(None, {}) == 900
    assert get("global_mmlu").published_count("test", {"per_subject": 60}) == 420
    assert get("global_mmlu").published_count("test", {"per_subject": 60, "subjects": "anatomy,virology"}) == 120
    assert get("global_mmlu").published_count("test", {}) is None


def test_prepare_warns_when_a_copy_differs_from_the_published_count(tmp_path, caplog):
    # the failure: a header-less TSV read with a header leaves 249 rows; a truncated copy does too
    short = tmp_path / "mgsm"
    short.mkdir()
    shutil.copy(MGSM_RELEASE / "exemplars.py", short / "exemplars.py")
    lines = (MGSM_RELEASE / "mgsm_en.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (short / "mgsm_en.tsv").write_text("".join(lines[:249]), encoding="utf-8")
    for path, warned in ((MGSM_RELEASE, False), (short, True)):
        caplog.clear()
        out = tmp_path / "items" / f"{path.parent.name}" / "en.parquet"
        with caplog.at_level(logging.WARNING):
            assert cli_main(["prepare", "--source", "mgsm", "--path", str(path), "--lang", "en", "--out", str(out)]) == 0
        hits = [r.getMessage() for r in caplog.records if "published split has 250" in r.getMessage()]
        assert bool(hits) is warned, hits
    assert "mgsm [en]: 249 items, but the published split has 250" in hits[0]
    # a subset asked for is not a mismatch
    out = tmp_path / "items" / "limited" / "en.parquet"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert (
            cli_main(["prepare", "--source", "mgsm", "--path", str(short), "--lang", "en", "--out", str(out), "--limit", "5"])
            == 0
        )
    assert not [r for r in caplog.records if "published split" in r.getMessage()]


def test_a_mirror_is_not_compared_with_the_published_count(tmp_path, caplog):
    path = write_mirror("mgsm", tmp_path / "mgsm", languages=["en"], items=4)
    out = tmp_path / "items" / "en.parquet"
    with caplog.at_level(logging.WARNING):
        assert cli_main(["prepare", "--source", "mgsm", "--path", str(path), "--lang", "en", "--out", str(out)]) == 0
    assert not [r for r in caplog.records if "published split" in r.getMessage()]


def test_docs_name_the_published_counts():
    doc = (Path(__file__).parents[1] / "docs" / "datasets.md").read_text(encoding="utf-8")
    for phrase in (
        "250 test items per language",
        "devtest 1,012",
        "dev 997",
        "900 questions per language",
        "420 = 60 per subject",
    ):
        assert phrase in doc, phrase
    for source in sorted(s for s in SOURCES if s != "paraphrases"):
        assert get(source).FORMS, source


def test_a_hub_readme_without_data_is_a_layout_problem_not_a_missing_language(tmp_path, cache):
    # the case: a README whose dataset_info names the configs, but data only a loading script knows
    repo = mgsm_hub_copy(tmp_path / "juletxara_mgsm")
    for f in repo.glob("*.tsv"):
        f.unlink()
    with pytest.raises(DatasetError) as err:
        load_items("mgsm", str(repo), "en", cache_dir=cache)
    msg = str(err.value)
    assert "matches none of the forms this loader reads" in msg and "language is missing" not in msg, msg
    assert "Found: README.md, exemplars.py, mgsm.py" in msg
