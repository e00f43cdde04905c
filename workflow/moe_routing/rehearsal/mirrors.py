"""Small synthetic local copies of the paper datasets, in their published layouts (rehearsals, loader tests).

``write_mirror(source, out, languages=None, items=24, seed=0)`` writes a seeded synthetic copy of
``source`` under ``out`` laid out as the source is published, and returns the path to give its
loader (a dataset's ``path`` in a config). The loader then reads it through ``datasets`` exactly as
it reads the real copy; only the text is made up (pseudo-languages, data.synthetic_text), parallel
across languages where the real data is (same ids, same content in every language).

| source | written under ``out`` (published as) |
|---|---|
| eclektic | ``eclektic_main.jsonl``: one wide row per question, ``{l}_q/_a/_c`` for all 12 languages (Google's file) |
| multiloko | ``benchmark_data/english/dev.jsonl`` + ``dev_translated_human_{language}.jsonl``, and each language's own ``{language}/dev.jsonl`` (GitHub release) |
| global_mmlu | ``{lang}/test-00000-of-00001.parquet``, ``{lang}/dev-…``, README configs (hub repo); prehistory, the medical subjects, one other subject |
| flores | ``dev/{code}.parquet``, ``devtest/{code}.parquet``, README configs (FLORES+ hub repo; FLORES+ codes such as ``cmn_Hans``, so name the folder ``…flores_plus…`` for the loader's automatic naming) |
| belebele | ``data/{code}.jsonl``, README configs (hub repo) |
| gsm8k_instruct | ``MGSM8KInstruct_Parallel.json``: prompt/chosen in the MathOctopus template, all 10 languages (hub repo) |
| alpacare | ``data/train-00000-of-00001.parquet``: instruction/input/output (hub repo) |
| mgsm | ``{lang}/train/0000.parquet`` (8 exemplars), ``{lang}/test/0000.parquet`` (the hub's Parquet export) |
| paraphrases | ``paraphrases.jsonl``: item_id, paraphrase_id, question, answers (the user file of XICI Table 3) |

The domain sets are written so that the stand-in models (``moe_routing.rehearsal.stand_ins``), which route by
character class, have task experts as real models do: math problems (GSM8K-Instruct, MGSM) are
dense in digits and signs, medical instructions (AlpaCare) are upper-case clinical abbreviations.

The record builders (``eclektic_records``, ``multiloko_record``, ...) are public so that tests can
write variants (a missing translation, a changed schema) in the same layouts.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from moe_routing.data import lang_codes
from moe_routing.data.global_mmlu import MEDICAL_SUBJECTS
from moe_routing.rehearsal.synthetic_text import concepts, render, word
from moe_routing.core.errors import DatasetError

DEFAULT_ITEMS = 24
PARAPHRASE_IDS = tuple(f"p{i}" for i in range(10))
LETTERS = "ABCD"
# sources whose loader path is a file inside the mirror folder, not the folder
LOADER_FILES = {"paraphrases": "paraphrases.jsonl"}
# a hidden file (`datasets` skips hidden files) that tells `prepare` not to compare counts with the published ones
MARKER = ".moe_routing_mirror"


def is_mirror(path: str | Path) -> bool:
    """True for a loader path inside a folder ``write_mirror`` wrote."""
    p = Path(path)
    return (p / MARKER).exists() or (p.parent / MARKER).exists()


# ---------------------------------------------------------------- files


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_parquet(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def write_readme_configs(root: Path, configs: dict[str, dict[str, str]], title: str) -> Path:
    """A hub README whose YAML declares one config per name: {config: {split: file pattern}}."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {pattern}" for split, pattern in splits.items()]
    lines += ["---", f"# {title} (synthetic mirror written by moe_routing.rehearsal.mirrors)", ""]
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return root / "README.md"


def _languages(column: str, languages: list[str] | None, source: str) -> list[str]:
    """Project codes asked for (default: every language the source has), checked against the source."""
    have = lang_codes.languages(column)
    if languages is None:
        return have
    codes = [lang_codes.normalise(lang) for lang in languages]
    for code in codes:
        lang_codes.source_code(code, column, source)
    return list(dict.fromkeys(codes))


