"""Judges: decide whether a generation answers its item correctly.

Four string judges and one model judge, all returning rows of the judgments contract
(item_id, lang, correct, judge, detail):

- ``exact``    normalised output == a normalised gold answer;
- ``contains`` a normalised gold answer occurs in the normalised output;
- ``mc``       the chosen option (letter or option text) is the gold option;
- ``number``   the last number in the output equals the gold number (MGSM);
- ``llm``      a judge model reads question, gold answer and response and says YES or NO
  (the XICI paper's autorater).

Policies (documented here because the tests pin them):

Normalisation: Unicode NFKC, casefold, every punctuation or symbol character becomes a
space, whitespace runs collapse to one space, ends stripped. Combining marks stay
(they carry meaning in Devanagari, Bengali, Thai...). ``contains`` matches whole words
(space-delimited, so "10" is not in "100") except for answers in CJK, kana, Thai or Hangul,
where particles attach to words and a substring match is used. A gold answer that normalises to
the empty string is ignored; an item left with no usable gold answer is an error, not a
silent "wrong", because it means the dataset is not judgeable by this judge.

Multiple choice, in order of precedence:
1. explicit statements ("the answer is (B)", "Answer: d", "correct option: **C**"):
   the *last* one wins, since models often revise ("I thought A... final answer: C");
   a negated one does not count ("Option B is correct, not option C" is B);
2. the output starts with a bare option label ("B", "B.", "(B)", "b) Paris", "**C**");
3. exactly one distinct stand-alone upper-case label in the output ("I pick C because...";
   a sentence-initial "A" followed by a lower-case word other than or/and/is/oder/ou/o... is read as
   the English article);
   several distinct labels are ambiguous → incorrect, detail ``ambiguous``; negated labels
   ("C, not B") are left out;
4. option text: the normalised output equals one option, else exactly one option's text
   occurs in it (several → ambiguous).
Full-width letters (Ｂ) are read through NFKC. The gold option is a label ("B") or the
option's text.

Numbers: digits of any script (Bengali, Devanagari, Thai, Arabic-Indic, full-width...)
are read through ``unicodedata.decimal``. Thousands groups with "," or " " are joined
("1,000", "$1,000", "1 000", "1 000,5"); "2,5" is the European decimal 2.5; "1.000.000" is
a million and "1.000,5" is 1000.5. A single separator followed by exactly three digits ("1.000", "1,500") is
ambiguous between a thousands group and a decimal: both readings are kept and the
number matches the gold if either reading does. A minus sign ("-", "−") directly before
a number that does not follow a digit or letter makes it negative ("3-5" is 3 and 5).
The *last* number in the output is the answer (chain-of-thought ends with it), read up to a
made-up next question: the output is cut at the first question label of the LM Evaluation
Harness's MGSM stop sequences ("Question:", "Frage:", "问题：", ...), as the harness stops
generating there, so "The answer is 18. Question: John has 5 apples" is 18. Number words and
CJK numerals (十二) are not read.

LLM judge: the first stand-alone YES or NO in the reply (after removing a thinking block
and markdown) decides; a reply with neither is incorrect with detail ``unparsed``. The raw
reply is kept in ``detail``.

Every judge first removes a ``<think>...</think>`` block from the output (the papers judge
the answer, not the thinking trace).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from moe_routing.core import paths
from moe_routing.core.errors import MoeRoutingError
from moe_routing.core.paths import repository_file

log = logging.getLogger(__name__)

DEFAULT_JUDGE_PROMPT = repository_file(paths.JUDGE_PROMPT)


class JudgeError(MoeRoutingError):
    """Items or generations that a judge cannot score."""


# ---------------------------------------------------------------- text normalisation

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


def strip_thinking(text: str | None) -> str:
    """Drop ``<think>...</think>``; an unclosed ``<think>`` (truncated thinking) leaves no answer."""
    text = text or ""
    text = _THINK_BLOCK.sub(" ", text)
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text.replace("</think>", " ")


def normalize_text(text: str | None) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold()
    chars = [" " if unicodedata.category(c)[0] in "PSZC" else c for c in text]
    return " ".join("".join(chars).split())


def _usable_answers(answers) -> list[str]:
    return [n for n in (normalize_text(a) for a in (answers or [])) if n]


def judge_exact(output: str, answers: list[str]) -> tuple[bool, str]:
    out = normalize_text(strip_thinking(output))
    gold = _usable_answers(answers)
    hit = next((g for g in gold if g == out), None)
    return hit is not None, f"exact:{hit!r}" if hit is not None else f"no exact match in {gold!r}"


def judge_contains(output: str, answers: list[str]) -> tuple[bool, str]:
    # pad with spaces so "10" is not found inside "100" and "cat" not inside "category"
    out = f" {normalize_text(strip_thinking(output))} "
    gold = _usable_answers(answers)
    hit = next((g for g in gold if f" {g} " in out), None)
    if hit is None:
        # scripts written without spaces (zh, ja, th) have no word boundaries to rely on
        hit = next((g for g in gold if _unspaced(g) and g in out), None)
    return hit is not None, f"contains:{hit!r}" if hit is not None else f"none of {gold!r} in output"


def _unspaced(text: str) -> bool:
    return any(unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "THAI", "HANGUL")) for c in text)


# ---------------------------------------------------------------- multiple choice

LABELS = "ABCDEFGHIJ"
_MARKDOWN = re.compile(r"[*_`#]+")


def _labels(n: int) -> str:
    if not 1 <= n <= len(LABELS):
        raise JudgeError(f"multiple-choice items need 1..{len(LABELS)} choices, got {n}")
    return LABELS[:n]


@dataclass(frozen=True)
class Choice:
    index: int | None  # 0-based option index, None when nothing or several were found
    how: str  # explicit / leading / standalone / text / ambiguous / none


def extract_choice(output: str, choices: list[str]) -> Choice:
    labels = _labels(len(choices))
    text = _MARKDOWN.sub("", unicodedata.normalize("NFKC", strip_thinking(output)))
    cls = f"[{labels}{labels.lower()}]"
    explicit = [
        m
        for m in re.finditer(
            rf"(?:answer|option|choice)(?:\s+is)?\s*(?:is|:|：|=|-)?\s*\(?\[?({cls})\]?\)?(?![\w])",
            text,
            flags=re.IGNORECASE,
        )
        # "the answer is a bit unclear": a lower-case label followed by a word is the article
        if not (m.group(1).islower() and re.match(r" [a-z]", text[m.end() :]))
    ]
    explicit = [m for m in explicit if not _negated(text, m)]
    if explicit:
        return Choice(labels.index(explicit[-1].group(1).upper()), "explicit")
    lead = re.match(rf"\s*[\(\[]?({cls})(?:\s*$|[\)\]\.:](?!\w))", text)
    if lead:
        return Choice(labels.index(lead.group(1).upper()), "leading")
    standalone = {
        m.group(1)
        for m in re.finditer(rf"(?<![\w])\(?([{labels}])\)?(?![\w'’])", text)
        if not _is_article(text, m) and not _negated(text, m)
    }
    if len(standalone) == 1:
        return Choice(labels.index(standalone.pop()), "standalone")
    if len(standalone) > 1:
        return Choice(None, "ambiguous:" + ",".join(sorted(standalone)))
    out = normalize_text(text)
    options = [normalize_text(c) for c in choices]
    equal = [i for i, o in enumerate(options) if o and o == out]
    if len(equal) == 1:
        return Choice(equal[0], "text")
    inside = [i for i, o in enumerate(options) if o and f" {o} " in f" {out} "]
    # an option contained in a longer contained option ("Paris" in "Paris, Texas") is not a rival
    inside = [i for i in inside if not any(j != i and options[i] in options[j] for j in inside)]
    if len(inside) == 1:
        return Choice(inside[0], "text")
    if len(inside) > 1:
        return Choice(None, "ambiguous:" + ",".join(labels[i] for i in inside))
    return Choice(None, "none")


_NEGATION = re.compile(
    r"(?:\bnot|\bnever|n't|\bnicht|\bpas|\brather than|\binstead of)\s*(?:the\s+|an?\s+)?(?:option|choice|answer)?\s*$",
    re.IGNORECASE,
)


def _negated(text: str, m: re.Match) -> bool:
    """'not (option) C', 'rather than C': a label the output rules out."""
    return bool(_NEGATION.search(text[max(0, m.start() - 40) : m.start()]))


def _is_article(text: str, m: re.Match) -> bool:
    """'A dog ...' at the start of a sentence is the English article, not option A."""
    if m.group(0) != "A" or text[: m.start()].strip() not in ("",) and not re.search(r"[.!?:]\s*$", text[: m.start()]):
        return False
    nxt = re.match(r" ([a-z]+)", text[m.end() :])
    # "A or C", "A oder C", "A ou C", "A o C": a label joined to another, not an article
    joiners = {
        "or",
        "and",
        "is",
        "was",
        "seems",
        "looks",
        "vs",
        "oder",
        "und",
        "ist",
        "ou",
        "et",
        "est",
        "o",
        "y",
        "e",
        "es",
        "of",
        "oppure",
    }
    return bool(nxt) and nxt.group(1) not in joiners


def gold_choice(answers: list[str], choices: list[str]) -> int:
    """The gold option index from a label ("B") or the option's text."""
    labels = _labels(len(choices))
    options = [normalize_text(c) for c in choices]
    for a in answers or []:
        a_stripped = unicodedata.normalize("NFKC", a).strip().strip("()[].").upper()
        if len(a_stripped) == 1 and a_stripped in labels:
            return labels.index(a_stripped)
        n = normalize_text(a)
        if n and n in options:
            return options.index(n)
    raise JudgeError(f"gold answers {answers!r} name no option of {choices!r} (give a label like 'B' or the option text)")


