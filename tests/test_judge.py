"""Judges: string match, multiple choice, numbers, LLM judge through a fake backend, and the stage."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from moe_routing.judging import judge as J
from moe_routing.cli import main
from moe_routing.core.contracts import GENERATIONS_BASE, ITEMS
from moe_routing.core.io import read_frame, write_parquet

CHOICES = ["London", "Paris", "Rome", "Berlin"]


# ---------------------------------------------------------------- exact / contains


def test_normalize_text():
    assert J.normalize_text("  Hello,   WORLD!! ") == "hello world"
    assert J.normalize_text("Ｐａｒｉｓ。") == "paris"  # full-width letters and CJK full stop
    assert J.normalize_text("STRASSE") == J.normalize_text("Straße")  # casefold, not lower
    assert J.normalize_text("हिन्दी") == "हिन्दी"  # combining marks kept
    assert J.normalize_text("") == "" and J.normalize_text(None) == ""


@pytest.mark.parametrize(
    "output, answers, exact, contains",
    [
        ("Paris.", ["Paris"], True, True),
        ("**Paris**", ["paris"], True, True),
        ("The capital is Paris, of course.", ["Paris"], False, True),
        ("Parisian food", ["Paris"], False, False),  # word boundary
        ("100 years", ["10"], False, False),
        ("<think>maybe Rome</think>Paris", ["Rome"], False, False),  # thinking is not the answer
        ("<think>Rome... still thinking", ["Rome"], False, False),  # truncated thinking: no answer
        ("首都是巴黎。", ["巴黎"], False, True),  # no spaces in Chinese
        ("Ça va", ["ca va"], False, False),  # accents are kept
        ("", ["Paris"], False, False),
    ],
)
def test_exact_and_contains(output, answers, exact, contains):
    assert J.judge_exact(output, answers)[0] is exact
    assert J.judge_contains(output, answers)[0] is contains


def test_answer_that_normalises_to_empty_is_ignored():
    # "?" would otherwise be "contained" in every output
    assert J.judge_contains("anything", ["?", ""])[0] is False


# ---------------------------------------------------------------- multiple choice


@pytest.mark.parametrize(
    "output, index, how",
    [
        ("The answer is (B)", 1, "explicit"),
        ("B.", 1, "leading"),
        ("**C**", 2, "leading"),
        ("answer: d", 3, "explicit"),
        ("Answer: **C** because Rome", 2, "explicit"),
        ("I first thought A. The correct answer is C.", 2, "explicit"),  # last explicit wins
        ("(b) Paris", 1, "leading"),
        ("Ｄ", 3, "leading"),  # full-width letter
        ("I pick C because it is old", 2, "standalone"),
        ("A dog would say Paris", 1, "text"),  # sentence-initial article A is not an option
        ("Paris", 1, "text"),
        ("It must be paris!", 1, "text"),
        ("La respuesta es B", 1, "standalone"),
        ("<think>A? no</think> B", 1, "leading"),
        ("The answer is a bit unclear, but B", 1, "standalone"),
        ("answer: d.", 3, "explicit"),
        ("Option B is correct, not option C", 1, "explicit"),  # a negated mention is not the answer
        ("The answer is B rather than C", 1, "explicit"),
        ("It is C, not B.", 2, "standalone"),
        ("The answer is not B, it is C", 2, "standalone"),
        ("Not A. The answer is D", 3, "explicit"),
    ],
)
def test_extract_choice(output, index, how):
    got = J.extract_choice(output, CHOICES)
    assert (got.index, got.how) == (index, how)


@pytest.mark.parametrize("output", ["A or C", "Paris or Rome", "I don't know", ""])
def test_extract_choice_ambiguous_or_missing(output):
    assert J.extract_choice(output, CHOICES).index is None


def test_choice_text_inside_longer_option_is_not_a_rival():
    choices = ["Paris", "Paris, Texas", "Rome", "Oslo"]
    assert J.extract_choice("It is Paris, Texas", choices).index == 1


def test_gold_choice_and_judge_mc():
    assert J.gold_choice(["B"], CHOICES) == 1
    assert J.gold_choice(["(c)"], CHOICES) == 2
    assert J.gold_choice(["Berlin"], CHOICES) == 3
    with pytest.raises(J.JudgeError, match="name no option"):
        J.gold_choice(["Madrid"], CHOICES)
    assert J.judge_mc("The answer is B", ["B"], CHOICES) == (True, "picked B (explicit); gold B")
    assert J.judge_mc("A or C", ["A"], CHOICES)[0] is False
    with pytest.raises(J.JudgeError, match="needs items with choices"):
        J.judge_mc("B", ["B"], None)


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "text, readings",
    [
        ("The answer is 18.", {"18"}),
        ("So she pays $1,000 in total", {"1000", "1.000"}),
        ("Er zahlt 1.000 Euro", {"1000", "1.000"}),
        ("3 + 4 = 7, then -5 degrees", {"-5"}),
        ("pages 3-5", {"5"}),
        ("It is 2,5 kg", {"2.5"}),
        ("1.000.000", {"1000000"}),
        ("12,345,678 people", {"12345678"}),
        ("1 000 000 dollars", {"1000000"}),
        ("1 000,50 €", {"1000.50"}),
        ("1.234,5 Euro", {"1234.5"}),
        ("1,5000", {"1.5"}),
        ("1,000.25", {"1000.25"}),
        ("১২ টি আপেল, মোট ২৫", {"25"}),  # Bengali
        ("उत्तर १२३ है", {"123"}),  # Devanagari
        ("คำตอบคือ ๔๒", {"42"}),  # Thai
        ("答案是１２", {"12"}),  # full-width
        ("الجواب ٣٫٥", {"3.5"}),  # Arabic-Indic with Arabic decimal separator
        ("3.5 hours", {"3.5"}),
        ("50%", {"50"}),
        ("the area is 4 m²", {"4"}),  # superscript is not a digit
    ],
)
def test_last_number(text, readings):
    got = J.last_number(text)
    assert got is not None
    assert got.readings == {Decimal(r) for r in readings}


def test_judge_number():
    assert J.judge_number("The answer is 1,000.", ["1000"])[0]
    assert J.judge_number("Die Antwort ist 1.000", ["1000"])[0]
    assert J.judge_number("18 apples, then 20", ["18"])[0] is False  # the last number counts
    assert J.judge_number("no idea", ["18"]) == (False, "no number; gold 18")
    assert J.judge_number("৪২", ["42"])[0]
    assert J.judge_number("It is 42.0", ["42"])[0]
    with pytest.raises(J.JudgeError, match="no unambiguous number"):
        J.judge_number("42", ["forty-two"])
    assert J.last_number("no digits here") is None


@pytest.mark.parametrize(
    "output, gold, ok",
    [
        ("The answer is 18. Question: John has 5 apples", "18", True),  # a made-up next question is cut off
        ("Die Antwort ist 7.\n\nFrage: Anna hat 3 Äpfel", "7", True),
        ("答案是12。问题：小明有5个苹果", "12", True),
        ("La réponse est 9.\nQuestion : Marie a 4 pommes", "9", True),
        ("Question: how many? 5", "5", False),  # the harness would have stopped before any answer
        ("18 apples, and the question was easy: 20", "20", True),
    ],
)
def test_number_judge_stops_at_a_made_up_question(output, gold, ok):
    assert J.judge_number(output, [gold])[0] is ok


# ---------------------------------------------------------------- LLM judge


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("YES", True),
        ("no", False),
        ("**Yes**.", True),
        ("NO. The response says Rome.", False),
        ("<think>yes, hmm, no</think>\nNO", False),
        ("Nope", None),
        ("The answer: yes", True),
        ("", None),
        (None, None),
    ],
)
def test_parse_yes_no(reply, verdict):
    assert J.parse_yes_no(reply) is verdict


class FakeBackend:
    """Implements the Backend protocol: answers YES when the response contains the gold answer."""

    name = "fake"
    model_path = "fake"
    load_seconds = 0.0

    def __init__(self):
        self.calls = []

    def generate(self, items, interventions=None, options=None):
        self.calls.append((items, options))
        outs = []
        for r in items.iter_rows(named=True):
            gold = r["prompt"].split("Gold answer: ")[1].split("\n")[0]
            resp = r["prompt"].split("Response: ")[1].split("\n")[0]
            outs.append("garbled" if "??" in resp else ("**YES**" if gold.split(" / ")[0] in resp else "NO."))
        # reversed order: the judge must match replies by (item_id, lang), not by position
        frame = pl.DataFrame({"item_id": items["item_id"], "lang": items["lang"], "output": outs}).reverse()
        return frame.to_arrow()


def items_frame(rows):
    return pl.from_arrow(pa.Table.from_pylist(rows, schema=ITEMS))


def gens_frame(rows):
    full = [{**r, "prompt_token_ids": [1], "output_token_ids": [2]} for r in rows]
    return pl.from_arrow(pa.Table.from_pylist(full, schema=GENERATIONS_BASE))


ITEMS_ROWS = [
    {"item_id": "q1", "lang": "fr", "prompt": "Capitale de la France ?", "system": None, "answers": ["Paris"], "choices": None},
    {
        "item_id": "q2",
        "lang": "fr",
        "prompt": "Capitale de l'Italie ?",
        "system": None,
        "answers": ["Rome", "Roma"],
        "choices": None,
    },
    {
        "item_id": "q3",
        "lang": "fr",
        "prompt": "Capitale de l'Allemagne ?",
        "system": None,
        "answers": ["Berlin"],
        "choices": None,
    },
]
GEN_ROWS = [
    {"item_id": "q1", "lang": "fr", "output": "C'est Paris."},
    {"item_id": "q2", "lang": "fr", "output": "Milan"},
    {"item_id": "q3", "lang": "fr", "output": "?? "},
]


def test_llm_judge_with_fake_backend():
    backend = FakeBackend()
    prompt = J.load_judge_prompt()
    out = J.judge_frame(items_frame(ITEMS_ROWS), gens_frame(GEN_ROWS), "llm", backend=backend, prompt=prompt, max_new_tokens=8)
    assert out["item_id"].to_list() == ["q1", "q2", "q3"]
    assert out["correct"].to_list() == [True, False, False]
    assert out["detail"].to_list() == ["YES: **YES**", "NO: NO.", "unparsed: garbled"]
    assert set(out["judge"]) == {"llm"}
    items, options = backend.calls[0]
    assert options.capture is False and options.max_new_tokens == 8
    assert items["system"][0] == prompt.system
    assert "Question: Capitale de la France ?" in items["prompt"][0]
    assert "Gold answer: Rome / Roma" in items["prompt"][1]
    assert set(items.columns) == set(ITEMS.names)


def test_llm_judge_needs_backend_and_answers():
    with pytest.raises(J.JudgeError, match="judge model"):
        J.judge_frame(items_frame(ITEMS_ROWS), gens_frame(GEN_ROWS), "llm")
    empty = [dict(ITEMS_ROWS[0], answers=[]), *ITEMS_ROWS[1:]]
    with pytest.raises(J.JudgeError, match="no non-empty gold answer.*q1/fr"):
        J.judge_frame(items_frame(empty), gens_frame(GEN_ROWS), "contains")
    with pytest.raises(J.JudgeError, match=r"generations: duplicate \(item_id, lang\) rows, e.g. \('q1', 'fr'\)"):
        J.judge_frame(items_frame(ITEMS_ROWS), gens_frame(GEN_ROWS + GEN_ROWS[:1]), "contains")


def test_judge_stage_closes_its_judge_model(tmp_path, monkeypatch):
    """The stage stops an LLM judge's engine when done, and when judging fails (a vLLM judge would
    otherwise keep the job waiting for the engine's own shutdown at exit)."""
    import moe_routing.capture.backends

    closed = []

    class Closing(FakeBackend):
        def close(self):
            closed.append(True)

    monkeypatch.setattr(moe_routing.capture.backends, "load_backend", lambda *a, **k: Closing())
    ip, gp = tmp_path / "fr.parquet", tmp_path / "gen.parquet"
    write_parquet(pa.Table.from_pylist(ITEMS_ROWS, schema=ITEMS), ip)
    write_parquet(gens_frame(GEN_ROWS), gp)
    args = ["judge", "--items", str(ip), "--judge", "llm", "--judge-model", "m", "--out", str(tmp_path / "j.parquet")]
    assert main([*args, "--generations", str(gp)]) == 0
    assert read_frame(tmp_path / "j.parquet", "judgments")["correct"].to_list() == [True, False, False]
    write_parquet(gens_frame([{"item_id": "zzz", "lang": "fr", "output": "B"}]), tmp_path / "bad.parquet")
    assert main([*args, "--generations", str(tmp_path / "bad.parquet")]) == 2
    assert closed == [True, True]


