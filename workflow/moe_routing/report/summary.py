"""One model's results on one page: ``results/{model}/summary.md``, built from the tables of a run.

The README's demo numbers are the demo's summary, quoted verbatim (a test checks it), so they are
always those of a run of the current code. Every section is optional: a model of the routing study
only has the routing lines. Rates are printed as percentages with one decimal, accuracies with two
decimals, so the same numbers read the same everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl


def _pct(value) -> str:
    return "–" if value is None or value == "" else f"{100 * float(value):.1f} %"


def _acc(value) -> str:
    return "–" if value is None or value == "" else f"{float(value):.2f}"


def _cell(table: pl.DataFrame, metric: str, column: str) -> str | None:
    rows = table.filter(pl.col("metric") == metric)
    return rows[column][0] if rows.height and column in table.columns else None


def model_line(model_dir: str | Path) -> str:
    """'Qwen3-MoE, hidden 128, 6 layers × 16 experts, top-2, 5.1 M parameters' from a checkpoint folder."""
    from moe_routing.capture.adapters import get_adapter
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir))
    spec = get_adapter(config).spec_from_config(config)
    params = _parameter_count(Path(model_dir))
    size = f", {params / 1e6:.1f} M parameters" if params else ""
    return (
        f"{config.model_type}, hidden {config.hidden_size}, {config.num_hidden_layers} layers × "
        f"{spec.num_experts} experts, top-{spec.top_k}{size}"
    )


def _parameter_count(model_dir: Path) -> int:
    """Parameters in the checkpoint's safetensors files (their headers only; no weights loaded)."""
    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
    return total


def accuracy_line(judgments: pl.DataFrame) -> str:
    """'en 0.86, de 0.54, ...': per-language accuracy, best first."""
    acc = (
        judgments.group_by("lang")
        .agg(pl.col("correct").cast(pl.Float64).mean().alias("a"))
        .sort(["a", "lang"], descending=[True, False])
    )
    return ", ".join(f"{lang} {_acc(a)}" for lang, a in acc.iter_rows())


def outcome_lines(table: pl.DataFrame) -> list[tuple[str, str]]:
    out = []
    for dataset in [c for c in table.columns if c not in ("row", "metric", "label")]:
        q, c, w, m = (_cell(table, k, dataset) for k in ("questions", "all_correct", "all_incorrect", "mixed"))
        out.append(
            (
                f"Table 1 ({dataset})",
                f"{q} questions: {c} all correct, {w} all incorrect, {m} mixed; "
                f"English accuracy {_acc(_cell(table, 'english_accuracy', dataset))}",
            )
        )
    return out


def ablation_lines(table: pl.DataFrame, cap: int | None) -> list[tuple[str, str]]:
    """Identification and Table 2's rates (the total column: pairs pooled over datasets)."""
    with_experts = _cell(table, "questions_with_experts", "total")
    mean = _cell(table, "mean_experts_per_question", "total")
    datasets = [c for c in table.columns if c not in ("row", "metric", "label", "total")]
    blacklisted = sum(int(_cell(table, "blacklisted_experts", d) or 0) for d in datasets)
    identification = f"{with_experts} questions with experts"
    if mean:
        identification += f", {float(mean):.2f} experts per question on average"
    lines = [("identification", f"{identification}, {blacklisted} blacklisted generalist(s)")]
    parts = []
    for condition, name in (("xici", "XICI"), ("shuffled", "shuffled questions"), ("random", "random same-size sets")):
        asr = _cell(table, f"{condition}_asr", "total")
        if asr is not None:
            parts.append(f"{name} ASR {_pct(asr)}, SGR {_pct(_cell(table, f'{condition}_sgr', 'total'))}")
    if parts:
        lines.append((f"ablation (cap {cap})" if cap else "ablation", "; ".join(parts)))
    return lines


def cap_sweep_line(table: pl.DataFrame) -> tuple[str, str]:
    xici = table.filter(pl.col("condition") == "xici").sort("cap")
    points = ", ".join(f"{cap}: {_pct(asr)}" for cap, asr in xici.select("cap", "asr").iter_rows())
    return ("cap sweep (XICI ASR by cap)", points)


def steering_lines(table: pl.DataFrame, english: str) -> list[tuple[str, str]]:
    out = []
    for benchmark in table["benchmark"].unique(maintain_order=True).to_list():
        row = table.filter((pl.col("benchmark") == benchmark) & (pl.col("lang") == f"non-{english} mean"))
        if row.height:
            out.append(
                (
                    f"steering ({benchmark})",
                    f"accuracy {_acc(row['base'][0])} → {_acc(row['steered'][0])} averaged over the non-English languages",
                )
            )
    return out


def divergence_line(table: pl.DataFrame) -> tuple[str, str]:
    mean = table.group_by("layer").agg(pl.col("value").mean()).sort("layer")
    return (
        "divergence from English by layer (mean over languages)",
        ", ".join(f"{layer}: {value:.3f}" for layer, value in mean.iter_rows()),
    )


def render(model: str, lines: list[tuple[str, str]]) -> str:
    body = "\n".join(f"| {k} | {v} |" for k, v in lines)
    return f"# {model}\n\n| | |\n|---|---|\n{body}\n"