def judge_mc(output: str, answers: list[str], choices: list[str] | None) -> tuple[bool, str]:
    if not choices:
        raise JudgeError("the mc judge needs items with choices")
    gold = gold_choice(answers, choices)
    got = extract_choice(output, choices)
    labels = _labels(len(choices))
    picked = labels[got.index] if got.index is not None else "-"
    return got.index == gold, f"picked {picked} ({got.how}); gold {labels[gold]}"


# ---------------------------------------------------------------- numbers

_SEPARATORS = {"\u066b": ".", "\u066c": ",", "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2212": "-"}
_NUMBER = re.compile(
    r"(?P<sign>-)?(?P<body>(?:"
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 1,000 / 1,000.5
    r"|\d{1,3}(?: \d{3})+(?:[.,]\d+)?"  # 1 000 / 1 000,5
    r"|\d{1,3}(?:\.\d{3})+,\d+"  # 1.000,5 (German)
    r"|\d{1,3}(?:\.\d{3}){2,}"  # 1.000.000
    r"|\d+(?:[.,]\d+)?"  # 18 / 3.5 / 2,5 / 1.000 (ambiguous)
    r")(?!\d))"
)


def to_ascii_digits(text: str) -> str:
    """Digits of any script → ASCII; Arabic separators, no-break spaces, U+2212 → ASCII."""
    out = []
    for c in text:
        if c in _SEPARATORS:
            out.append(_SEPARATORS[c])
        elif c.isdigit() and unicodedata.category(c) == "Nd":
            out.append(str(unicodedata.decimal(c)))
        else:
            out.append(c)
    return "".join(out)


