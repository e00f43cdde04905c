"""XICI identification at the papers' scale: time, peak memory, and the ratio to a per-expert loop.

    .venv/bin/python benchmarks/bench_xici.py [--questions 400 --langs 42 --layers 48 --experts 128]
                                              [--loop-questions 2] [--io] [--seed 0]

Synthetic routing (per-sequence mean weights, language effects, zeros for rarely used experts,
8 planted experts per mixed question) is built in memory. Timed: the whole identification
(blacklist, language means, one MWU + BH + medians per mixed question, selection). The loop
reference (one ``scipy.stats.mannwhitneyu`` call and two medians per expert, what a plain
implementation does) runs on ``--loop-questions`` questions and is extrapolated to all mixed
questions; the printed ratio says so. ``--io`` also writes the data as per-language generations
and judgments Parquet files and times ``load_routing``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def synth(n_q: int, n_lang: int, L: int, E: int, seed: int, exclude: int, boost: float):
    from moe_routing.xici.identify import RoutingData

    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 1.0, size=(L, E))
    lang_eff = rng.gamma(3.0, 1 / 3.0, size=(n_lang, L, E))
    p0 = 0.8 * np.exp(-base)
    weights = np.empty((n_q * n_lang, L * E), dtype=np.float32)
    correct = np.zeros((n_q, n_lang), bool)
    kept = np.arange(exclude, L - exclude)
    for q in range(n_q):  # one question at a time keeps the float64 temporaries small
        raw = base * lang_eff * rng.gamma(16.0, 1 / 16.0, size=(n_lang, L, E))
        raw[rng.random(raw.shape) < p0] = 0.0
        w = raw / np.maximum(raw.sum(axis=2, keepdims=True), 1e-12)
        if q % 5 == 0:  # some all-correct / all-incorrect questions, skipped by XICI
            correct[q] = q % 10 == 0
        else:
            correct[q, rng.choice(n_lang, rng.integers(2, n_lang - 1), replace=False)] = True
            pos = rng.choice(kept.size * E, 8, replace=False)
            for c in kept[pos // E] * E + pos % E:
                w[correct[q], c // E, c % E] += boost * rng.uniform(0.5, 1.5, correct[q].sum())
        weights[q * n_lang : (q + 1) * n_lang] = w.reshape(n_lang, L * E)
    return RoutingData(
        item_ids=np.array([f"q{q:04d}" for q in range(n_q)]),
        langs=np.array([f"l{g:02d}" for g in range(n_lang)]),
        q_index=np.repeat(np.arange(n_q), n_lang),
        lang_index=np.tile(np.arange(n_lang), n_q),
        correct=correct.ravel(),
        weights=weights,
        moe_layers=list(range(L)),
        num_experts=E,
        top_k=8,
    )


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS counter (VmHWM) so the next reading covers one step only."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loop_reference_seconds(data, settings, n_questions: int) -> tuple[float, float, int]:
    """Per-expert scipy loop on the first ``n_questions`` mixed questions: (wall s, CPU s, questions timed)."""
    from scipy.stats import mannwhitneyu

    from moe_routing.xici.identify import _kept_columns, bh_adjust, generalist_blacklist, kept_layer_positions, language_means

    kept = kept_layer_positions(data.num_layers, settings.exclude_first, settings.exclude_last)
    black, _ = generalist_blacklist(data.weights, kept, data.num_experts, settings.blacklist_top, settings.blacklist_share)
    cols = _kept_columns(kept, data.num_experts)[~black]
    means = language_means(data.weights, data.lang_index, len(data.langs), cols)
    done = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for q in range(len(data.item_ids)):
        rows = np.flatnonzero(data.q_index == q)
        ok = data.correct[rows]
        if ok.all() or not ok.any():
            continue
        x = data.weights[np.ix_(rows, cols)].astype(np.float64) - means[data.lang_index[rows]]
        p = np.empty(cols.size)
        md = np.empty(cols.size)
        for c in range(cols.size):
            a, b = x[ok, c], x[~ok, c]
            p[c] = mannwhitneyu(a, b, alternative="greater").pvalue
            md[c] = np.median(a) - np.median(b)
        bh_adjust(p)
        done += 1
        if done == n_questions:
            break
    return time.perf_counter() - t0, time.process_time() - c0, done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=400)
    ap.add_argument("--langs", type=int, default=42)
    ap.add_argument("--layers", type=int, default=48)
    ap.add_argument("--experts", type=int, default=128)
    ap.add_argument("--exclude", type=int, default=6, help="MoE layers excluded at each end (Qwen3-30B-A3B: 6)")
    ap.add_argument("--loop-questions", type=int, default=2)
    ap.add_argument("--io", action="store_true", help="also time load_routing from Parquet files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None, help="threads over questions (default: CPU count)")
    args = ap.parse_args()

    from moe_routing.xici.identify import XiciSettings, identify, load_routing

    settings = XiciSettings(exclude_first=args.exclude, exclude_last=args.exclude, alpha=0.05, tau=0.005, cap=25)
    t = time.perf_counter()
    data = synth(args.questions, args.langs, args.layers, args.experts, args.seed, args.exclude, boost=0.015)
    print(
        f"synthetic routing: {data.weights.shape[0]} sequences x {data.weights.shape[1]} experts "
        f"({data.weights.nbytes / 2**20:.0f} MiB float32), built in {time.perf_counter() - t:.1f} s"
    )

    if args.io:
        from moe_routing.core.contracts import routing_metadata
        from moe_routing.core.io import write_parquet
        import polars as pl
        import pyarrow as pa

        with tempfile.TemporaryDirectory() as d:
            gens, juds = [], []
            meta = routing_metadata("synthetic", data.moe_layers, data.num_experts, data.top_k)
            for g, lang in enumerate(data.langs):
                rows = np.flatnonzero(data.lang_index == g)
                items = data.item_ids[data.q_index[rows]].tolist()
                flat = pa.array(data.weights[rows].ravel())
                offs = pa.array(np.arange(0, (len(rows) + 1) * data.weights.shape[1], data.weights.shape[1], dtype=np.int32))
                write_parquet(
                    pa.table(
                        {"item_id": items, "lang": [str(lang)] * len(rows), "weights": pa.ListArray.from_arrays(offs, flat)}
                    ),
                    Path(d) / f"g_{lang}.parquet",
                    metadata=meta,
                )
                write_parquet(
                    pl.DataFrame(
                        {
                            "item_id": items,
                            "lang": [str(lang)] * len(rows),
                            "correct": data.correct[rows],
                            "judge": "x",
                            "detail": "",
                        }
                    ),
                    Path(d) / f"j_{lang}.parquet",
                )
                gens.append(Path(d) / f"g_{lang}.parquet")
                juds.append(Path(d) / f"j_{lang}.parquet")
            del flat, offs
            rss0 = peak_rss_mib()
            reset_peak_rss()
            base_rss = peak_rss_mib()
            t = time.perf_counter()
            loaded = load_routing(gens, juds)
            t_load = time.perf_counter() - t
            load_peak = peak_rss_mib() - base_rss
            assert np.array_equal(
                loaded.weights[np.lexsort((loaded.lang_index, loaded.q_index))],
                data.weights[np.lexsort((data.lang_index, data.q_index))],
            )
            print(
                f"load_routing from {len(gens)} generations + {len(juds)} judgments files: {t_load:.1f} s, "
                f"peak RSS +{load_peak:.0f} MiB over the {base_rss:.0f} MiB before it (writing peaked at {rss0:.0f} MiB)"
            )
            del loaded

    import scipy.stats  # noqa: F401  imports (seconds on a busy machine) are not part of the timing
    import statsmodels.stats.multitest  # noqa: F401

    reset_peak_rss()
    base_rss = peak_rss_mib()
    tracemalloc.start()
    t, c = time.perf_counter(), time.process_time()
    res = identify(data, settings, progress=False, workers=args.workers)
    t_full, c_full = time.perf_counter() - t, time.process_time() - c
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_mixed = len(res.tests.item_ids)
    n_tested = res.tests.columns.size
    print(
        f"identification: {t_full:.1f} s wall, {c_full:.1f} s CPU (all threads) for {n_mixed} mixed questions x {n_tested} tested experts "
        f"(blacklist {res.blacklist.height}); {res.experts.height} experts kept, "
        f"{int((res.summary['kept'] > 0).sum())} questions with experts"
    )
    print(
        f"peak memory: identify() allocates {peak / 2**20:.0f} MiB (tracemalloc) beyond its input; "
        f"peak RSS during identify {peak_rss_mib():.0f} MiB (input data included; +{peak_rss_mib() - base_rss:.0f} MiB)"
    )

    t_loop, c_loop, done = loop_reference_seconds(data, settings, args.loop_questions)
    est, est_c = t_loop / max(done, 1) * n_mixed, c_loop / max(done, 1) * n_mixed
    print(
        f"per-expert loop reference: {t_loop:.1f} s wall, {c_loop:.1f} s CPU for {done} question(s) x {n_tested} "
        f"experts -> extrapolated to {n_mixed} questions: {est:.0f} s wall, {est_c:.0f} s CPU"
    )
    print(f"ratio loop (extrapolated) / vectorised whole identification: {est / t_full:.0f}x wall, {est_c / c_full:.0f}x CPU")
    load = os.getloadavg()[0]
    print(
        f"target < 20 s wall: {'met' if t_full < 20 else 'NOT met'} "
        f"(1-min load average {load:.1f} on {os.cpu_count()} cores, shared with other jobs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
