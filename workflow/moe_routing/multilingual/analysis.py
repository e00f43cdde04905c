"""Multilingual routing analysis (routing paper Sections 4–5; METHOD "Multilingual routing analysis").

Inputs are generations files with routing capture: ``softmax_mean`` (or ``topk_mean``), ``freq``
(L·E, layer-major) and ``entropy``, ``consistency`` (L) per sequence, plus the schema metadata
``moe_layers``, ``num_experts``, ``top_k``. Rows are grouped by their ``lang`` column (a file may
hold several languages). Layers in every output table are *model* layer indices (``moe_layers``),
not positions.

Two definitions exist for two quantities; the defaults are the paper's:

- expert importance (what the divergence compares): ``softmax`` = the paper's Eq. 1, the mean over
  tokens of softmax(z) over all E experts (``softmax_mean``); ``topk`` = the public code's live
  path, per token softmax over E kept on its top k and renormalised, then averaged (``topk_mean``);
- routing entropy: ``token`` = the paper's, mean over tokens of H(softmax(z_t)) (token-weighted
  mean of the per-sequence ``entropy``); ``sequence`` = the public notebook's, H of each sequence's
  importance distribution (with ``+1e-10`` inside the log), averaged over sequences.

- entropy-normalised JS divergence from English (Eqs. 6–8), mean over parallel pairs;
- routing entropy and token consistency (mean over sequences);
- Pearson r per layer between divergence and per-language accuracy;
- specialisation Δ (Eq. 3) and the experts with Δ > τ: language experts (any language vs the
  English) and task experts (a task set vs English), and their overlap.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special, stats

from moe_routing.core.errors import ContractError, MoeRoutingError

log = logging.getLogger(__name__)


class AnalysisError(MoeRoutingError):
    pass


@dataclass(frozen=True)
class RoutingShape:
    moe_layers: list[int]
    num_experts: int
    top_k: int

    @property
    def n_layers(self) -> int:
        return len(self.moe_layers)


def shape_from_metadata(meta: dict) -> RoutingShape:
    return RoutingShape([int(x) for x in meta["moe_layers"]], int(meta["num_experts"]), int(meta["top_k"]))


def check_same_shape(shapes: dict[str, RoutingShape]) -> RoutingShape:
    """All files must come from the same model layout; name the odd one out."""
    items = list(shapes.items())
    first_name, first = items[0]
    for name, s in items[1:]:
        if s != first:
            raise AnalysisError(f"{name}: routing layout {s} differs from {first_name}: {first}")
    return first


# ---------------------------------------------------------------- arrays


def routing_array(
    frame: pl.DataFrame, column: str, shape: RoutingShape, per_expert: bool = True, name: str = "generations"
) -> np.ndarray:
    """A routing list column as float64 (N, L, E) (``per_expert``) or (N, L)."""
    if column not in frame.columns:
        raise ContractError(f"{name}: missing routing column {column!r}; was it generated with capture on?")
    width = shape.n_layers * (shape.num_experts if per_expert else 1)
    lengths = frame[column].list.len()
    bad = frame.filter((lengths != width) | lengths.is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise ContractError(
            f"{name}: column {column!r} must hold {width} values per row; item {row['item_id']!r} has {len(row[column] or [])}"
        )
    flat = np.asarray(frame[column].explode().to_numpy(), dtype=np.float64)
    out = flat.reshape(frame.height, shape.n_layers, -1)
    return out if per_expert else out[..., 0]


def token_counts(frame: pl.DataFrame) -> np.ndarray:
    """Tokens the routing summaries average over: the captured ``tokens`` column, or for files
    without it (every token counted) the prompt plus every generated token but the last."""
    if "tokens" in frame.columns and frame["tokens"].null_count() == 0:
        return frame["tokens"].to_numpy().astype(np.float64)
    prompt = frame["prompt_token_ids"].list.len().to_numpy().astype(np.float64)
    output = frame["output_token_ids"].list.len().to_numpy().astype(np.float64)
    return prompt + np.maximum(output - 1.0, 0.0)


def _normalise(p: np.ndarray) -> np.ndarray:
    # captured means are float32; renormalise so rounding does not leak into KL terms
    s = p.sum(axis=-1, keepdims=True)
    return np.divide(p, s, out=np.zeros_like(p), where=s > 0)


# ---------------------------------------------------------------- divergence


def entropy_nats(p: np.ndarray) -> np.ndarray:
    return special.entr(_normalise(np.asarray(p, dtype=np.float64))).sum(axis=-1)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """D_JS in nats over the last axis (Eq. 6), vectorised with scipy.special.rel_entr."""
    p = _normalise(np.asarray(p, dtype=np.float64))
    q = _normalise(np.asarray(q, dtype=np.float64))
    m = 0.5 * (p + q)
    return 0.5 * special.rel_entr(p, m).sum(axis=-1) + 0.5 * special.rel_entr(q, m).sum(axis=-1)


def hjs_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Entropy-normalised JS divergence D_H-JS = D_JS / (log E − ½(H(p)+H(q))) (Eqs. 6–8).

    When both distributions are uniform F = 0 and D_JS = 0; the divergence is then 0.
    """
    p = np.asarray(p, dtype=np.float64)
    n_experts = p.shape[-1]
    js = js_divergence(p, q)
    f = math.log(n_experts) - 0.5 * (entropy_nats(p) + entropy_nats(q))
    tiny = 1e-12
    return np.where(f > tiny, js / np.maximum(f, tiny), 0.0)


