"""Figures of the routing analysis (routing paper Figs. 2–5, A.9): matplotlib, Agg, PNG."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from moe_routing.multilingual.analysis import AnalysisResult, RoutingShape, experts_per_layer  # noqa: E402
from moe_routing.core.errors import ConfigError  # noqa: E402
from moe_routing.core.io import atomic_path  # noqa: E402


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_divergence(divergence: pl.DataFrame, path, accuracy: pl.DataFrame | None = None, english: str = "en") -> None:
    """Fig. 2: D_H-JS from English per layer, one line per language, coloured by accuracy when given."""
    fig, ax = plt.subplots(figsize=(7, 4))
    acc = dict(accuracy.select("lang", "accuracy").iter_rows()) if accuracy is not None else {}
    langs = sorted(divergence["lang"].unique().to_list())
    known = [acc[lang] for lang in langs if lang in acc]
    cmap = plt.get_cmap("viridis")
    lo, hi = (min(known), max(known)) if known else (0.0, 1.0)
    norm = matplotlib.colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
    for i, lang in enumerate(langs):
        sub = divergence.filter(pl.col("lang") == lang).sort("layer")
        color = cmap(norm(acc[lang])) if lang in acc else plt.get_cmap("tab10")(i % 10)
        ax.plot(sub["layer"], sub["value"], color=color, lw=1.5, label=lang)
        ax.annotate(
            lang, (sub["layer"][-1], sub["value"][-1]), fontsize=7, color=color, xytext=(3, 0), textcoords="offset points"
        )
    if known:
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=ax, label="accuracy")
    else:
        ax.legend(fontsize=7, ncol=2)
    ax.set_xlabel("layer")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(f"entropy-normalised JS divergence from {english}")
    ax.set_title("Routing divergence from English")
    _save(fig, path)


def plot_layer_metric(table: pl.DataFrame, path, ylabel: str, title: str, english: str | None = None) -> None:
    """Entropy (Fig. 3) or consistency (Fig. 4) per layer, one line per language; English in black."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, lang in enumerate(sorted(table["lang"].unique().to_list())):
        sub = table.filter(pl.col("lang") == lang).sort("layer")
        style = dict(color="black", lw=2.5) if lang == english else dict(color=plt.get_cmap("tab10")(i % 10), lw=1.2)
        ax.plot(sub["layer"], sub["value"], label=lang, **style)
    ax.set_xlabel("layer")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def plot_delta(
    delta: np.ndarray, moe_layers: list[int], path, comparison: str, tau: float | None = None, layer: int | None = None
) -> None:
    """Fig. A.9: Δ per expert for one comparison at one layer (default: the layer with the largest Δ)."""
    if layer is None:
        li = int(np.unravel_index(np.argmax(delta), delta.shape)[0])
    else:
        li = list(moe_layers).index(layer)
    values = delta[li]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(np.arange(values.size), values, color=np.where(values > (tau if tau is not None else np.inf), "tab:red", "tab:blue"))
    if tau is not None:
        ax.axhline(tau, color="tab:red", ls="--", lw=1, label=f"τ = {tau:g}")
        ax.legend(fontsize=8)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("expert")
    ax.set_ylabel("Δ activation frequency")
    ax.set_title(f"Δ {comparison}, layer {moe_layers[li]}")
    _save(fig, path)


def plot_expert_counts(
    counts: dict[str, np.ndarray], moe_layers: list[int], path, tau: float, target_layers: list[int] | None = None
) -> None:
    """Fig. 5: number of identified experts per layer for each kind (language, task...)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.asarray(moe_layers)
    width = 0.8 / max(len(counts), 1)
    for i, (name, c) in enumerate(counts.items()):
        ax.bar(x + (i - (len(counts) - 1) / 2) * width, c, width=width, label=name)
    if target_layers:
        for b in (min(target_layers) - 0.5, max(target_layers) + 0.5):
            ax.axvline(b, color="red", lw=1.5)
    ax.set_xlabel("layer")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("identified experts")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"Identified experts per layer (τ = {tau:g})")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_analysis(
    res: AnalysisResult,
    shape: RoutingShape,
    figs: Path,
    *,
    english: str,
    accuracy: pl.DataFrame | None,
    entropy: str,
    taus: list[float],
    tasks: list[str],
    delta_layer: int | None = None,
    target_layers: list[int] | None = None,
) -> None:
    """The analysis' figures (moe_routing.core.paths.ROUTING_FIGURES) in ``figs``: divergence, entropy, consistency, the Δ
    of the first language comparison and the experts per layer at the first τ."""
    plot_divergence(res.divergence, figs / "divergence.png", accuracy, english)
    label = "mean routing entropy (nats)" if entropy == "token" else "entropy of the sequence importance (nats)"
    plot_layer_metric(res.entropy, figs / "entropy.png", label, "Routing entropy per layer", english)
    plot_layer_metric(
        res.consistency, figs / "consistency.png", "token-pair top-k Jaccard", "Token routing consistency per layer", english
    )
    lang_cmp = [k for k in res.deltas if not any(k == f"{t}-vs-{english}" for t in tasks)]
    comparison = lang_cmp[0] if lang_cmp else next(iter(res.deltas), None)
    if comparison is not None:
        if delta_layer is not None and delta_layer not in shape.moe_layers:
            raise ConfigError(f"--delta-layer {delta_layer} is not an MoE layer ({shape.moe_layers})")
        plot_delta(res.deltas[comparison], shape.moe_layers, figs / "delta.png", comparison, tau=taus[0], layer=delta_layer)
    tau = float(taus[0])
    counts = {"language experts": experts_per_layer(res.language_experts[tau], shape.moe_layers)}
    for name, df in res.task_experts[tau].items():
        counts[f"{name} experts"] = experts_per_layer(df, shape.moe_layers)
    plot_expert_counts(counts, shape.moe_layers, figs / "experts_per_layer.png", tau, target_layers)
