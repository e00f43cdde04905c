"""Figures of the XICI study (matplotlib, Agg): experts per layer (Appendix H), outcomes per
dataset, and ablation metrics against the cap (Appendix F)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import polars as pl  # noqa: E402

from moe_routing.core.io import atomic_path, read_frame, read_tsv  # noqa: E402


def _save(fig, out: str | os.PathLike) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)


def experts_per_layer(
    experts_files: dict[str, str | os.PathLike], out: str | os.PathLike, cap: int | None = None
) -> pl.DataFrame:
    """Count identified experts (question x expert pairs, within the cap) per model layer, one bar
    group per dataset (``experts_files``: dataset name -> its experts file)."""
    frames = []
    for name, path in experts_files.items():
        df = read_frame(path, contract="experts")
        if cap is not None:
            df = df.filter(pl.col("rank") <= cap)
        frames.append(df.group_by("layer").len().with_columns(pl.lit(name).alias("dataset")))
    counts = pl.concat(frames) if frames else pl.DataFrame(schema={"layer": pl.Int64, "len": pl.UInt32, "dataset": pl.String})
    datasets = list(dict.fromkeys(counts["dataset"].to_list())) if counts.height else []
    layers = sorted(set(counts["layer"].to_list())) if counts.height else []
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(layers) + 3), 3.5))
    width = 0.8 / max(1, len(datasets))
    for i, ds in enumerate(datasets):
        sub = dict(counts.filter(pl.col("dataset") == ds).select("layer", "len").iter_rows())
        ax.bar([l + (i - (len(datasets) - 1) / 2) * width for l in layers], [sub.get(l, 0) for l in layers], width, label=ds)
    ax.set_xlabel("layer (model index)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("identified experts (summed over questions)")
    ax.set_title("Location of identified experts")
    if datasets:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no experts identified", ha="center", va="center", transform=ax.transAxes)
    _save(fig, out)
    return counts.rename({"len": "experts"})


def outcomes(table_tsv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Stacked bars of all correct / mixed / all incorrect questions per dataset (from the Table 1 TSV)."""
    table = read_tsv(table_tsv, infer_schema=False)
    datasets = [c for c in table.columns if c not in ("row", "metric", "label")]
    value = {m: table.filter(pl.col("metric") == m) for m in ("all_correct", "mixed", "all_incorrect")}
    fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(datasets) + 2), 3.5))
    bottom = [0.0] * len(datasets)
    colors = {"all_correct": "#4c9a2a", "mixed": "#e0a526", "all_incorrect": "#b8372e"}
    for metric, rows in value.items():
        heights = [float(rows[d][0]) if rows.height and rows[d][0] not in (None, "") else 0.0 for d in datasets]
        ax.bar(datasets, heights, bottom=bottom, label=metric.replace("_", " "), color=colors[metric])
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_ylabel("questions")
    ax.set_title("Question outcomes across languages")
    ax.legend(fontsize=8)
    _save(fig, out)


def cap_sweep_table(metrics_files: Sequence[str | os.PathLike]) -> pl.DataFrame:
    """Pool the per-dataset ablation metrics of every (condition, cap) over datasets, as Table 2's total does."""
    from moe_routing.xici.tables import SUMMED_METRICS, rates

    rows = pl.concat([read_frame(p) for p in metrics_files], how="diagonal_relaxed")
    pooled = rows.group_by("condition", "cap").agg(pl.col(c).sum() for c in SUMMED_METRICS).sort("condition", "cap")
    out = []
    for r in pooled.iter_rows(named=True):
        asr, sgr, rd = rates(r)
        mean = r["experts_total"] / r["questions"] if r["questions"] else None
        out.append({**r, "mean_experts_per_question": mean, "asr": asr, "sgr": sgr, "rd": rd})
    schema = {**pooled.schema, "mean_experts_per_question": pl.Float64, "asr": pl.Float64, "sgr": pl.Float64, "rd": pl.Float64}
    return pl.DataFrame(out, schema=schema)


def cap_sweep(metrics_files: Sequence[str | os.PathLike], table_out: str | os.PathLike, out: str | os.PathLike) -> pl.DataFrame:
    """Appendix F: ASR, SGR and their difference against the cap, one line per condition."""
    from moe_routing.core.io import write_tsv

    table = cap_sweep_table(metrics_files)
    write_tsv(table, table_out)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), sharex=True)
    for ax, metric, title in zip(axes, ("asr", "sgr", "rd"), ("Ablation success rate", "Spurious gain rate", "Rate difference")):
        for condition in table["condition"].unique(maintain_order=True).to_list():
            sub = table.filter(pl.col("condition") == condition).sort("cap")
            ax.plot(sub["cap"].to_list(), sub[metric].to_list(), marker="o", label=condition)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("max experts per question (cap)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("rate over (question, language) pairs")
    axes[0].legend(fontsize=8)
    _save(fig, out)
    return table