def _rng(seed: int, source: str, i: int | str) -> random.Random:
    return random.Random(f"{seed}:{source}:{i}")


# ---------------------------------------------------------------- ECLeKTic


def eclektic_records(items: int = DEFAULT_ITEMS, seed: int = 0) -> list[dict]:
    """Wide rows of eclektic_main.jsonl: q_id, original_lang, title, url, content, question, answer, {l}_q/_a/_c."""
    langs = lang_codes.languages("eclektic")
    rows = []
    for i in range(items):
        rng = _rng(seed, "eclektic", i)
        origin = rng.choice(langs)
        q, a, c = concepts(rng, rng.randint(5, 9)), concepts(rng, rng.randint(1, 3)), concepts(rng, 24)
        row = {
            "q_id": str(i),
            "original_lang": origin,
            "title": render(origin, a, seed),
            "url": f"https://{origin}.wikipedia.org/wiki/Item_{i}",
            "content": render(origin, c, seed, "."),
            "question": render(origin, q, seed, "?"),
            "answer": render(origin, a, seed),
        }
        for lang in langs:
            src = lang_codes.source_code(lang, "eclektic")
            row[f"{src}_q"], row[f"{src}_a"], row[f"{src}_c"] = (
                render(lang, q, seed, "?"),
                render(lang, a, seed),
                render(lang, c, seed, "."),
            )
        rows.append(row)
    return rows


