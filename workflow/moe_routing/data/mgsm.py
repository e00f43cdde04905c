"""MGSM (Shi et al. 2023): 250 grade-school math problems in 11 languages, ``juletxara/mgsm``.

One config per language (bn de en es fr ja ru sw te th zh); split ``test`` (250, ``answer`` is
null) and ``train`` (8 exemplars with a worked ``answer``); columns ``question``, ``answer``,
``answer_number``, ``equation_solution``. The hub repo is a loading script; the loader falls
back to its Parquet export (see loading.py).

Published forms read (``FORMS``): the hub id; the hub's Parquet export (``{lang}/{split}/0000.parquet``);
the original release (google-research/url-nlp ``mgsm/``: ``mgsm_{lang}.tsv``, two columns without a
header, question and answer number, plus ``exemplars.py`` with the 8 translated exemplars per
language), the same files in a copy of the hub repository (with its ``mgsm.py`` and README), and a
single ``mgsm_{lang}.tsv`` (exemplars from an ``exemplars.py`` beside it). Answer numbers are
written with thousands separators in the TSVs (``2,125``); they are read as the number (2125), as
the hub's loading script does.

Prompts are k-shot (paper: 2-shot) in the style of lm-eval's native-CoT MGSM: the first k
train exemplars of the same language, each ``{question}\\n{answer}`` as stored (they carry the
language's own "Question:" and "Step-by-Step Answer:" labels), then the test question under the
same two labels. The gold answer is ``answer_number``. item_id = ``test-{row}`` (the test
split is row-aligned across languages).
"""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

import pyarrow as pa

from moe_routing.data import lang_codes
from moe_routing.data.items import Item, finalize, text
from moe_routing.data.loading import find_file, load_file, load_split, require_columns
from moe_routing.data.options import SourceOptions
from moe_routing.core.errors import DatasetError

NAME = "mgsm"
DEFAULT_PATH = "juletxara/mgsm"
DEFAULT_SPLIT = "test"
EXEMPLAR_SPLIT = "train"
DEFAULT_FEW_SHOT = 2
PUBLISHED_COUNTS = {"test": 250, "train": 8}
FORMS = (
    "hub id juletxara/mgsm",
    "the hub's Parquet export: {lang}/{split}/0000.parquet",
    "the url-nlp release or a hub repository copy: a folder with mgsm_{lang}.tsv (no header) and exemplars.py",
    "a single mgsm_{lang}.tsv",
)
_RELEASE_FILE = re.compile(r"^mgsm_([A-Za-z_]+)\.tsv$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(\D|$))")


def published_count(split: str | None, options: dict) -> int | None:
    """Items in the published split (None: not known)."""
    return PUBLISHED_COUNTS.get(split or DEFAULT_SPLIT)


def label(s: str) -> str:
    """The leading "Xxx:" label of an exemplar field ('' if it has none)."""
    for colon in (":", "："):
        head, sep, _ = s.partition(colon)
        if sep and 0 < len(head) <= 40 and "\n" not in head:
            return head + sep
    return ""


def format_number(value) -> str:
    """A gold number as text: ``2,125`` (the release TSVs) and 2125.0 both become ``2125``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        s = _THOUSANDS.sub("", value.strip())
        try:
            value = float(s)
        except ValueError:
            return s
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return text(value)


def read_exemplars(path: Path, src: str) -> list[dict]:
    """The exemplars of one language from the release's ``exemplars.py``, read as data (never executed):
    ``MGSM_EXEMPLARS[lang][str(n)] = {"q": ..., "a": ...}``, n = 1..8."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{NAME}: cannot read {path}: {exc}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "MGSM_EXEMPLARS" for t in node.targets):
            try:
                table = ast.literal_eval(node.value)
            except ValueError as exc:
                raise DatasetError(f"{NAME}: {path}: MGSM_EXEMPLARS is not a literal ({exc})") from None
            break
    else:
        raise DatasetError(f"{NAME}: {path} defines no MGSM_EXEMPLARS")
    if src not in table:
        raise DatasetError(f"{NAME}: {path} has no exemplars for {src!r} (has {sorted(table)})")
    rows = table[src]
    return [{"question": rows[k]["q"], "answer": rows[k]["a"]} for k in sorted(rows, key=int)]


