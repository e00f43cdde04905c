"""Figures of the XICI study (matplotlib, Agg): experts per layer (Appendix H), outcomes per
dataset, and ablation metrics against the cap (Appendix F)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from moe_routing.io import atomic_path, read_frame  # noqa: E402


def _save(fig, out: str | os.PathLike) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)


def experts_per_layer(experts_files: Sequence[str | os.PathLike], out: str | os.PathLike, cap: int | None = None) -> pl.DataFrame:
    """Count identified experts (question x expert pairs, within the cap) per model layer, one bar group per dataset."""
    frames = []
    for path in experts_files:
        df = read_frame(path, contract="experts")
        if cap is not None:
            df = df.filter(pl.col("rank") <= cap)
        frames.append(df.group_by("layer").len().with_columns(pl.lit(Path(path).parent.name).alias("dataset")))
    counts = pl.concat(frames) if frames else pl.DataFrame(schema={"layer": pl.Int64, "len": pl.UInt32, "dataset": pl.String})
    datasets = list(dict.fromkeys(counts["dataset"].to_list())) if counts.height else []
    layers = sorted(set(counts["layer"].to_list())) if counts.height else []
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(layers) + 3), 3.5))
    width = 0.8 / max(1, len(datasets))
    for i, ds in enumerate(datasets):
        sub = dict(counts.filter(pl.col("dataset") == ds).select("layer", "len").iter_rows())
        ax.bar([l + (i - (len(datasets) - 1) / 2) * width for l in layers], [sub.get(l, 0) for l in layers], width, label=ds)
    ax.set_xlabel("layer (model index)")
    ax.set_ylabel("identified experts (summed over questions)")
    ax.set_title("Location of identified experts")
    if datasets:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no experts identified", ha="center", va="center", transform=ax.transAxes)
    _save(fig, out)
    return counts.rename({"len": "experts"})