def pair_with_english(
    english: pl.DataFrame, other: pl.DataFrame, english_name: str, other_name: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of both files for their shared item_ids, in the same order."""
    for name, f in ((english_name, english), (other_name, other)):
        dup = f.group_by("item_id").len().filter(pl.col("len") > 1)
        if dup.height:
            raise AnalysisError(f"{name}: item_id {dup['item_id'][0]!r} appears {dup['len'][0]} times")
    shared = english.select("item_id").join(other.select("item_id"), on="item_id", how="inner")
    if shared.height == 0:
        raise AnalysisError(f"{other_name} and {english_name} share no item_id; divergence needs parallel items")
    unpaired = other.height - shared.height
    if unpaired:
        log.warning("%s: %d item(s) have no parallel item in %s and are skipped", other_name, unpaired, english_name)
    a = shared.join(english, on="item_id", how="left", maintain_order="left")
    b = shared.join(other, on="item_id", how="left", maintain_order="left")
    return a, b


def divergence_per_layer(english: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Mean D_H-JS over paired sequences: (N, L, E) × (N, L, E) → (L,)."""
    return hjs_divergence(english, other).mean(axis=0)


def long_table(values: dict[str, np.ndarray], moe_layers: list[int]) -> pl.DataFrame:
    """{lang: (L,)} → columns layer, lang, value."""
    rows = [(int(layer), lang, float(v[i])) for lang, v in values.items() for i, layer in enumerate(moe_layers)]
    return pl.DataFrame(rows, schema={"layer": pl.Int64, "lang": pl.String, "value": pl.Float64}, orient="row")


# ---------------------------------------------------------------- entropy, consistency


def mean_entropy(entropy: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Mean over tokens of the routing entropy: sequence means weighted by their token counts. (N, L) → (L,)."""
    w = np.asarray(tokens, dtype=np.float64)
    if w.sum() <= 0:
        raise AnalysisError("no tokens to average the entropy over")
    return (entropy * w[:, None]).sum(axis=0) / w.sum()


def sequence_entropy(importance: np.ndarray) -> np.ndarray:
    """The public notebook's entropy: H of each sequence's importance distribution, ``+1e-10``
    inside the log as there, averaged over sequences (unweighted). (N, L, E) → (L,)."""
    if importance.shape[0] == 0:
        raise AnalysisError("no sequences to average the entropy over")
    p = _normalise(np.asarray(importance, dtype=np.float64))
    return (-(p * np.log(p + 1e-10)).sum(axis=-1)).mean(axis=0)


def mean_consistency(consistency: np.ndarray) -> np.ndarray:
    """Mean over sequences of the per-sequence token-pair Jaccard; sequences of one token (NaN) are skipped."""
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(consistency).sum(axis=0)
        sums = np.where(np.isfinite(consistency), consistency, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


# ---------------------------------------------------------------- correlation


def correlation_table(divergence: pl.DataFrame, accuracy: pl.DataFrame) -> pl.DataFrame:
    """Per layer: Pearson r (scipy) across languages between divergence and accuracy.

    ``accuracy`` has columns lang, accuracy. Languages missing from either side are left out;
    fewer than 3 shared languages or a constant column gives r = NaN.
    """
    acc = accuracy.select("lang", pl.col("accuracy").cast(pl.Float64))
    joined = divergence.join(acc, on="lang", how="inner")
    rows = []
    for layer in sorted(set(divergence["layer"].to_list())):
        sub = joined.filter(pl.col("layer") == layer)
        x, y = sub["value"].to_numpy(), sub["accuracy"].to_numpy()
        r = p = float("nan")
        if sub.height >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            res = stats.pearsonr(x, y)
            r, p = float(res.statistic), float(res.pvalue)
        rows.append((int(layer), r, p, sub.height))
    if joined.is_empty():
        log.warning("accuracy table shares no language with the divergence table")
    return pl.DataFrame(
        rows, schema={"layer": pl.Int64, "r": pl.Float64, "p_value": pl.Float64, "n_langs": pl.Int64}, orient="row"
    )


# ---------------------------------------------------------------- specialisation


def activation_frequency(freq: np.ndarray) -> np.ndarray:
    """mean_i a_i/L_i over sequences: (N, L, E) → (L, E). ``freq`` already holds a_i/L_i."""
    if freq.shape[0] == 0:
        raise AnalysisError("no sequences to average activation frequencies over")
    return freq.mean(axis=0)


def specialisation_delta(target_freq: np.ndarray, baseline_freq: np.ndarray) -> np.ndarray:
    """Eq. 3: Δ = mean a/L over the target set − mean a/L over the baseline set, (L, E)."""
    return activation_frequency(target_freq) - activation_frequency(baseline_freq)


def delta_table(deltas: dict[str, np.ndarray], moe_layers: list[int]) -> pl.DataFrame:
    """{comparison: (L, E)} → comparison, layer, expert, delta."""
    frames = []
    for name, d in deltas.items():
        n_layers, n_experts = d.shape
        frames.append(
            pl.DataFrame(
                {
                    "comparison": [name] * d.size,
                    "layer": np.repeat(np.asarray(moe_layers, dtype=np.int64), n_experts),
                    "expert": np.tile(np.arange(n_experts, dtype=np.int64), n_layers),
                    "delta": d.reshape(-1),
                }
            )
        )
    return (
        pl.concat(frames)
        if frames
        else pl.DataFrame(schema={"comparison": pl.String, "layer": pl.Int64, "expert": pl.Int64, "delta": pl.Float64})
    )


def experts_above(
    deltas: dict[str, np.ndarray], moe_layers: list[int], tau: float, layers: list[int] | None = None
) -> pl.DataFrame:
    """Experts with Δ > τ in any of the comparisons: layer, expert, max_delta, comparisons (comma-joined).

    ``layers`` (model layer indices) restricts the search, e.g. to steering target layers.
    """
    keep = set(moe_layers if layers is None else layers)
    found: dict[tuple[int, int], list[tuple[str, float]]] = {}
    for name, d in deltas.items():
        for li, e in zip(*np.nonzero(d > tau)):
            layer = int(moe_layers[li])
            if layer in keep:
                found.setdefault((layer, int(e)), []).append((name, float(d[li, e])))
    rows = [(layer, e, max(v for _, v in hits), ",".join(n for n, _ in hits)) for (layer, e), hits in sorted(found.items())]
    return pl.DataFrame(
        rows, schema={"layer": pl.Int64, "expert": pl.Int64, "max_delta": pl.Float64, "comparisons": pl.String}, orient="row"
    )


def overlap_table(
    language_experts: dict[float, pl.DataFrame], task_experts: dict[float, dict[str, pl.DataFrame]]
) -> pl.DataFrame:
    """Per τ and task: counts of language experts, task experts and experts in both (Finding 5)."""
    rows = []
    for tau, lang_df in language_experts.items():
        lang_set = set(zip(lang_df["layer"].to_list(), lang_df["expert"].to_list()))
        for task, task_df in task_experts.get(tau, {}).items():
            task_set = set(zip(task_df["layer"].to_list(), task_df["expert"].to_list()))
            both = sorted(lang_set & task_set)
            rows.append((float(tau), task, len(lang_set), len(task_set), len(both), ";".join(f"{l}:{e}" for l, e in both)))
    return pl.DataFrame(
        rows,
        schema={
            "tau": pl.Float64,
            "task": pl.String,
            "n_language_experts": pl.Int64,
            "n_task_experts": pl.Int64,
            "n_overlap": pl.Int64,
            "overlap": pl.String,
        },
        orient="row",
    )


def experts_per_layer(experts: pl.DataFrame, moe_layers: list[int]) -> np.ndarray:
    """Count of identified experts in each MoE layer (Fig. 5)."""
    counts = dict(experts.group_by("layer").len().iter_rows()) if experts.height else {}
    return np.array([counts.get(int(layer), 0) for layer in moe_layers], dtype=np.int64)


# ---------------------------------------------------------------- one language's summaries

IMPORTANCE = {"softmax": "softmax_mean", "topk": "topk_mean"}  # definition -> generations column
ENTROPY = ("token", "sequence")


def needed_columns(importance: str = "softmax") -> list[str]:
    if importance not in IMPORTANCE:
        raise AnalysisError(f"importance must be one of {sorted(IMPORTANCE)}, got {importance!r}")
    return [IMPORTANCE[importance], "freq", "entropy", "consistency"]


@dataclass
class LanguageRouting:
    """One language's sequences reduced to what the analysis needs."""

    lang: str
    frame: pl.DataFrame  # item_id
    importance: np.ndarray  # (N, L, E): softmax_mean or topk_mean
    freq: np.ndarray  # (N, L, E)
    entropy: np.ndarray  # (N, L) per-sequence mean token entropy
    consistency: np.ndarray  # (N, L)
    tokens: np.ndarray  # (N,)


def language_routing(frame: pl.DataFrame, shape: RoutingShape, name: str, importance: str = "softmax") -> LanguageRouting:
    """The rows of one language (``frame`` must hold exactly one)."""
    langs = frame["lang"].unique().to_list()
    if len(langs) != 1:
        raise AnalysisError(f"{name}: expected one language, found {sorted(map(str, langs))}")
    if frame.height == 0:
        raise AnalysisError(f"{name}: no rows")
    column = needed_columns(importance)[0]
    return LanguageRouting(
        lang=str(langs[0]),
        frame=frame.select("item_id"),
        importance=routing_array(frame, column, shape, True, name),
        freq=routing_array(frame, "freq", shape, True, name),
        entropy=routing_array(frame, "entropy", shape, False, name),
        consistency=routing_array(frame, "consistency", shape, False, name),
        tokens=token_counts(frame),
    )


def split_languages(
    frame: pl.DataFrame, shape: RoutingShape, name: str, importance: str = "softmax"
) -> dict[str, LanguageRouting]:
    """Rows grouped by their ``lang`` column, in order of first appearance."""
    if frame.height == 0:
        raise AnalysisError(f"{name}: no rows")
    dup = frame.group_by("lang", "item_id").len().filter(pl.col("len") > 1)
    if dup.height:
        lang, item, n = dup.row(0)
        raise AnalysisError(f"{name}: item {item!r} of language {lang!r} appears {n} times (a language given twice?)")
    langs = list(dict.fromkeys(frame["lang"].to_list()))
    return {
        str(lang): language_routing(frame.filter(pl.col("lang") == lang), shape, f"{name} [{lang}]", importance) for lang in langs
    }


@dataclass
class AnalysisResult:
    divergence: pl.DataFrame
    entropy: pl.DataFrame
    consistency: pl.DataFrame
    correlation: pl.DataFrame | None
    deltas: dict[str, np.ndarray]  # comparison name -> (L, E)
    language_experts: dict[float, pl.DataFrame]
    task_experts: dict[float, dict[str, pl.DataFrame]]
    overlap: pl.DataFrame


def routing_entropy(lr: LanguageRouting, entropy: str = "token") -> np.ndarray:
    """(L,) routing entropy of one language under the chosen definition (module docstring)."""
    if entropy == "token":
        return mean_entropy(lr.entropy, lr.tokens)
    if entropy == "sequence":
        return sequence_entropy(lr.importance)
    raise AnalysisError(f"entropy must be one of {ENTROPY}, got {entropy!r}")


def analyze(
    languages: dict[str, LanguageRouting],
    shape: RoutingShape,
    english: str,
    accuracy: pl.DataFrame | None = None,
    tasks: dict[str, LanguageRouting] | None = None,
    taus: list[float] = (0.3,),
    entropy: str = "token",
) -> AnalysisResult:
    """The whole analysis from per-language routing (``languages`` keyed by lang); the importance
    definition is whichever ``language_routing`` read."""
    if english not in languages:
        raise AnalysisError(f"English ({english!r}) is not among the generations ({sorted(languages)})")
    if entropy not in ENTROPY:
        raise AnalysisError(f"entropy must be one of {ENTROPY}, got {entropy!r}")
    base = languages[english]
    div: dict[str, np.ndarray] = {}
    for lang, lr in languages.items():
        if lang == english:
            continue
        a, b = pair_with_english(base.frame.with_row_index("_i"), lr.frame.with_row_index("_j"), english, lang)
        div[lang] = divergence_per_layer(base.importance[a["_i"].to_numpy()], lr.importance[b["_j"].to_numpy()])
    divergence = long_table(div, shape.moe_layers)
    entropies = long_table({lang: routing_entropy(lr, entropy) for lang, lr in languages.items()}, shape.moe_layers)
    consistency = long_table({lang: mean_consistency(lr.consistency) for lang, lr in languages.items()}, shape.moe_layers)
    correlation = correlation_table(divergence, accuracy) if accuracy is not None else None

    deltas = {
        f"{lang}-vs-{english}": specialisation_delta(lr.freq, base.freq) for lang, lr in languages.items() if lang != english
    }
    task_deltas = {f"{task}-vs-{english}": specialisation_delta(tr.freq, base.freq) for task, tr in (tasks or {}).items()}
    lang_experts = {float(t): experts_above(deltas, shape.moe_layers, float(t)) for t in taus}
    task_experts = {
        float(t): {
            task: experts_above({f"{task}-vs-{english}": task_deltas[f"{task}-vs-{english}"]}, shape.moe_layers, float(t))
            for task in (tasks or {})
        }
        for t in taus
    }
    return AnalysisResult(
        divergence=divergence,
        entropy=entropies,
        consistency=consistency,
        correlation=correlation,
        deltas={**deltas, **task_deltas},
        language_experts=lang_experts,
        task_experts=task_experts,
        overlap=overlap_table(lang_experts, task_experts),
    )


def experts_long(experts: dict[float, pl.DataFrame] | dict[float, dict[str, pl.DataFrame]], kind: str) -> pl.DataFrame:
    """Flatten {τ: table} or {τ: {task: table}} into one table with tau (and task) columns."""
    frames = []
    for tau, v in experts.items():
        if isinstance(v, dict):
            for task, df in v.items():
                frames.append(df.with_columns(pl.lit(float(tau)).alias("tau"), pl.lit(task).alias("set")))
        else:
            frames.append(v.with_columns(pl.lit(float(tau)).alias("tau"), pl.lit(kind).alias("set")))
    schema = {
        "tau": pl.Float64,
        "set": pl.String,
        "layer": pl.Int64,
        "expert": pl.Int64,
        "max_delta": pl.Float64,
        "comparisons": pl.String,
    }
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).select(list(schema))
