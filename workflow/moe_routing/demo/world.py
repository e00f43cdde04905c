"""A seeded synthetic world of invented facts, asked in several languages.

Each fact links an invented entity to an invented two-word answer through one of the
relations in ``demo_templates``. The training corpus teaches each fact only in a random
subset of languages, with a per-language coverage that varies (high for English, lower
and spread for the rest), so a small model learns facts unevenly across languages:
cross-lingual inconsistency by construction. The same world yields the evaluation
datasets of both studies (items contract, ARCHITECTURE.md):

- ``demo_facts``: parallel short-answer questions (XICI),
- ``demo_mc``: the same facts as four-way multiple choice (the per-language accuracy table),
- ``demo_parallel``: parallel statements of facts (routing divergence, prefill only),
- ``demo_task``: English word problems (task-expert specialisation),
- ``demo_task_bench``: the same kind of problem, parallel in every language (steering).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from moe_routing.core import paths
from moe_routing.core.contracts import ITEMS
from moe_routing.demo.templates import (
    FACT_SYSTEM,
    LANGUAGES,
    LETTERS,
    MC_SYSTEM,
    RELATIONS,
    SENTENCE_SYSTEM,
    TASK,
    TASK_SYSTEM,
)
from moe_routing.core.errors import DatasetError
from moe_routing.core.io import atomic_path, write_parquet

DATASETS = ("demo_facts", "demo_mc", "demo_parallel", "demo_task", "demo_task_bench")

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "th", "sk")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "x")


@dataclass(frozen=True)
class Fact:
    fact_id: str
    relation: str
    entity: str
    answer: str


@dataclass
class DemoWorld:
    seed: int
    languages: tuple[str, ...]
    coverage: dict[str, float]
    facts: list[Fact]
    # fact_id -> languages in which the training corpus teaches the fact
    covered: dict[str, tuple[str, ...]]
    # invented first names for the word problems
    task_names: list[str] = field(default_factory=list)


def default_coverage(
    languages: list[str] | tuple[str, ...], english: float = 0.85, low: float = 0.15, high: float = 0.7
) -> dict[str, float]:
    """English gets ``english``; the other languages, in the order given, get evenly spaced values high → low."""
    others = [lang for lang in languages if lang != "en"]
    cov = {"en": english} if "en" in languages else {}
    for i, lang in enumerate(others):
        cov[lang] = high if len(others) == 1 else high - (high - low) * i / (len(others) - 1)
    return {lang: round(cov[lang], 4) for lang in languages}


def _template_words() -> set[str]:
    texts = [t for rel in RELATIONS.values() for pair in rel.values() for t in pair] + list(TASK.values())
    texts += [FACT_SYSTEM, SENTENCE_SYSTEM, MC_SYSTEM, TASK_SYSTEM]
    return {w.strip(".,?!¿'").lower() for t in texts for w in t.split()}


def invent_names(rng: random.Random, n: int, forbidden: set[str]) -> list[str]:
    """``n`` distinct capitalised pseudo-words of 2–3 syllables, none in ``forbidden`` (lowercase)."""
    names: list[str] = []
    seen = set(forbidden)
    attempts = 0
    while len(names) < n:
        attempts += 1
        if attempts > 200 * (n + 10):
            raise DatasetError(f"could not invent {n} distinct names; ask for fewer entities")
        syllables = rng.choice((2, 2, 3))
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
        if word in seen or len(word) > 10:
            continue
        seen.add(word)
        names.append(word.capitalize())
    return names


def _check_languages(languages: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    langs = tuple(dict.fromkeys(languages))
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        raise DatasetError(f"demo world has no templates for language(s) {unknown}; available: {list(LANGUAGES)}")
    if "en" not in langs:
        raise DatasetError("demo world needs 'en' among the languages (the reference of the routing study and its task language)")
    if len(langs) < 2:
        raise DatasetError("demo world needs at least two languages")
    return langs


def build_world(
    languages: list[str] | tuple[str, ...] = LANGUAGES,
    n_entities: int = 240,
    seed: int = 0,
    coverage: dict[str, float] | None = None,
    answer_words: int = 1,
    answer_pool: int | None = None,
) -> DemoWorld:
    """Invent ``n_entities`` facts (round-robin over the relations) and the languages that teach each.

    With ``answer_words=1`` each answer is its own invented word. With 2 or more, answers
    are combinations of words from a shared pool (``answer_pool`` words, default
    ``max(24, n_entities // 6)``): several tokens whose words recur across facts, a harder
    binding for the model that needs a longer training than the demo budget allows.
    """
    langs = _check_languages(languages)
    if n_entities < 4 * len(RELATIONS):  # multiple choice needs three other answers per relation
        raise DatasetError(f"n_entities must be at least {4 * len(RELATIONS)}, got {n_entities}")
    cov = dict(coverage) if coverage is not None else default_coverage(langs)
    missing = [lang for lang in langs if lang not in cov]
    if missing:
        raise DatasetError(f"coverage lacks language(s) {missing}")
    bad = {lang: c for lang, c in cov.items() if not 0.0 < c <= 1.0}
    if bad:
        raise DatasetError(f"coverage must lie in (0, 1]; got {bad}")

    if answer_words < 1:
        raise DatasetError(f"answer_words must be at least 1, got {answer_words}")
    rng = random.Random(f"demo-world-{seed}")
    pool_size = n_entities if answer_words == 1 else (answer_pool or max(24, n_entities // 6))
    if answer_words > 1 and math.perm(pool_size, answer_words) < 2 * n_entities:
        raise DatasetError(f"answer pool of {pool_size} words is too small for {n_entities} distinct answers")
    words = invent_names(rng, n_entities + pool_size + 40, _template_words())
    entities, pool, task_names = words[:n_entities], words[n_entities : n_entities + pool_size], words[-40:]

    relations = list(RELATIONS)
    answers: set[str] = set()
    facts: list[Fact] = []
    for i, entity in enumerate(entities):
        if answer_words == 1:
            answer = pool[i]
        else:
            while True:
                answer = " ".join(rng.sample(pool, answer_words))
                if answer not in answers:
                    break
        answers.add(answer)
        facts.append(Fact(f"f{i:04d}", relations[i % len(relations)], entity, answer))

    weights = [cov[lang] for lang in langs]
    covered: dict[str, tuple[str, ...]] = {}
    for fact in facts:
        subset = tuple(lang for lang in langs if rng.random() < cov[lang])
        if not subset:  # every fact is taught somewhere, else nobody could ever answer it
            subset = (rng.choices(langs, weights=weights)[0],)
        covered[fact.fact_id] = subset
    return DemoWorld(
        seed=seed,
        languages=langs,
        coverage={lang: cov[lang] for lang in langs},
        facts=facts,
        covered=covered,
        task_names=task_names,
    )


def question(fact: Fact, lang: str) -> str:
    return RELATIONS[fact.relation][lang][0].format(e=fact.entity)


def statement(fact: Fact, lang: str) -> str:
    return RELATIONS[fact.relation][lang][1].format(e=fact.entity, a=fact.answer)


def _distractors(world: DemoWorld, fact: Fact, rng: random.Random) -> list[str]:
    same = [f.answer for f in world.facts if f.relation == fact.relation and f.fact_id != fact.fact_id]
    return rng.sample(same, 3)


def mc_prompt(q: str, choices: list[str]) -> str:
    return q + "\n" + "\n".join(f"{letter}. {c}" for letter, c in zip(LETTERS, choices))


def mc_choices(world: DemoWorld, fact: Fact, rng: random.Random) -> tuple[list[str], str]:
    """Four choices (the answer and three answers of other facts of the same relation) and the gold letter."""
    choices = _distractors(world, fact, rng) + [fact.answer]
    rng.shuffle(choices)
    return choices, LETTERS[choices.index(fact.answer)]


def task_problem(rng: random.Random, names: list[str]) -> tuple[str, int, int]:
    return rng.choice(names), rng.randint(1, 9), rng.randint(1, 9)


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ITEMS)


def _row(item_id: str, lang: str, prompt: str, system: str | None, answers: list[str], choices=None) -> dict:
    return {"item_id": item_id, "lang": lang, "prompt": prompt, "system": system, "answers": answers, "choices": choices}


def items(world: DemoWorld, n_parallel: int = 100, n_task: int = 100, n_bench: int = 60) -> dict[str, dict[str, pa.Table]]:
    """dataset -> lang -> items table. Parallel datasets share item ids across languages."""
    out: dict[str, dict[str, pa.Table]] = {}
    facts = world.facts
    out["demo_facts"] = {
        lang: _table([_row(f.fact_id, lang, question(f, lang), FACT_SYSTEM, [f.answer]) for f in facts])
        for lang in world.languages
    }
    rng = random.Random(f"demo-mc-{world.seed}")
    mc = {f.fact_id: mc_choices(world, f, rng) for f in facts}
    out["demo_mc"] = {
        lang: _table(
            [
                _row(
                    f.fact_id,
                    lang,
                    mc_prompt(question(f, lang), mc[f.fact_id][0]),
                    MC_SYSTEM,
                    [mc[f.fact_id][1]],
                    mc[f.fact_id][0],
                )
                for f in facts
            ]
        )
        for lang in world.languages
    }
    rng = random.Random(f"demo-parallel-{world.seed}")
    chosen = sorted(rng.sample(range(len(facts)), min(n_parallel, len(facts))))
    out["demo_parallel"] = {
        lang: _table([_row(f"s{facts[i].fact_id[1:]}", lang, statement(facts[i], lang), None, []) for i in chosen])
        for lang in world.languages
    }
    rng = random.Random(f"demo-task-{world.seed}")
    problems = [task_problem(rng, world.task_names) for _ in range(n_task)]
    out["demo_task"] = {
        "en": _table(
            [
                _row(f"t{i:04d}", "en", TASK["en"].format(n=n, x=x, y=y), TASK_SYSTEM, [str(x + y)])
                for i, (n, x, y) in enumerate(problems)
            ]
        )
    }
    rng = random.Random(f"demo-bench-{world.seed}")
    bench = [task_problem(rng, world.task_names) for _ in range(n_bench)]
    out["demo_task_bench"] = {
        lang: _table(
            [
                _row(f"b{i:04d}", lang, TASK[lang].format(n=n, x=x, y=y), TASK_SYSTEM, [str(x + y)])
                for i, (n, x, y) in enumerate(bench)
            ]
        )
        for lang in world.languages
    }
    return out


def _conversation(kind: str, lang: str, ref: str, system: str, user: str, assistant: str) -> dict:
    return {
        "kind": kind,
        "lang": lang,
        "ref": ref,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": assistant},
        ],
    }


def training_corpus(
    world: DemoWorld, sentence_rate: float = 0.3, mc_rate: float = 0.3, task_per_language: int = 80
) -> list[dict]:
    """Chat conversations that teach each fact only in its covered languages.

    Per covered (fact, language): the short answer always, a full-sentence answer with
    probability ``sentence_rate``, a multiple-choice version (its own choice order, so
    the model must match the name, not memorise a letter) with probability ``mc_rate``.
    Word problems: ``task_per_language`` in English, scaled by coverage elsewhere, so task
    skill also varies by language. The order is shuffled with the world's seed.
    """
    rng = random.Random(f"demo-corpus-{world.seed}")
    rows: list[dict] = []
    for fact in world.facts:
        for lang in world.covered[fact.fact_id]:
            q = question(fact, lang)
            rows.append(_conversation("fact", lang, fact.fact_id, FACT_SYSTEM, q, fact.answer))
            if rng.random() < sentence_rate:
                rows.append(_conversation("sentence", lang, fact.fact_id, SENTENCE_SYSTEM, q, statement(fact, lang)))
            if rng.random() < mc_rate:
                choices, letter = mc_choices(world, fact, rng)
                rows.append(_conversation("mc", lang, fact.fact_id, MC_SYSTEM, mc_prompt(q, choices), letter))
    en_cov = world.coverage["en"]
    for lang in world.languages:
        count = max(1, round(task_per_language * min(1.0, world.coverage[lang] / en_cov)))
        for i in range(count):
            n, x, y = task_problem(rng, world.task_names)
            rows.append(
                _conversation("task", lang, f"task-{lang}-{i}", TASK_SYSTEM, TASK[lang].format(n=n, x=x, y=y), str(x + y))
            )
    rng.shuffle(rows)
    return rows


def template_texts(languages: list[str] | tuple[str, ...] = LANGUAGES) -> list[str]:
    """Every template of ``languages`` with its slots emptied: lets a tokenizer know each template word,
    including words the sampled corpus happens to never show (a statement form only seen at evaluation)."""
    slots = {"e": "", "a": "", "n": "", "x": "", "y": ""}
    texts = [t.format(**slots) for rel in RELATIONS.values() for lang in languages for t in rel[lang]]
    texts += [TASK[lang].format(**slots) for lang in languages]
    return texts + [FACT_SYSTEM, SENTENCE_SYSTEM, MC_SYSTEM, TASK_SYSTEM, " ".join(LETTERS)]


def coverage_summary(world: DemoWorld) -> dict[str, float]:
    """Measured fraction of facts taught per language (close to, not equal to, the target coverage)."""
    n = len(world.facts)
    return {lang: sum(lang in c for c in world.covered.values()) / n for lang in world.languages}


def write_world(
    world: DemoWorld,
    out_dir: str | Path,
    corpus_path: str | Path,
    datasets: dict[str, list[str]] | None = None,
    **item_sizes: int,
) -> dict[str, list[Path]]:
    """Write ``out_dir/{dataset}/{lang}.parquet`` for every dataset, the JSONL corpus, and a world summary
    (``corpus_path`` with suffix ``.world.json``) describing coverage and the facts' languages."""
    written: dict[str, list[Path]] = {}
    for dataset, per_lang in items(world, **item_sizes).items():
        if datasets is not None and dataset not in datasets:
            continue
        written[dataset] = []
        for lang, table in per_lang.items():
            if datasets is not None and lang not in datasets[dataset]:
                continue
            path = Path(paths.items(dataset, lang, root=out_dir))
            write_parquet(table, path, metadata={"demo_seed": str(world.seed)}, contract="items")
            written[dataset].append(path)
    corpus = training_corpus(world)
    sizes = {"n_parallel": 100, "n_task": 100, "n_bench": 60, **item_sizes}
    with atomic_path(corpus_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in corpus:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {
        "seed": world.seed,
        "languages": list(world.languages),
        "target_coverage": world.coverage,
        "measured_coverage": coverage_summary(world),
        "n_facts": len(world.facts),
        "n_conversations": len(corpus),
        # what world_from_summary needs to rebuild the world and its items (the demo model's vocabulary)
        "task_names": world.task_names,
        "item_sizes": sizes,
        "facts": [
            {
                "fact_id": f.fact_id,
                "relation": f.relation,
                "entity": f.entity,
                "answer": f.answer,
                "languages": list(world.covered[f.fact_id]),
            }
            for f in world.facts
        ],
    }
    with atomic_path(world_summary_path(corpus_path)) as tmp:
        tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return written


def world_from_summary(summary: dict) -> tuple[DemoWorld, dict[str, int]]:
    """(world, item sizes) from a world summary written by ``write_world``: ``items(world, **sizes)``
    gives the same items as the files."""
    facts = [Fact(f["fact_id"], f["relation"], f["entity"], f["answer"]) for f in summary["facts"]]
    world = DemoWorld(
        seed=summary["seed"],
        languages=tuple(summary["languages"]),
        coverage=dict(summary["target_coverage"]),
        facts=facts,
        covered={f["fact_id"]: tuple(f["languages"]) for f in summary["facts"]},
        task_names=list(summary["task_names"]),
    )
    return world, dict(summary["item_sizes"])


def world_summary_path(corpus_path: str | Path) -> Path:
    p = Path(corpus_path)
    return p.with_name(p.stem + ".world.json")


def read_corpus(path: str | Path) -> list[dict]:
    """Load a JSONL corpus; each line must hold ``messages`` with system, user and assistant turns."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: corpus file not found")
    rows = []
    with open(p, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from exc
            msgs = row.get("messages") if isinstance(row, dict) else None
            if (
                not isinstance(msgs, list)
                or not msgs
                or any(
                    not isinstance(m, dict)
                    or m.get("role") not in ("system", "user", "assistant")
                    or not isinstance(m.get("content"), str)
                    for m in msgs
                )
            ):
                raise DatasetError(f"{p}:{lineno}: 'messages' must be a list of {{role, content}} turns")
            if msgs[-1]["role"] != "assistant":
                raise DatasetError(f"{p}:{lineno}: the last turn must be the assistant's")
            rows.append(row)
    if not rows:
        raise DatasetError(f"{p}: corpus is empty")
    return rows