def test_judge_prompt_template_checks(tmp_path):
    bad = tmp_path / "p.txt"
    bad.write_text("[user]\nQuestion: {question}\nResponse: {response}\n")
    with pytest.raises(J.JudgeError, match="lacks the placeholder {gold}"):
        J.load_judge_prompt(bad)


# ---------------------------------------------------------------- stage


def test_judge_stage_pairs_files_and_matches_on_keys(tmp_path, capsys):
    mc_items = [
        {"item_id": f"m{i}", "lang": lang, "prompt": "?", "system": None, "answers": [gold], "choices": CHOICES}
        for lang in ("en", "de")
        for i, gold in enumerate("BCA")
    ]
    outputs = {"en": ["The answer is B", "C", "D"], "de": ["Die Antwort ist (B)", "**B**", "A oder C"]}
    for lang in ("en", "de"):
        ip, gp, op = (
            tmp_path / "items" / f"{lang}.parquet",
            tmp_path / f"gen_{lang}.parquet",
            tmp_path / "judged" / f"{lang}.parquet",
        )
        write_parquet(pa.Table.from_pylist([r for r in mc_items if r["lang"] == lang], schema=ITEMS), ip)
        # generations in another order than the items
        rows = [{"item_id": f"m{i}", "lang": lang, "output": o} for i, o in enumerate(outputs[lang])][::-1]
        write_parquet(gens_frame(rows), gp)
        assert main(["judge", "--items", str(ip), "--generations", str(gp), "--out", str(op), "--judge", "mc"]) == 0
    en = read_frame(tmp_path / "judged" / "en.parquet", "judgments").sort("item_id")
    de = read_frame(tmp_path / "judged" / "de.parquet", "judgments").sort("item_id")
    assert en["correct"].to_list() == [True, True, False]
    assert de["correct"].to_list() == [True, False, False]
    assert de["detail"].to_list() == [
        "picked B (standalone); gold B",
        "picked B (leading); gold C",
        "picked - (ambiguous:A,C); gold A",
    ]

    acc = tmp_path / "acc.tsv"
    assert (
        main(
            [
                "accuracy",
                "--judgments",
                str(tmp_path / "judged" / "en.parquet"),
                str(tmp_path / "judged" / "de.parquet"),
                "--out",
                str(acc),
            ]
        )
        == 0
    )
    table = pl.read_csv(acc, separator="\t")
    assert table.rows() == [("de", pytest.approx(1 / 3), 3), ("en", pytest.approx(2 / 3), 3)]

    # a generation whose item is missing is a clear error naming the file
    write_parquet(gens_frame([{"item_id": "zzz", "lang": "en", "output": "B"}]), tmp_path / "gen_bad.parquet")
    rc = main(
        [
            "judge",
            "--items",
            str(tmp_path / "items" / "en.parquet"),
            "--generations",
            str(tmp_path / "gen_bad.parquet"),
            "--out",
            str(tmp_path / "x.parquet"),
            "--judge",
            "mc",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "gen_bad.parquet" in err and "zzz/en" in err
    assert not (tmp_path / "x.parquet").exists()
    # a chunk of languages: several items files, one generations file
    both = tmp_path / "gen_en+de.parquet"
    write_parquet(pa.concat_tables([pq.read_table(tmp_path / f"gen_{lang}.parquet") for lang in ("en", "de")]), both)
    rc = main(
        [
            "judge",
            "--items",
            str(tmp_path / "items" / "en.parquet"),
            str(tmp_path / "items" / "de.parquet"),
            "--generations",
            str(both),
            "--out",
            str(tmp_path / "en+de.parquet"),
            "--judge",
            "mc",
        ]
    )
    assert rc == 0
    chunk = read_frame(tmp_path / "en+de.parquet", "judgments")
    assert chunk.sort("lang", "item_id")["correct"].to_list() == de["correct"].to_list() + en["correct"].to_list()