def write_eclektic(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    _languages("eclektic", languages, "eclektic")  # the published file always holds all 12
    write_jsonl(out / "eclektic_main.jsonl", eclektic_records(items, seed))
    return out


# ---------------------------------------------------------------- MultiLoKo


def multiloko_record(item_id: str, question: str, targets, text: str = "", output_type: str = "a name") -> dict:
    """One row of the GitHub release (``targets`` is a list, or its string form as some rows have)."""
    first = targets if isinstance(targets, str) else (targets[0] if targets else "")
    return {"text": text, "question": question, "targets": targets, "target": first, "id": item_id, "output_type": output_type}


def write_multiloko(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    langs = _languages("multiloko", languages, "multiloko")
    bench = out / "benchmark_data"
    english = lang_codes.source_code("en", "multiloko")
    content = []
    for i in range(items):
        rng = _rng(seed, "multiloko", i)
        content.append(
            (f"{i:03d}_page_{i}.txt", concepts(rng, rng.randint(5, 9)), concepts(rng, rng.randint(1, 2)), concepts(rng, 24))
        )

    def rows(lang: str) -> list[dict]:
        out_rows = []
        for n, (item_id, q, a, c) in enumerate(content):
            answers = list(dict.fromkeys([render(lang, a, seed), render(lang, a[:1], seed)]))
            # some rows of the release hold a stringified list
            targets = json.dumps(answers, ensure_ascii=False) if n % 4 == 3 else answers
            out_rows.append(multiloko_record(item_id, render(lang, q, seed, "?"), targets, render(lang, c, seed, ".")))
        return out_rows

    write_jsonl(bench / english / "dev.jsonl", rows("en"))
    for lang in langs:
        name = lang_codes.source_code(lang, "multiloko")
        if name == english:
            continue
        write_jsonl(bench / english / f"dev_translated_human_{name}.jsonl", rows(lang))
        # the language's own local questions (not translations of the English-source split)
        local = [
            multiloko_record(
                f"{name}_{k:03d}_local.txt", render(lang, concepts(_rng(seed, name, k), 6), seed, "?"), [word(lang, k, seed)]
            )
            for k in range(3)
        ]
        write_jsonl(bench / name / "dev.jsonl", local)
    return out


# ---------------------------------------------------------------- Global-MMLU


def gmmlu_record(sample_id: str, subject: str, question: str, options: list[str], answer: str) -> dict:
    """One row of a Global-MMLU language config (annotation columns included)."""
    row = {
        "sample_id": sample_id,
        "subject": subject,
        "subject_category": "Humanities" if subject == "prehistory" else "Other",
        "question": question,
    }
    row |= {f"option_{x}": o for x, o in zip("abcd", options)}
    return row | {
        "answer": answer,
        "required_knowledge": "[]",
        "time_sensitive": "[]",
        "reference": "[]",
        "culture": "[]",
        "region": "[]",
        "country": "[]",
        "cultural_sensitivity_label": "CA",
        "is_annotated": False,
    }


def _gmmlu_questions(items: int, seed: int) -> list[tuple[str, str, list[int], list[list[int]], str]]:
    """(sample_id, subject, question concepts, option concepts, answer letter): prehistory, medicine, astronomy."""
    subjects = ["prehistory"] * items + [MEDICAL_SUBJECTS[k % len(MEDICAL_SUBJECTS)] for k in range(items)] + ["astronomy"] * 2
    counts: dict[str, int] = {}
    out = []
    for i, subject in enumerate(subjects):
        k = counts[subject] = counts.get(subject, -1) + 1
        rng = _rng(seed, "global_mmlu", i)
        out.append(
            (
                f"{subject}/test/{k}",
                subject,
                concepts(rng, rng.randint(6, 10)),
                [concepts(rng, rng.randint(1, 3)) for _ in range(4)],
                rng.choice(LETTERS),
            )
        )
    return out


def write_global_mmlu(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    langs = _languages("global_mmlu", languages, "global_mmlu")
    questions = _gmmlu_questions(items, seed)
    configs = {}
    for lang in langs:
        name = lang_codes.source_code(lang, "global_mmlu")
        rows = [
            gmmlu_record(sid, subject, render(lang, q, seed, "?"), [render(lang, o, seed) for o in opts], letter)
            for sid, subject, q, opts, letter in questions
        ]
        write_parquet(out / name / "test-00000-of-00001.parquet", rows)
        dev = [
            gmmlu_record(
                f"prehistory/dev/{k}", "prehistory", render(lang, q, seed, "?"), [render(lang, o, seed) for o in opts], letter
            )
            for k, (_, _, q, opts, letter) in enumerate(questions[:2])
        ]
        write_parquet(out / name / "dev-00000-of-00001.parquet", dev)
        configs[name] = {"test": f"{name}/test-*", "dev": f"{name}/dev-*"}
    write_readme_configs(out, configs, "Global-MMLU")
    return out


# ---------------------------------------------------------------- FLORES+


def flores_plus_record(i: int, code: str, sentence: str) -> dict:
    """One row of a FLORES+ language file (``code`` like ``cmn_Hans``)."""
    iso, script = code.split("_", 1)
    return {
        "id": i,
        "iso_639_3": iso,
        "iso_15924": script,
        "glottocode": "xxxx1234",
        "text": sentence,
        "url": f"https://en.wikinews.org/wiki/Item_{i}",
        "domain": "wikinews",
        "topic": "science",
        "has_image": False,
        "has_hyperlink": False,
        "last_updated": "1.0",
    }


def write_flores(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    langs = _languages("flores_plus", languages, "flores")
    configs = {}
    for lang in langs:
        code = lang_codes.source_code(lang, "flores_plus")
        for split in ("dev", "devtest"):
            rows = [
                flores_plus_record(i, code, render(lang, concepts(_rng(seed, f"flores-{split}", i), 14), seed, "."))
                for i in range(1, items + 1)
            ]
            write_parquet(out / split / f"{code}.parquet", rows)
        configs[code] = {"dev": f"dev/{code}.parquet", "devtest": f"devtest/{code}.parquet"}
    write_readme_configs(out, configs, "FLORES+")
    return out


# ---------------------------------------------------------------- BELEBELE


def belebele_record(link: str, number: int, passage: str, question: str, options: list[str], correct: int, code: str) -> dict:
    """One row of a BELEBELE language file; ``correct`` is 1-4."""
    row = {"link": link, "question_number": number, "flores_passage": passage, "question": question}
    row |= {f"mc_answer{k + 1}": o for k, o in enumerate(options)}
    return row | {"correct_answer_num": str(correct), "dialect": code, "ds": "2023-05-03"}


def write_belebele(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    langs = _languages("belebele", languages, "belebele")
    configs = {}
    for lang in langs:
        code = lang_codes.source_code(lang, "belebele")
        rows = []
        for i in range(items):
            passage, number = i // 2, i % 2 + 1  # two questions per passage, as in the real set
            rng = _rng(seed, "belebele", i)
            rows.append(
                belebele_record(
                    f"https://en.wikibooks.org/wiki/Item_{passage}",
                    number,
                    render(lang, concepts(_rng(seed, "belebele-passage", passage), 30), seed, "."),
                    render(lang, concepts(rng, 8), seed, "?"),
                    [render(lang, concepts(rng, 2), seed) for _ in range(4)],
                    rng.randint(1, 4),
                    code,
                )
            )
        write_jsonl(out / "data" / f"{code}.jsonl", rows)
        configs[code] = {"test": f"data/{code}.jsonl"}
    write_readme_configs(out, configs, "BELEBELE")
    return out


# ---------------------------------------------------------------- GSM8K-Instruct (MathOctopus), AlpaCare


def octopus_prompt(language: str, question: str) -> str:
    """A prompt in the MathOctopus template; the language is only named inside it."""
    return (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request "
        f"in {language}. Please answer in {language}.\n\n### Instruction:\n{question}\n\n### Response:"
    )


def _word_problem(lang: str, rng: random.Random, seed: int) -> tuple[str, int, str]:
    """A math problem dense in digits and signs (what the stand-ins route to their math experts) and its answer."""
    numbers = [rng.randint(2, 60) for _ in range(rng.randint(14, 18))]
    signs = [rng.choice("+-") for _ in numbers[1:]]
    answer = numbers[0] + sum(n if sign == "+" else -n for sign, n in zip(signs, numbers[1:]))
    if answer <= 0:  # grade-school answers are positive
        signs = ["+"] * len(signs)
        answer = sum(numbers)
    equation = str(numbers[0]) + "".join(f"{sign}{n}" for sign, n in zip(signs, numbers[1:]))
    return f"{render(lang, concepts(rng, 2), seed)}: {equation}=?", answer, f"{equation}={answer}"


def clinical_note(rng: random.Random, words: int) -> str:
    """Upper-case abbreviations in the style of clinical shorthand ("PT SOB HTN"), the medical set's text."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 4))) for _ in range(words))


def write_gsm8k_instruct(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    _languages("gsm8k_instruct", languages, "gsm8k_instruct")  # the published file holds all 10
    rows = []
    for i in range(items):
        for lang in lang_codes.languages("gsm8k_instruct"):
            question, answer, equation = _word_problem(lang, _rng(seed, "gsm8k", i), seed)
            name = lang_codes.source_code(lang, "gsm8k_instruct")
            rows.append({"prompt": octopus_prompt(name, question), "chosen": f" {equation}. {render(lang, [i], seed)} {answer}."})
    path = out / "MGSM8KInstruct_Parallel.json"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return out


def write_alpacare(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    if languages is not None and [lang_codes.normalise(x) for x in languages] != ["en"]:
        raise DatasetError("alpacare: the set is English only; --languages must be en")
    rows = []
    for i in range(items):
        rng = _rng(seed, "alpacare", i)
        extra = clinical_note(rng, 12) if i % 3 == 0 else "<noinput>"
        rows.append(
            {"instruction": clinical_note(rng, 16) + "?", "input": extra, "output": render("en", concepts(rng, 30), seed, ".")}
        )
    write_parquet(out / "data" / "train-00000-of-00001.parquet", rows)
    return out


# ---------------------------------------------------------------- MGSM, paraphrases


def mgsm_labels(lang: str, seed: int = 0) -> tuple[str, str]:
    """The language's "Question:" and "Step-by-Step Answer:" labels of the exemplars."""
    return render(lang, [1000], seed) + ":", render(lang, [1001, 1002], seed) + ":"


def write_mgsm(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    langs = _languages("mgsm", languages, "mgsm")
    for lang in langs:
        code = lang_codes.source_code(lang, "mgsm")
        q_label, a_label = mgsm_labels(lang, seed)
        train = []
        for k in range(8):
            question, answer, equation = _word_problem(lang, _rng(seed, "mgsm-train", k), seed)
            train.append(
                {
                    "question": f"{q_label} {question}",
                    "answer": f"{a_label} {equation}. {answer}",
                    "answer_number": answer,
                    "equation_solution": equation,
                }
            )
        test = []
        for i in range(items):
            question, answer, _ = _word_problem(lang, _rng(seed, "mgsm-test", i), seed)
            test.append({"question": question, "answer": None, "answer_number": answer, "equation_solution": None})
        write_parquet(out / code / "train" / "0000.parquet", train)
        write_parquet(out / code / "test" / "0000.parquet", test)
    return out


def write_paraphrases(out: Path, languages: list[str] | None, items: int, seed: int) -> Path:
    ids = list(languages or PARAPHRASE_IDS)
    rows = []
    for i in range(items):
        rng = _rng(seed, "paraphrases", i)
        q, a = concepts(rng, 8), concepts(rng, 2)
        for k, pid in enumerate(ids):
            shuffled = q[k % len(q) :] + q[: k % len(q)]  # another wording of the same question
            rows.append(
                {
                    "item_id": f"q{i}",
                    "paraphrase_id": pid,
                    "question": render("en", shuffled, seed, "?"),
                    "answers": [render("en", a, seed)],
                }
            )
    write_jsonl(out / LOADER_FILES["paraphrases"], rows)
    return out / LOADER_FILES["paraphrases"]


MIRRORS: dict[str, Callable[[Path, list[str] | None, int, int], Path]] = {
    "eclektic": write_eclektic,
    "multiloko": write_multiloko,
    "global_mmlu": write_global_mmlu,
    "flores": write_flores,
    "belebele": write_belebele,
    "gsm8k_instruct": write_gsm8k_instruct,
    "alpacare": write_alpacare,
    "mgsm": write_mgsm,
    "paraphrases": write_paraphrases,
}


def mirror_folder(source: str, path: str | Path) -> Path:
    """The folder ``write_mirror`` must write for a dataset whose loader ``path`` is given (a rule's output)."""
    path = Path(path)
    file = LOADER_FILES.get(source)
    if file is not None and path.name != file:
        raise DatasetError(f"{source} mirror: the loader path must end in {file}, got {str(path)!r}")
    return path.parent if file else path


def mirror_items(source: str, items: int, options: dict | None = None) -> int:
    """Items per language a mirror needs so that the loader options of a config can be met: a Global-MMLU
    sample of ``per_subject`` questions of each medical subject needs that many of each."""
    per_subject = int((options or {}).get("per_subject") or 0)
    if source == "global_mmlu" and per_subject:
        return max(items, per_subject * len(MEDICAL_SUBJECTS))
    return items


def write_mirror(
    source: str,
    out: str | Path,
    *,
    languages: list[str] | None = None,
    items: int = DEFAULT_ITEMS,
    seed: int = 0,
    options: dict | None = None,
) -> Path:
    """Write the mirror of ``source`` to ``out`` (replacing it; nothing is left half-written) and return its
    loader path; ``options`` are the dataset's loader options, which may need more items (``mirror_items``)."""
    if source not in MIRRORS:
        raise DatasetError(f"no mirror for source {source!r}; mirrors exist for {sorted(MIRRORS)}")
    if items < 2:
        raise DatasetError(f"{source} mirror: items must be >= 2, got {items}")
    items = mirror_items(source, items, options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        written = MIRRORS[source](tmp, languages, items, seed)
        (tmp / MARKER).write_text(
            f"synthetic {source} mirror written by moe_routing.rehearsal.mirrors (seed {seed})\n", encoding="utf-8"
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / written.relative_to(tmp)
