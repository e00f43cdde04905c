"""Stage `summary`: one model's results on one page (results/{model}/summary.md)."""

from __future__ import annotations

import argparse
import logging

from moe_routing.stages._args import add_named, group_named

HELP = "summary.md of one model from its tables (the README quotes the demo's)"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model name (the page's title)")
    p.add_argument("--model-dir", help="local checkpoint folder: family, shape and parameter count")
    add_named(p, "--judgments", "judgments of a dataset whose per-language accuracy is listed", required=False)
    p.add_argument("--outcome-table", help="outcome_table.tsv (Table 1)")
    p.add_argument("--ablation-table", help="ablation_table.tsv (Table 2)")
    p.add_argument("--cap", type=int, help="the cap of the ablation table")
    p.add_argument("--cap-sweep", help="cap_sweep.tsv")
    p.add_argument("--steering-table", help="steering_table.tsv")
    p.add_argument("--divergence", help="routing divergence.tsv")
    p.add_argument("--english", default="en", help="language code of English (default en)")
    p.add_argument("--truth-scores", help="truth_scores.tsv: the demo scored against its planted truth (demo_score)")
    p.add_argument("--out", required=True, metavar="summary.md")


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from moe_routing.report import summary as sm
    from moe_routing.core.io import atomic_path, read_frame, read_tsv
    from moe_routing.xici.tables import ABLATION_ROWS, OUTCOME_ROWS

    # every metric row of the paper tables: a table cut short would make a line of "None"
    outcome_rows = {"metric": [row[1] for row in OUTCOME_ROWS]}
    ablation_rows = {"metric": [row[1] for row in ABLATION_ROWS]}

    lines: list[tuple[str, str]] = []
    if args.model_dir:
        lines.append(("model", sm.model_line(args.model_dir)))
    for name, files in group_named(args.judgments).items():
        judgments = pl.concat([read_frame(p, "judgments") for p in files])
        lines.append((f"accuracy by language ({name})", sm.accuracy_line(judgments)))
    if args.outcome_table:
        lines += sm.outcome_lines(read_tsv(args.outcome_table, rows=outcome_rows, infer_schema=False))
    if args.ablation_table:
        lines += sm.ablation_lines(read_tsv(args.ablation_table, rows=ablation_rows, infer_schema=False), args.cap)
    if args.cap_sweep:
        lines.append(sm.cap_sweep_line(read_tsv(args.cap_sweep)))
    if args.divergence:
        lines.append(sm.divergence_line(read_tsv(args.divergence)))
    if args.steering_table:
        lines += sm.steering_lines(read_tsv(args.steering_table), args.english)
    if args.truth_scores:
        from moe_routing.demo.score import SCORE_SCHEMA, summary_lines

        lines += summary_lines(read_tsv(args.truth_scores, schema=SCORE_SCHEMA), args.cap)
    with atomic_path(args.out) as tmp:
        tmp.write_text(sm.render(args.model, lines), encoding="utf-8")
    log.info("summary of %s (%d lines) -> %s", args.model, len(lines), args.out)
    return 0