def _readings(body: str) -> set[Decimal]:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", body):
        readings = {Decimal(body.replace(",", ""))}
        if re.fullmatch(r"\d{1,3},\d{3}", body):  # "1,500" may be the European 1.5
            readings.add(Decimal(body.replace(",", ".")))
        return readings
    if re.fullmatch(r"\d{1,3}(?: \d{3})+(?:[.,]\d+)?", body):
        return {Decimal(body.replace(" ", "").replace(",", "."))}
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d+|\d{1,3}(?:\.\d{3}){2,}", body):
        return {Decimal(body.replace(".", "").replace(",", "."))}
    if re.fullmatch(r"\d{1,3}\.\d{3}", body):  # "1.000": decimal or European thousands
        return {Decimal(body), Decimal(body.replace(".", ""))}
    return {Decimal(body.replace(",", "."))}


@dataclass(frozen=True)
class NumberMatch:
    text: str
    readings: frozenset[Decimal]


def extract_numbers(text: str) -> list[NumberMatch]:
    s = to_ascii_digits(strip_thinking(text))
    found = []
    for m in _NUMBER.finditer(s):
        start = m.start()
        # "3-5" is a range, "well-5" a hyphen: a minus only counts after a non-alphanumeric
        negative = m.group("sign") is not None and (start == 0 or not s[start - 1].isalnum())
        readings = _readings(m.group("body"))
        if negative:
            readings = {-r for r in readings}
        found.append(NumberMatch(m.group(0) if negative else m.group("body"), frozenset(readings)))
    return found


# the question labels the LM Evaluation Harness stops MGSM generation at (native CoT, 11 languages)
QUESTION_LABELS = (
    "Question:",
    "Question :",
    "Frage:",
    "Pregunta:",
    "Задача:",
    "Swali:",
    "প্রশ্ন:",
    "ప్రశ్న:",
    "โจทย์:",
    "問題：",
    "问题：",
)


