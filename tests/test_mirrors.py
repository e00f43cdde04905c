"""Dataset mirrors: each synthetic copy loads through its own loader (via `datasets`), parallel where the source is."""

from __future__ import annotations

import pytest

from moe_routing.cli import main as cli_main
from moe_routing.core.contracts import ITEMS
from moe_routing.data.global_mmlu import MEDICAL_SUBJECTS
from moe_routing.rehearsal.mirrors import MIRRORS, write_mirror
from moe_routing.data.sources import load_items
from moe_routing.rehearsal.synthetic_text import script_of
from moe_routing.core.errors import DatasetError
from moe_routing.core.io import read_table

# source -> (languages, loader options as in the paper configs)
CASES = {
    "eclektic": (["en", "de", "ja"], {}),
    "multiloko": (["en", "de", "zh"], {"split": "dev"}),
    "global_mmlu": (["en", "sw", "hi"], {"split": "test", "format": "short", "subjects": "prehistory"}),
    "flores": (["en", "zh", "or"], {"split": "devtest"}),
    "belebele": (["en", "zh", "bm"], {}),
    "gsm8k_instruct": (["en", "zh"], {"limit": 1000, "seed": 0}),
    "alpacare": (["en"], {"limit": 1000, "seed": 0}),
    "mgsm": (["en", "bn", "ja"], {"few_shot": 2}),
    "paraphrases": (["p0", "p3"], {}),
}
ITEMS_PER_LANG = 6


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirrors")
    made = {}

    def make(source):
        if source not in made:
            langs = CASES[source][0]
            # the FLORES+ loader picks its naming from the path, as for a clone of openlanguagedata/flores_plus
            name = "flores_plus" if source == "flores" else source
            made[source] = write_mirror(source, root / name, languages=langs, items=ITEMS_PER_LANG, seed=1)
        return made[source]

    return make


def test_every_mirrored_source_has_a_case():
    assert sorted(CASES) == sorted(MIRRORS)


@pytest.mark.parametrize("source", sorted(CASES))
def test_mirror_loads_through_its_loader(mirror, source, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    path = mirror(source)
    langs, options = CASES[source]
    tables = {lang: load_items(source, str(path), lang, **options) for lang in langs}
    ids = {}
    for lang, table in tables.items():
        assert table.schema.equals(ITEMS)
        rows = table.to_pylist()
        assert len(rows) == ITEMS_PER_LANG and all(r["prompt"] and r["lang"] == lang for r in rows)
        ids[lang] = [r["item_id"] for r in rows]
    # the same items in every language, worded differently
    assert all(v == ids[langs[0]] for v in ids.values())
    first = {lang: t.column("prompt")[0].as_py() for lang, t in tables.items()}
    assert len(set(first.values())) == len(first)


def test_answers_and_choices_follow_each_source(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    mc = load_items("global_mmlu", str(mirror("global_mmlu")), "hi", split="test", format="mc").to_pylist()
    assert {r["item_id"].split("/")[0] for r in mc} <= set(MEDICAL_SUBJECTS)
    assert all(r["answers"][0] in "ABCD" and len(r["choices"]) == 4 for r in mc)
    bele = load_items("belebele", str(mirror("belebele")), "zh").to_pylist()
    assert all(r["answers"][0] in "ABCD" and r["prompt"].endswith("Answer with the letter of the correct option.") for r in bele)
    mgsm = load_items("mgsm", str(mirror("mgsm")), "bn", few_shot=2).to_pylist()
    assert all(r["answers"][0].isdigit() and r["prompt"].count("\n\n") == 2 for r in mgsm)
    flores = load_items("flores", str(mirror("flores")), "or").to_pylist()
    assert script_of("or") == "Orya" and "\u0b00" <= flores[0]["prompt"][0] <= "\u0b7f"
    assert all(r["answers"] == [] for r in flores)
    loko = load_items("multiloko", str(mirror("multiloko")), "de", split="dev").to_pylist()
    assert all(r["answers"] and not r["item_id"].startswith("german_") for r in loko)  # translations, not local questions


def test_mirrors_are_seeded(tmp_path):
    a = write_mirror("mgsm", tmp_path / "a", languages=["en"], items=3, seed=0)
    b = write_mirror("mgsm", tmp_path / "b", languages=["en"], items=3, seed=0)
    c = write_mirror("mgsm", tmp_path / "c", languages=["en"], items=3, seed=1)
    test = "en/test/0000.parquet"
    assert (a / test).read_bytes() == (b / test).read_bytes() != (c / test).read_bytes()


def test_bad_request_leaves_nothing(tmp_path):
    with pytest.raises(DatasetError, match="mgsm: language 'ko' is not available"):
        write_mirror("mgsm", tmp_path / "m", languages=["en", "ko"])
    with pytest.raises(DatasetError, match="English only"):
        write_mirror("alpacare", tmp_path / "m", languages=["de"])
    with pytest.raises(DatasetError, match="no mirror for source"):
        write_mirror("demo", tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_mirror_stage_feeds_the_prepare_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    out = tmp_path / "mirrors" / "belebele"
    assert cli_main(["mirror", "--source", "belebele", "--out", str(out), "--languages", "en,fr", "--items", "4"]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    assert path == str(out)
    items = tmp_path / "items" / "fr.parquet"
    assert cli_main(["prepare", "--source", "belebele", "--path", path, "--lang", "fr", "--out", str(items)]) == 0
    assert read_table(items, contract="items").num_rows == 4
    # rewriting replaces the folder
    assert cli_main(["mirror", "--source", "belebele", "--out", str(out), "--languages", "en", "--items", "2"]) == 0
    assert sorted(p.name for p in (out / "data").iterdir()) == ["eng_Latn.jsonl"]


def test_a_mirror_holds_what_the_loader_options_ask_for(tmp_path, monkeypatch):
    """The routing paper samples 60 questions of each medical subject: its mirror has that many (the
    rehearsal found a 24-item mirror could not)."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    path = write_mirror("global_mmlu", tmp_path / "gm", languages=["en"], options={"per_subject": 60})
    items = load_items("global_mmlu", str(path), "en", split="test", format="mc", per_subject=60, seed=0)
    assert items.num_rows == 60 * len(MEDICAL_SUBJECTS)