def read_release_tsv(path: Path, code: str, cache_dir: str | None) -> list[dict]:
    """``mgsm_{lang}.tsv`` through the csv builder: no header, no quoting (questions contain quotes), text cells."""
    import datasets

    with path.open(encoding="utf-8") as f:
        first = f.readline().rstrip("\n").split("\t")
    has_header = first[:2] == ["question", "answer_number"]
    ds = load_file(
        path,
        "csv",
        dataset=NAME,
        lang=code,
        cache_dir=cache_dir,
        delimiter="\t",
        quoting=csv.QUOTE_NONE,
        header=0 if has_header else None,
        column_names=None if has_header else ["question", "answer_number"],
        features=datasets.Features({"question": datasets.Value("string"), "answer_number": datasets.Value("string")}),
        keep_default_na=False,
    )
    require_columns(list(ds.column_names), ["question", "answer_number"], dataset=NAME, lang=code, path=str(path))
    return ds.select_columns(["question", "answer_number"]).to_list()


def _release_files(path: str, src: str, code: str) -> tuple[Path, Path | None] | None:
    """(the language's TSV, exemplars.py or None) when ``path`` is the release, a hub repository copy or one TSV."""
    p = Path(path).expanduser()
    if p.is_file():
        m = _RELEASE_FILE.match(p.name)
        if not m:
            return None
        if m.group(1) != src:
            raise DatasetError(f"{NAME} [{code}]: {p} holds language {m.group(1)!r}, not {src!r}")
        return p, find_file(p.parent, ["exemplars.py"])
    tsv = find_file(p, [f"mgsm_{src}.tsv", f"mgsm/mgsm_{src}.tsv"])
    if tsv is None:
        if any(p.glob("mgsm_*.tsv")) or any(p.glob("mgsm/mgsm_*.tsv")):
            raise DatasetError(f"{NAME} [{code}]: {p} has MGSM release files but no mgsm_{src}.tsv")
        return None
    return tsv, find_file(tsv.parent, ["exemplars.py"])


def build_prompt(question: str, exemplars: list[dict]) -> str:
    if not exemplars:
        return question
    q_label, a_label = label(text(exemplars[0]["question"])), label(text(exemplars[0]["answer"]))
    shots = [f"{text(e['question'])}\n{text(e['answer'])}" for e in exemplars]
    head = f"{q_label} {question}" if q_label else question
    return "\n\n".join(shots + [f"{head}\n{a_label}".rstrip()])


def load(path: str, lang: str, opts: SourceOptions) -> pa.Table:
    """k-shot items for one MGSM language (``few_shot`` defaults to the paper's 2)."""
    code = lang_codes.normalise(lang)
    src = lang_codes.source_code(code, "mgsm", NAME)
    k = DEFAULT_FEW_SHOT if opts.few_shot is None else int(opts.few_shot)
    if k < 0:
        raise DatasetError(f"{NAME}: few_shot must be >= 0, got {k}")
    hub = opts.hub(DEFAULT_SPLIT, config=src)
    release = _release_files(path, src, code)
    if release is not None:
        tsv, exemplar_file = release
        if hub["split"] != DEFAULT_SPLIT:
            raise DatasetError(f"{NAME} [{code}]: the release files hold the test split only, not {hub['split']!r}")
        test_rows = read_release_tsv(tsv, code, opts.cache_dir)
        train_rows: list[dict] = []
        if k:
            if exemplar_file is None:
                raise DatasetError(
                    f"{NAME} [{code}]: {k}-shot needs the release's exemplars.py next to {tsv.name}; "
                    "put it there or pass --few-shot 0"
                )
            train_rows = read_exemplars(exemplar_file, src)
    else:
        test = load_split(path, dataset=NAME, lang=code, forms=FORMS, columns=("question",), **hub)
        require_columns(list(test.column_names), ["question", "answer_number"], dataset=NAME, lang=code, path=path)
        test_rows = test.select_columns(["question", "answer_number"]).to_list()
        train_rows = []
        if k:
            train = load_split(
                path, dataset=NAME, lang=code, forms=FORMS, columns=("question",), **{**hub, "split": EXEMPLAR_SPLIT}
            )
            require_columns(list(train.column_names), ["question", "answer"], dataset=NAME, lang=code, path=path)
            train_rows = train.select_columns(["question", "answer"]).to_list()
    exemplars: list[dict] = train_rows[:k]
    if len(exemplars) < k or any(not text(e["question"]) or not text(e["answer"]) for e in exemplars):
        raise DatasetError(
            f"{NAME} [{code}]: {k}-shot needs {k} exemplars with 'question' and 'answer' in split {EXEMPLAR_SPLIT!r}"
        )
    items = []
    for i, r in enumerate(test_rows):
        question = text(r["question"])
        gold = format_number(r["answer_number"])
        items.append(Item(f"test-{i}", build_prompt(question, exemplars) if question else "", [gold] if gold else []))
    return finalize(items, opts, dataset=NAME, lang=code, require_answers=True)