def answer_part(text: str) -> str:
    """The output up to a made-up next question (the first question label), thinking removed."""
    text = strip_thinking(text)
    cut = min((i for i in (text.find(label) for label in QUESTION_LABELS) if i >= 0), default=len(text))
    return text[:cut]


def last_number(text: str) -> NumberMatch | None:
    """The last number of the answer part (``answer_part``)."""
    nums = extract_numbers(answer_part(text))
    return nums[-1] if nums else None


def gold_number(answers: list[str]) -> Decimal:
    for a in answers or []:
        s = to_ascii_digits(str(a)).strip().replace(",", "").replace(" ", "")
        try:
            return Decimal(s)
        except InvalidOperation:
            nums = extract_numbers(str(a))
            if len(nums) == 1 and len(nums[0].readings) == 1:
                return next(iter(nums[0].readings))
    raise JudgeError(f"gold answers {answers!r} hold no unambiguous number")


def judge_number(output: str, answers: list[str]) -> tuple[bool, str]:
    gold = gold_number(answers)
    got = last_number(output)
    if got is None:
        return False, f"no number; gold {gold}"
    ok = any(r == gold for r in got.readings)
    return ok, f"last number {got.text!r}; gold {gold}"


# the judges that read the verdict off the output itself: name -> (output, answers, choices) -> (correct, reason)
ANSWER_JUDGES = {
    "exact": lambda output, answers, choices: judge_exact(output, answers),
    "contains": lambda output, answers, choices: judge_contains(output, answers),
    "mc": judge_mc,
    "number": lambda output, answers, choices: judge_number(output, answers),
}
# the one registry of judges (the llm judge asks a judge model): the judge stage's choices follow it, and
# tests/test_registries.py ties the config schema's `judge` values to it
JUDGES = (*ANSWER_JUDGES, "llm")


# ---------------------------------------------------------------- LLM judge


@dataclass(frozen=True)
class JudgePrompt:
    system: str | None
    user: str


def load_judge_prompt(path: str | Path = DEFAULT_JUDGE_PROMPT) -> JudgePrompt:
    """Template file: a ``[system]`` section and a ``[user]`` section with {question}, {gold}, {response}."""
    p = Path(path)
    if not p.exists():
        raise JudgeError(f"{p}: judge prompt template not found")
    text = p.read_text(encoding="utf-8")
    parts = re.split(r"^\[(system|user)\]\s*$", text, flags=re.MULTILINE)
    sections = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections:
        raise JudgeError(f"{p}: judge prompt template has no [user] section")
    for key in ("{question}", "{gold}", "{response}"):
        if key not in sections["user"]:
            raise JudgeError(f"{p}: [user] section lacks the placeholder {key}")
    return JudgePrompt(sections.get("system") or None, sections["user"])


def parse_yes_no(reply: str | None) -> bool | None:
    text = _MARKDOWN.sub("", unicodedata.normalize("NFKC", strip_thinking(reply))).upper()
    m = re.search(r"(?<![A-Z])(YES|NO)(?![A-Z])", text)
    return None if m is None else m.group(1) == "YES"


