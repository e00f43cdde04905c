"""The XICI figures' tables: cap-sweep pooling equals the hand sums; figures are written."""

from __future__ import annotations

import polars as pl
import pytest

from moe_routing.xici import figures as figures_xici
from moe_routing.core.io import write_parquet


def _metrics(dataset, condition, cap, broken, orig_correct, gained, orig_wrong, questions=2, experts=5):
    return pl.DataFrame(
        {
            "dataset": [dataset],
            "condition": [condition],
            "cap": [cap],
            "questions": [questions],
            "experts_total": [experts],
            "orig_correct": [orig_correct],
            "orig_wrong": [orig_wrong],
            "broken": [broken],
            "gained": [gained],
            "now_wrong_everywhere": [0],
        }
    )


def test_cap_sweep_pools_counts_over_datasets(tmp_path):
    files = []
    for i, frame in enumerate(
        [
            _metrics("a", "xici", 5, broken=3, orig_correct=10, gained=1, orig_wrong=4),
            _metrics("b", "xici", 5, broken=1, orig_correct=6, gained=0, orig_wrong=0),
            _metrics("a", "random", 5, broken=0, orig_correct=10, gained=0, orig_wrong=4),
            _metrics("b", "random", 5, broken=0, orig_correct=0, gained=0, orig_wrong=0, questions=0, experts=0),
        ]
    ):
        files.append(tmp_path / f"m{i}.parquet")
        write_parquet(frame, files[-1])
    table = figures_xici.cap_sweep(files, tmp_path / "sweep.tsv", tmp_path / "sweep.png")
    xici = table.filter(pl.col("condition") == "xici").row(0, named=True)
    assert xici["asr"] == pytest.approx(4 / 16) and xici["sgr"] == pytest.approx(1 / 4)
    assert xici["rd"] == pytest.approx(4 / 16 - 1 / 4)
    assert xici["mean_experts_per_question"] == pytest.approx(10 / 4)
    rand = table.filter(pl.col("condition") == "random").row(0, named=True)
    assert rand["asr"] == 0.0 and rand["questions"] == 2
    assert (tmp_path / "sweep.png").stat().st_size > 0 and (tmp_path / "sweep.tsv").exists()
