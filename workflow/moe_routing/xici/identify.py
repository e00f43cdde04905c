"""XICI expert identification (METHOD.md, XICI steps 1-9).

Pipeline for one model x dataset:

1. ``question_outcomes``: per question all correct / all incorrect / mixed.
2. ``kept_layer_positions``: MoE layer positions left after excluding the first/last N.
3. ``generalist_blacklist``: an expert is marked in a sequence when its weight is among the
   top ``ceil(top * K * E)`` weights of that sequence over all K kept layers together (and is > 0,
   so an all-zero tail is never "top"); it is blacklisted when marked in more than ``share`` of
   the dataset's sequences.
4. ``language_means``: Eq. 2, mean over all questions of the dataset in that language, float64.
5. ``mwu_greater`` per mixed question over every kept, non-blacklisted expert at once; BH over
   that question's tested experts (statsmodels).
6. ``select_experts``: p < alpha (raw p, METHOD step 7), median(correct) - median(wrong) > tau, then
   rank the passing experts by BH-adjusted p (ascending) and by median difference (descending),
   both with ``min`` ranks, order by the sum; ties broken by adjusted p, then larger median
   difference, then layer-major position. ``rank`` 1..n is that order and the cap keeps
   ``rank <= cap``. Because the order does not depend on the cap, the first 25 experts of a
   cap-65 run are exactly the cap-25 selection (the ablation cap sweep relies on this).

Row matrices hold one sequence per row, layer-major flat columns (``layer_pos * E + expert``).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from moe_routing.core.progress import progress as progress_bar

from moe_routing.core.errors import ContractError, MoeRoutingError
from moe_routing.core.io import count_rows, read_frame, read_routing_metadata, read_table

OUTCOMES = ("all_correct", "all_incorrect", "mixed")


@dataclass(frozen=True)
class XiciSettings:
    """The thresholds of identification (METHOD XICI 4-9); the xici stage's flags are these fields."""

    exclude_first: int = field(default=0, metadata={"help": "MoE layers excluded at the start"})
    exclude_last: int = field(default=0, metadata={"help": "MoE layers excluded at the end"})
    alpha: float = field(default=0.05, metadata={"help": "MWU significance level on the raw p"})
    tau: float = field(default=0.005, metadata={"help": "median-difference threshold"})
    cap: int = field(default=25, metadata={"help": "max experts per question, by summed ranks"})
    blacklist_top: float = field(default=0.01, metadata={"help": "top fraction of a sequence's weights"})
    blacklist_share: float = field(default=0.05, metadata={"help": "blacklisted if marked in more than this share of sequences"})

    def __post_init__(self) -> None:
        for name in ("alpha", "tau", "blacklist_top", "blacklist_share"):
            if not math.isfinite(getattr(self, name)):
                raise MoeRoutingError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.exclude_first < 0 or self.exclude_last < 0:
            raise MoeRoutingError("exclude_first/exclude_last must be >= 0")
        if not 0 < self.alpha <= 1:
            raise MoeRoutingError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.tau < 0:
            raise MoeRoutingError(f"tau must be >= 0, got {self.tau}")
        if self.cap < 1:
            raise MoeRoutingError(f"cap must be >= 1, got {self.cap}")
        for name in ("blacklist_top", "blacklist_share"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise MoeRoutingError(f"{name} must be in (0, 1], got {v}")


@dataclass
class RoutingData:
    """One dataset's sequences: routing rows matched to their judgments."""

    item_ids: np.ndarray  # (Q,) sorted unique question ids
    langs: np.ndarray  # (G,) sorted unique languages
    q_index: np.ndarray  # (N,) row -> question
    lang_index: np.ndarray  # (N,) row -> language
    correct: np.ndarray  # (N,) bool
    weights: np.ndarray  # (N, L*E) float32, layer-major
    moe_layers: list[int]
    num_experts: int
    top_k: int = 0

    @property
    def num_layers(self) -> int:
        return len(self.moe_layers)


@dataclass
class QuestionTests:
    """Per mixed question statistics over the tested columns (shared by all questions)."""

    columns: np.ndarray  # (C,) flat layer-major columns tested
    item_ids: list[str]
    n_correct: np.ndarray  # (M,)
    n_wrong: np.ndarray  # (M,)
    p_value: np.ndarray  # (M, C)
    p_adjusted: np.ndarray  # (M, C)
    median_diff: np.ndarray  # (M, C)


@dataclass
class XiciResult:
    experts: pl.DataFrame  # experts contract
    summary: pl.DataFrame  # one row per question
    blacklist: pl.DataFrame  # layer, expert, share
    tests: QuestionTests


# ---------------------------------------------------------------- loading


def _flat_weights(table: pa.Table, path: str, width: int | None) -> np.ndarray:
    col = table.column("weights").combine_chunks()
    if col.null_count:
        raise ContractError(f"{path}: column 'weights' has {col.null_count} null row(s)")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    n = len(lengths)
    if n and width is not None and not (lengths == width).all():
        bad = int(np.flatnonzero(lengths != width)[0])
        raise ContractError(
            f"{path}: row {bad} of 'weights' has length {int(lengths[bad])}, expected {width} "
            "(MoE layers x num_experts from the schema metadata)"
        )
    values = col.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(n, width if width is not None else 0)


def load_routing(generations: Sequence[str | os.PathLike], judgments: Sequence[str | os.PathLike]) -> RoutingData:
    """Read generations (``weights``) and judgments, matched by (item_id, lang).

    A generation without a judgment, a judgment without a generation, duplicate keys, null
    ``correct`` values, non-finite weights or differing routing metadata are errors naming the file.
    """
    _check_given(generations, judgments)
    meta0, total = _common_routing_metadata(generations)
    layers, E = list(meta0["moe_layers"]), int(meta0["num_experts"])
    weights, gen = _load_weights(generations, total, len(layers) * E)
    jud = _load_judgments(judgments)
    joined = _match(gen, jud, judgments)
    item_ids, q_index = np.unique(joined["item_id"].to_numpy().astype(str), return_inverse=True)
    langs, lang_index = np.unique(joined["lang"].to_numpy().astype(str), return_inverse=True)
    return RoutingData(
        item_ids=item_ids,
        langs=langs,
        q_index=q_index.astype(np.int64),
        lang_index=lang_index.astype(np.int64),
        correct=joined["correct"].to_numpy().astype(bool),
        weights=weights,
        moe_layers=layers,
        num_experts=E,
        top_k=int(meta0.get("top_k", 0)),
    )


def _check_given(generations: Sequence[str | os.PathLike], judgments: Sequence[str | os.PathLike]) -> None:
    if not generations:
        raise MoeRoutingError("no generations files given")
    if not judgments:
        raise MoeRoutingError("no judgments files given")
    for path in list(generations) + list(judgments):
        if not os.path.exists(path):
            raise ContractError(f"{path}: file not found")


def _common_routing_metadata(generations: Sequence[str | os.PathLike]) -> tuple[dict, int]:
    """The first file's routing metadata, which every file must share, and the rows of all files."""
    meta0 = read_routing_metadata(generations[0])
    layers, E = list(meta0["moe_layers"]), int(meta0["num_experts"])
    total = 0
    for g in generations:
        m = read_routing_metadata(g)
        if list(m["moe_layers"]) != layers or int(m["num_experts"]) != E:
            raise ContractError(
                f"{g}: routing metadata (moe_layers={m['moe_layers']}, num_experts={m['num_experts']}) "
                f"differs from {generations[0]} (moe_layers={layers}, num_experts={E})"
            )
        total += count_rows(g)
    return meta0, total


def _load_weights(generations: Sequence[str | os.PathLike], total: int, width: int) -> tuple[np.ndarray, pl.DataFrame]:
    """Every file's weights in one buffer (the only full-size copy of the routing data), and the (item_id, lang)
    of each row with its row number and file."""
    weights = np.empty((total, width), dtype=np.float32)
    keys = []
    start = 0
    for g in generations:
        t = read_table(g, required=["item_id", "lang", "weights"])
        w = _flat_weights(t, str(g), width)
        if not np.isfinite(w).all():
            bad = int(np.flatnonzero(~np.isfinite(w).all(axis=1))[0])
            raise ContractError(f"{g}: row {bad} of 'weights' has NaN or infinite values")
        weights[start : start + len(w)] = w
        keys.append(
            pl.DataFrame(
                {
                    "item_id": t.column("item_id").to_pylist(),
                    "lang": t.column("lang").to_pylist(),
                    "_row": np.arange(start, start + len(w)),
                    "_gen": [str(g)] * len(w),
                },
                schema={"item_id": pl.String, "lang": pl.String, "_row": pl.Int64, "_gen": pl.String},
            )
        )
        start += len(w)
        del t, w
    gen = pl.concat(keys)
    _check_unique(gen, "_gen", "generations")
    return weights, gen


def _load_judgments(judgments: Sequence[str | os.PathLike]) -> pl.DataFrame:
    """(item_id, lang, correct, _jud = its file) of every judgment: boolean, unique and never null."""
    jud = pl.concat(
        [
            read_frame(j, contract="judgments").select("item_id", "lang", "correct").with_columns(_jud=pl.lit(str(j)))
            for j in judgments
        ]
    )
    if jud.schema["correct"] != pl.Boolean:
        raise ContractError(
            f"judgments column 'correct' must be boolean, got {jud.schema['correct']} in {list(map(str, judgments))}"
        )
    _check_unique(jud, "_jud", "judgments")
    nulls = jud.filter(pl.col("correct").is_null())
    if nulls.height:
        r = nulls.row(0, named=True)
        raise ContractError(f"{r['_jud']}: 'correct' is null for item_id={r['item_id']!r} lang={r['lang']!r}")
    return jud


def _match(gen: pl.DataFrame, jud: pl.DataFrame, judgments: Sequence[str | os.PathLike]) -> pl.DataFrame:
    """Each generation row with its judgment, in row order; one without the other is an error."""
    joined = gen.join(jud, on=["item_id", "lang"], how="left")
    missing = joined.filter(pl.col("_jud").is_null())
    if missing.height:
        r = missing.row(0, named=True)
        raise ContractError(
            f"{r['_gen']}: {missing.height} generation(s) have no judgment, e.g. item_id={r['item_id']!r} "
            f"lang={r['lang']!r}; judgments files: {[str(j) for j in judgments]}"
        )
    extra = jud.join(gen, on=["item_id", "lang"], how="anti")
    if extra.height:
        r = extra.row(0, named=True)
        raise ContractError(
            f"{r['_jud']}: {extra.height} judgment(s) have no generation, e.g. item_id={r['item_id']!r} lang={r['lang']!r}"
        )
    return joined.sort("_row")


def _check_unique(frame: pl.DataFrame, file_col: str, what: str) -> None:
    dup = frame.filter(pl.struct("item_id", "lang").is_duplicated())
    if dup.height:
        r = dup.row(0, named=True)
        raise ContractError(
            f"{r[file_col]}: duplicate {what} row for item_id={r['item_id']!r} lang={r['lang']!r} "
            f"({dup.height} duplicated rows across {sorted(set(dup[file_col]))})"
        )


# ---------------------------------------------------------------- steps 1-4


def question_outcomes(judgments: pl.DataFrame) -> pl.DataFrame:
    """item_id, n_langs, n_correct, n_wrong, outcome (all_correct | all_incorrect | mixed), sorted by item_id."""
    for c in ("item_id", "lang", "correct"):
        if c not in judgments.columns:
            raise ContractError(f"judgments lack column {c!r}")
    if judgments.schema["correct"] != pl.Boolean:
        raise ContractError(f"judgments column 'correct' must be boolean, got {judgments.schema['correct']}")
    return (
        judgments.group_by("item_id")
        .agg(n_langs=pl.len(), n_correct=pl.col("correct").cast(pl.Int64).sum())
        .with_columns(n_wrong=pl.col("n_langs") - pl.col("n_correct"))
        .with_columns(
            outcome=pl.when(pl.col("n_wrong") == 0)
            .then(pl.lit("all_correct"))
            .when(pl.col("n_correct") == 0)
            .then(pl.lit("all_incorrect"))
            .otherwise(pl.lit("mixed"))
        )
        .sort("item_id")
    )


def kept_layer_positions(num_layers: int, exclude_first: int, exclude_last: int) -> np.ndarray:
    """Positions (0-based, among the MoE layers) that stay after the exclusion."""
    kept = np.arange(exclude_first, num_layers - exclude_last)
    if kept.size == 0:
        raise MoeRoutingError(
            f"excluding the first {exclude_first} and last {exclude_last} of {num_layers} MoE layers leaves none"
        )
    return kept


def _kept_columns(kept: np.ndarray, num_experts: int) -> np.ndarray:
    return (kept[:, None] * num_experts + np.arange(num_experts)[None, :]).ravel()


def generalist_blacklist(
    weights: np.ndarray,
    kept: np.ndarray,
    num_experts: int,
    top: float = 0.01,
    share: float = 0.05,
    chunk_rows: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """(blacklisted (K*E,) bool, marked share (K*E,) float) over the kept layers' columns."""
    lo, hi = int(kept[0]) * num_experts, (int(kept[-1]) + 1) * num_experts
    if not (np.diff(kept) == 1).all():
        raise MoeRoutingError("kept layers must be contiguous")
    n_rows, width = weights.shape[0], hi - lo
    if n_rows == 0:
        raise MoeRoutingError("no sequences to build the blacklist from")
    n_top = max(1, math.ceil(top * width - 1e-9))
    counts = np.zeros(width, dtype=np.int64)
    for s in range(0, n_rows, chunk_rows):
        block = weights[s : s + chunk_rows, lo:hi]  # view: no copy of the kept layers
        idx = np.argpartition(block, width - n_top, axis=1)[:, width - n_top :]
        vals = np.take_along_axis(block, idx, axis=1)
        counts += np.bincount(idx[vals > 0], minlength=width)
    frac = counts / n_rows
    return frac > share, frac


def language_means(weights: np.ndarray, lang_index: np.ndarray, n_langs: int, columns: np.ndarray) -> np.ndarray:
    """(G, C) float64 mean over all sequences of each language (Eq. 2), on the given columns."""
    out = np.zeros((n_langs, columns.size), dtype=np.float64)
    for g in range(n_langs):
        rows = np.flatnonzero(lang_index == g)
        if rows.size:
            out[g] = weights[np.ix_(rows, columns)].mean(axis=0, dtype=np.float64)
    return out


# ---------------------------------------------------------------- step 7-9


def mwu_greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One-tailed MWU p-values (x greater than y) for every expert at once; experts are rows.

    x: (C, n1), y: (C, n2). Equals ``scipy.stats.mannwhitneyu(x[c], y[c], alternative='greater')``
    for every c: scipy's ``method='auto'`` picks exact vs asymptotic from ties over the whole
    array it is given, so rows with and without ties are passed separately.
    """
    from scipy.stats import mannwhitneyu

    n1, n2 = x.shape[1], y.shape[1]
    p = np.ones(x.shape[0], dtype=np.float64)
    if n1 == 0 or n2 == 0 or x.shape[0] == 0:
        return p
    if n1 > 8 and n2 > 8:  # scipy's auto rule: asymptotic whatever the ties
        p[:] = mannwhitneyu(x, y, alternative="greater", axis=-1, method="asymptotic").pvalue
        return p
    both = np.sort(np.concatenate([x, y], axis=1), axis=1)
    tied = (np.diff(both, axis=1) == 0).any(axis=1)
    for mask, method in ((tied, "asymptotic"), (~tied, "exact")):
        if mask.any():
            p[mask] = mannwhitneyu(x[mask], y[mask], alternative="greater", axis=-1, method=method).pvalue
    return p


def bh_adjust(p: np.ndarray) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    if p.size == 0:
        return p.copy()
    return multipletests(p, method="fdr_bh")[1]


def default_workers() -> int:
    """CPUs this process may use (respects Slurm/taskset affinity), at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def question_tests(
    data: RoutingData,
    settings: XiciSettings,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[QuestionTests, pl.DataFrame, pl.DataFrame]:
    """Steps 1-7: (per-question tests, outcomes frame, blacklist frame).

    ``workers`` threads (default ``default_workers()``) test questions concurrently; results do
    not depend on it.
    """
    kept = kept_layer_positions(data.num_layers, settings.exclude_first, settings.exclude_last)
    E = data.num_experts
    black, share = generalist_blacklist(data.weights, kept, E, settings.blacklist_top, settings.blacklist_share)
    kept_cols = _kept_columns(kept, E)
    columns = kept_cols[~black]
    bl_cols = kept_cols[black]
    blacklist = pl.DataFrame(
        {
            "layer": np.asarray(data.moe_layers, dtype=np.int64)[bl_cols // E],
            "expert": (bl_cols % E).astype(np.int64),
            "share": share[black].astype(np.float64),
        },
        schema={"layer": pl.Int64, "expert": pl.Int64, "share": pl.Float64},
    )
    means = language_means(data.weights, data.lang_index, len(data.langs), columns)

    outcomes = question_outcomes(
        pl.DataFrame({"item_id": data.item_ids[data.q_index], "lang": data.langs[data.lang_index], "correct": data.correct})
    )
    order = np.lexsort((data.lang_index, data.q_index))
    bounds = np.searchsorted(data.q_index[order], np.arange(len(data.item_ids) + 1))
    mixed_q = [
        q
        for q in range(len(data.item_ids))
        if 0 < data.correct[order[bounds[q] : bounds[q + 1]]].sum() < bounds[q + 1] - bounds[q]
    ]
    M, C = len(mixed_q), columns.size
    tests = QuestionTests(
        columns=columns,
        item_ids=[str(data.item_ids[q]) for q in mixed_q],
        n_correct=np.zeros(M, dtype=np.int64),
        n_wrong=np.zeros(M, dtype=np.int64),
        p_value=np.ones((M, C)),
        p_adjusted=np.ones((M, C)),
        median_diff=np.zeros((M, C)),
    )

    def one(i: int) -> None:
        rows = order[bounds[mixed_q[i]] : bounds[mixed_q[i] + 1]]
        x = data.weights[np.ix_(rows, columns)].astype(np.float64)
        x -= means[data.lang_index[rows]]
        x = np.ascontiguousarray(x.T)  # experts as rows: scipy ranks along the contiguous axis
        ok = data.correct[rows]
        xc, xw = x[:, ok], x[:, ~ok]
        tests.n_correct[i], tests.n_wrong[i] = xc.shape[1], xw.shape[1]
        tests.p_value[i] = mwu_greater(xc, xw)
        tests.p_adjusted[i] = bh_adjust(tests.p_value[i])
        tests.median_diff[i] = np.median(xc, axis=1) - np.median(xw, axis=1)

    # numpy's sorts release the GIL, so threads overlap the questions; each writes its own row
    n_workers = max(1, min(workers or default_workers(), M))
    bar = progress_bar(total=M, desc="xici: questions", unit="q", disable=not progress)
    if n_workers == 1:
        for i in range(M):
            one(i)
            bar.update()
    else:
        with ThreadPoolExecutor(n_workers) as pool:
            for _ in pool.map(one, range(M)):
                bar.update()
    bar.close()
    return tests, outcomes, blacklist


def rank_passing(p_adjusted: np.ndarray, median_diff: np.ndarray) -> np.ndarray:
    """Order (indices into the inputs) by summed ranks; see the module docstring for ties."""
    from scipy.stats import rankdata

    if p_adjusted.size == 0:
        return np.zeros(0, dtype=np.int64)
    score = rankdata(p_adjusted, method="min") + rankdata(-median_diff, method="min")
    return np.lexsort((np.arange(p_adjusted.size), -median_diff, p_adjusted, score))


def select_experts(
    p_value: np.ndarray, p_adjusted: np.ndarray, median_diff: np.ndarray, alpha: float, tau: float, cap: int
) -> tuple[np.ndarray, int, int]:
    """(kept indices in rank order, n passing the test, n passing test and magnitude) for one question."""
    sig = p_value < alpha
    passing = np.flatnonzero(sig & (median_diff > tau))
    order = passing[rank_passing(p_adjusted[passing], median_diff[passing])]
    return order[:cap], int(sig.sum()), int(passing.size)


def select_all(
    tests: QuestionTests, data_layers: Sequence[int], num_experts: int, alpha: float, tau: float, cap: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(experts contract frame, per mixed question counts) for one setting."""
    layers = np.asarray(data_layers, dtype=np.int64)
    parts, counts = [], []
    for i, item in enumerate(tests.item_ids):
        idx, n_test, n_mag = select_experts(tests.p_value[i], tests.p_adjusted[i], tests.median_diff[i], alpha, tau, cap)
        cols = tests.columns[idx]
        counts.append((item, n_test, n_mag, idx.size))
        if idx.size:
            parts.append(
                pl.DataFrame(
                    {
                        "item_id": [item] * idx.size,
                        "layer": layers[cols // num_experts],
                        "expert": (cols % num_experts).astype(np.int64),
                        "p_value": tests.p_value[i, idx],
                        "p_adjusted": tests.p_adjusted[i, idx],
                        "median_diff": tests.median_diff[i, idx],
                        "rank": np.arange(1, idx.size + 1, dtype=np.int64),
                    },
                    schema=EXPERTS_SCHEMA,
                )
            )
    experts = pl.concat(parts) if parts else pl.DataFrame(schema=EXPERTS_SCHEMA)
    per_q = pl.DataFrame(
        counts,
        schema={"item_id": pl.String, "pass_test": pl.Int64, "pass_magnitude": pl.Int64, "kept": pl.Int64},
        orient="row",
    )
    return experts, per_q


EXPERTS_SCHEMA = {
    "item_id": pl.String,
    "layer": pl.Int64,
    "expert": pl.Int64,
    "p_value": pl.Float64,
    "p_adjusted": pl.Float64,
    "median_diff": pl.Float64,
    "rank": pl.Int64,
}


def identify(data: RoutingData, settings: XiciSettings, progress: bool = True, workers: int | None = None) -> XiciResult:
    """Steps 1-9 for one model x dataset."""
    tests, outcomes, blacklist = question_tests(data, settings, progress=progress, workers=workers)
    experts, per_q = select_all(tests, data.moe_layers, data.num_experts, settings.alpha, settings.tau, settings.cap)
    tested = pl.DataFrame(
        {"item_id": tests.item_ids, "tested": [int(tests.columns.size)] * len(tests.item_ids)},
        schema={"item_id": pl.String, "tested": pl.Int64},
    )
    summary = (
        outcomes.join(tested, on="item_id", how="left")
        .join(per_q, on="item_id", how="left")
        .with_columns(pl.col("tested", "pass_test", "pass_magnitude", "kept").fill_null(0))
        .select("item_id", "outcome", "n_langs", "n_correct", "n_wrong", "tested", "pass_test", "pass_magnitude", "kept")
        .sort("item_id")
    )
    return XiciResult(experts=experts, summary=summary, blacklist=blacklist, tests=tests)


def sweep(tests: QuestionTests, alphas: Iterable[float], taus: Iterable[float], caps: Iterable[int]) -> pl.DataFrame:
    """Selection counts for every (alpha, tau, cap) from one set of tests.

    The kept count of a question is min(number passing test and magnitude, cap), so each
    (alpha, tau) needs one pass over the statistics and every cap comes for free.
    """
    rows = []
    M = len(tests.item_ids)
    for a in alphas:
        sig = tests.p_value < a
        n_test = sig.sum(axis=1)
        for t in taus:
            n_pass = (sig & (tests.median_diff > t)).sum(axis=1)
            for c in caps:
                kept = np.minimum(n_pass, c)
                with_experts = int((kept > 0).sum())
                rows.append(
                    {
                        "alpha": float(a),
                        "tau": float(t),
                        "cap": int(c),
                        "mixed_questions": M,
                        "questions_with_experts": with_experts,
                        "experts_total": int(kept.sum()),
                        "mean_experts_per_question": float(kept.sum() / with_experts) if with_experts else None,
                        "questions_capped": int((n_pass > c).sum()),
                        "pass_test_total": int(n_test.sum()),
                        "pass_magnitude_total": int(n_pass.sum()),
                    }
                )
    return pl.DataFrame(
        rows,
        schema={
            "alpha": pl.Float64,
            "tau": pl.Float64,
            "cap": pl.Int64,
            "mixed_questions": pl.Int64,
            "questions_with_experts": pl.Int64,
            "experts_total": pl.Int64,
            "mean_experts_per_question": pl.Float64,
            "questions_capped": pl.Int64,
            "pass_test_total": pl.Int64,
            "pass_magnitude_total": pl.Int64,
        },
    )