def build_judge_items(pairs: pl.DataFrame, prompt: JudgePrompt) -> pl.DataFrame:
    """Items (items contract) asking the judge model about each (item, generation) pair."""
    rows = []
    for r in pairs.iter_rows(named=True):
        user = prompt.user.format_map(
            {
                "question": r["prompt"],
                "gold": " / ".join(a for a in (r["answers"] or []) if a and a.strip()),
                "response": strip_thinking(r["output"]).strip(),
            }
        )
        rows.append(
            {
                "item_id": r["item_id"],
                "lang": r["lang"],
                "prompt": user,
                "system": prompt.system,
                "answers": [],
                "choices": None,
                "assistant": None,
            }
        )
    schema = {
        "item_id": pl.String,
        "lang": pl.String,
        "prompt": pl.String,
        "system": pl.String,
        "answers": pl.List(pl.String),
        "choices": pl.List(pl.String),
        "assistant": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def judge_llm(
    pairs: pl.DataFrame, backend, prompt: JudgePrompt, batch_size: int = 16, max_new_tokens: int = 16
) -> list[tuple[bool, str]]:
    from moe_routing.capture.backends import GenerationOptions

    items = build_judge_items(pairs, prompt)
    opts = GenerationOptions(batch_size=batch_size, max_new_tokens=max_new_tokens, capture=False)
    out = pl.from_arrow(backend.generate(items, options=opts))
    replies = {(r["item_id"], r["lang"]): r["output"] for r in out.select("item_id", "lang", "output").iter_rows(named=True)}
    results = []
    for key in zip(pairs["item_id"], pairs["lang"]):
        if key not in replies:
            raise JudgeError(f"judge backend returned no reply for item {key[0]!r} ({key[1]})")
        verdict = parse_yes_no(replies[key])
        reply = replies[key] or ""
        results.append((bool(verdict), f"{'YES' if verdict else 'NO' if verdict is False else 'unparsed'}: {reply}"))
    unparsed = sum(d.startswith("unparsed") for _, d in results)
    if unparsed:
        log.warning("judge model gave %d of %d replies with neither YES nor NO (counted incorrect)", unparsed, len(results))
    return results


# ---------------------------------------------------------------- frames


def pair_items(
    items: pl.DataFrame, generations: pl.DataFrame, items_name: str = "items", generations_name: str = "generations"
) -> pl.DataFrame:
    """Join generations to their items on (item_id, lang); a generation without an item is an error."""
    dup = items.group_by("item_id", "lang").len().filter(pl.col("len") > 1)
    if dup.height:
        raise JudgeError(f"{items_name}: duplicate (item_id, lang) rows, e.g. {dup.row(0)[:2]}")
    gens = generations.select("item_id", "lang", "output")
    dup = gens.group_by("item_id", "lang").len().filter(pl.col("len") > 1)
    if dup.height:
        raise JudgeError(f"{generations_name}: duplicate (item_id, lang) rows, e.g. {dup.row(0)[:2]}")
    pairs = gens.join(
        items.select("item_id", "lang", "prompt", "answers", "choices"), on=["item_id", "lang"], how="left", coalesce=True
    )
    lost = gens.select("item_id", "lang").join(items.select("item_id", "lang"), on=["item_id", "lang"], how="anti")
    if lost.height:
        ex = ", ".join(f"{a}/{b}" for a, b in lost.head(5).iter_rows())
        raise JudgeError(f"{generations_name}: {lost.height} generation(s) have no item in {items_name} (e.g. {ex})")
    return pairs


def judge_frame(
    items: pl.DataFrame,
    generations: pl.DataFrame,
    judge: str,
    backend=None,
    prompt: JudgePrompt | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 16,
    items_name: str = "items",
    generations_name: str = "generations",
) -> pl.DataFrame:
    """Judge every generation; returns the judgments contract in the generations' row order."""
    if judge not in JUDGES:
        raise JudgeError(f"unknown judge {judge!r}; choose one of {list(JUDGES)}")
    pairs = pair_items(items, generations, items_name, generations_name)
    if judge in ("exact", "contains", "llm"):
        empty = [f"{r['item_id']}/{r['lang']}" for r in pairs.iter_rows(named=True) if not _usable_answers(r["answers"])]
        if empty:
            raise JudgeError(
                f"{items_name}: {len(empty)} item(s) have no non-empty gold answer, e.g. {empty[:5]}; the {judge} judge cannot score them"
            )
    if judge == "llm":
        if backend is None:
            raise JudgeError("the llm judge needs a judge model (--judge-model)")
        results = judge_llm(pairs, backend, prompt or load_judge_prompt(), batch_size, max_new_tokens)
    else:
        results = []
        for r in pairs.iter_rows(named=True):
            try:
                results.append(ANSWER_JUDGES[judge](r["output"], r["answers"], r["choices"]))
            except JudgeError as exc:
                raise JudgeError(f"{items_name}: item {r['item_id']!r} ({r['lang']}): {exc}") from None
    return pl.DataFrame(
        {
            "item_id": pairs["item_id"],
            "lang": pairs["lang"],
            "correct": [c for c, _ in results],
            "judge": [judge] * pairs.height,
            "detail": [d for _, d in results],
        },
        schema={"item_id": pl.String, "lang": pl.String, "correct": pl.Boolean, "judge": pl.String, "detail": pl.String},
    )


def accuracy_table(judgments: pl.DataFrame) -> pl.DataFrame:
    """lang, accuracy (fraction correct), n."""
    return (
        judgments.group_by("lang")
        .agg(pl.col("correct").cast(pl.Float64).mean().alias("accuracy"), pl.len().cast(pl.Int64).alias("n"))
        .sort("lang")
    )
