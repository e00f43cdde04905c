"""Issue 22's file probes: malformed or mismatched inputs are refused by the stage in one line naming the file,
column or row (exit 2), never run to a wrong result with exit 0; a stage stopped by SIGTERM leaves no temporary file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synthetic_files import generations_table, items_table, judgments_table

from moe_routing.core import io
from moe_routing.core import provenance
from moe_routing.cli import main
from moe_routing.core.contracts import INTERVENTIONS
from moe_routing.core.errors import EXIT_BAD_INPUT, ContractError
from moe_routing.xici.tables import OUTCOME_ROWS


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def refused(capsys, argv: list[str], needle: str, out=None) -> str:
    assert main(["--log-level", "ERROR", *argv]) == EXIT_BAD_INPUT
    line = error_line(capsys)
    assert needle in line, line
    if out is not None:
        assert not os.path.exists(out)
    return line


def replaced(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values))


# --- exact column kinds and reserved ids --------------------------------------------------------------------------


def test_answers_as_a_plain_string_are_refused_by_the_judge(tmp_path, capsys):
    items = tmp_path / "en.parquet"
    io.write_parquet(replaced(items_table("en", 4), "answers", ["Paris"] * 4), items)
    gens = tmp_path / "gen.parquet"
    io.write_parquet(generations_table("en", 4), gens)
    out = tmp_path / "j.parquet"
    argv = ["judge", "--items", str(items), "--generations", str(gens), "--out", str(out), "--judge", "contains"]
    refused(capsys, argv, f"{items}: column 'answers' must hold list<string>, has string", out)


def test_a_star_item_id_is_refused(tmp_path):
    items = tmp_path / "en.parquet"
    io.write_parquet(replaced(items_table("en", 3), "item_id", ["q0", "*", "q2"]), items)
    with pytest.raises(ContractError, match=r"column 'item_id', row 1: '\*' is reserved \(every item\)"):
        io.read_table(items, "items")


@pytest.mark.parametrize(
    "column, values, needle",
    [
        ("expert", [3.7], "column 'expert' must hold int, has float"),
        ("layer", ["two"], "column 'layer' must hold int, has string"),
        ("strength", [float("nan")], "column 'strength', row 0 (item_id 'q0'): nan is not finite"),
    ],
)
def test_interventions_hold_integers_and_finite_strengths(tmp_path, capsys, column, values, needle):
    plan = {"item_id": ["q0"], "layer": [1], "expert": [3], "mode": ["soft"], "strength": [0.5]}
    plan[column] = values
    path = tmp_path / "plan.parquet"
    pq.write_table(pa.table(plan), path)
    with pytest.raises(ContractError) as info:
        io.read_table(path, "interventions")
    assert needle in str(info.value)
    items = tmp_path / "en.parquet"
    io.write_parquet(items_table("en", 2), items)
    out = tmp_path / "g.parquet"
    argv = [
        "generate",
        "--model",
        str(tmp_path / "no-model"),
        "--items",
        str(items),
        "--interventions",
        str(path),
        "--out",
        str(out),
    ]
    refused(capsys, argv, needle, out)


def test_judgments_whose_correct_is_a_string_are_refused_by_outcome_table(tmp_path, capsys):
    path = tmp_path / "en.parquet"
    io.write_parquet(replaced(judgments_table("en", 4), "correct", ["True", "False", "True", "True"]), path)
    out = tmp_path / "outcome.tsv"
    refused(
        capsys,
        ["outcome-table", "--judgments", f"d={path}", "--out", str(out)],
        "column 'correct' must hold bool, has string",
        out,
    )


# --- a subset is not damage ---------------------------------------------------------------------------------------


def test_a_subset_written_by_pyarrow_keeping_the_metadata_is_read(tmp_path):
    full = tmp_path / "full" / "en.parquet"
    io.write_parquet(items_table("en", 6), full, contract="items")
    table = pq.read_table(full)
    assert table.schema.metadata  # the footer check travels with the subset
    subset = tmp_path / "subset" / "en.parquet"
    subset.parent.mkdir()
    pq.write_table(table.slice(1, 3), subset)
    assert io.read_table(subset, "items")["item_id"].to_pylist() == ["q1", "q2", "q3"]
    pq.write_table(table.select(["item_id", "lang", "prompt", "system", "answers", "choices"]), subset)
    assert io.read_table(subset, "items").num_rows == 6
    # damage is still damage: changed metadata, or a column of another kind
    meta = dict(table.schema.metadata) | {b"model": b"other"}
    pq.write_table(table.replace_schema_metadata(meta), subset)
    with pytest.raises(ContractError, match="damaged Parquet file"):
        io.read_table(subset, "items")
    retyped = table.set_column(table.schema.get_field_index("prompt"), "prompt", pa.array([b"x"] * 6))
    pq.write_table(retyped.replace_schema_metadata(table.schema.metadata), subset)
    with pytest.raises(ContractError, match="damaged Parquet file"):
        io.read_table(subset, "items")


# --- provenance: judgments cover their generations; runs match --------------------------------------------------


def _judged(tmp_path, run: str, lang: str = "en", n: int = 6, seed: int = 0):
    """Generations of ``run`` and their judgments (made by the judge stage), under tmp_path/run."""
    root = tmp_path / run.replace("/", "_")
    items = root / "items" / f"{lang}.parquet"
    io.write_parquet(items_table(lang, n), items)
    gens = root / "generations" / f"{lang}.parquet"
    io.write_parquet(generations_table(lang, n, seed), gens, metadata=provenance.generations_metadata(run, [str(items)]))
    judg = root / "judgments" / f"{lang}.parquet"
    argv = ["judge", "--items", str(items), "--generations", str(gens), "--out", str(judg), "--judge", "contains"]
    assert main(["--log-level", "ERROR", *argv]) == 0
    return items, gens, judg


def test_judgments_record_the_generations_they_judge(tmp_path):
    _, gens, judg = _judged(tmp_path, "m/d")
    meta = pq.read_schema(judg).metadata
    assert meta[provenance.RUN] == b"m/d" and int(meta[provenance.GENERATIONS_ROWS]) == 6
    assert meta[provenance.GENERATIONS_SHA].decode() == provenance.sha256_file(gens)


def test_outcome_table_refuses_judgments_with_rows_missing(tmp_path, capsys):
    _, _, judg = _judged(tmp_path, "m/d")
    cut = tmp_path / "cut" / "en.parquet"
    cut.parent.mkdir()
    pq.write_table(pq.read_table(judg).slice(0, 4), cut)  # a subset keeping the metadata
    out = tmp_path / "outcome.tsv"
    refused(
        capsys,
        ["outcome-table", "--judgments", f"d={cut}", "--out", str(out)],
        f"{cut}: 4 judgment rows for the 6 rows of the generations it judges",
        out,
    )
    assert main(["outcome-table", "--judgments", f"d={judg}", "--out", str(out)]) == 0


def test_xici_refuses_generations_of_another_model(tmp_path, capsys):
    _, gens, judg = _judged(tmp_path, "m/d")
    _, other_gens, _ = _judged(tmp_path, "other/d", seed=1)
    out = tmp_path / "experts.parquet"
    argv = ["xici", "--generations", str(other_gens), "--judgments", str(judg), "--out", str(out)]
    refused(capsys, argv, f"{judg}: judgments of run 'm/d', but the generations are of run 'other/d'", out)
    argv = ["xici", "--generations", str(gens), str(other_gens), "--judgments", str(judg), "--out", str(out)]
    refused(capsys, argv, "generations of run 'other/d', but", out)


def test_xici_refuses_judgments_of_other_generations_of_the_same_run(tmp_path, capsys):
    _, _, judg = _judged(tmp_path, "m/d")
    regenerated = tmp_path / "regenerated" / "en.parquet"
    io.write_parquet(generations_table("en", 6, 5), regenerated, metadata={provenance.RUN: b"m/d"})
    out = tmp_path / "experts.parquet"
    argv = ["xici", "--generations", str(regenerated), "--judgments", str(judg), "--out", str(out)]
    refused(capsys, argv, "judges generations that are none of the given ones", out)


def test_the_judge_refuses_generations_whose_items_changed(tmp_path, capsys):
    items, gens, _ = _judged(tmp_path, "m/d")
    io.write_parquet(replaced(items_table("en", 6), "prompt", [f"Other {i}?" for i in range(6)]), items)
    out = tmp_path / "j.parquet"
    argv = ["judge", "--items", str(items), "--generations", str(gens), "--out", str(out), "--judge", "contains"]
    refused(capsys, argv, f"its input {items} changed since it was made", out)


# --- --only-intervened with an empty or foreign plan ---------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, meta, needle",
    [
        ([], {}, "the plan is empty and does not say that no question had experts"),
        ([("zz9", 1, 0)], {}, "the plan names none of these items"),
        ([("q0", 1, 0)], {provenance.RUN: b"other/d"}, "a plan of run 'other/d', not of 'm/d/ablation/xici-cap25'"),
    ],
    ids=["empty", "foreign items", "foreign run"],
)
def test_only_intervened_refuses_an_empty_or_foreign_plan(tmp_path, capsys, rows, meta, needle):
    items = tmp_path / "en.parquet"
    io.write_parquet(items_table("en", 3), items)
    plan = pa.table(
        {
            "item_id": [r[0] for r in rows],
            "layer": [r[1] for r in rows],
            "expert": [r[2] for r in rows],
            "mode": ["deactivate"] * len(rows),
            "strength": [None] * len(rows),
        },
        schema=INTERVENTIONS,
    )
    path = tmp_path / "plan.parquet"
    io.write_parquet(plan, path, metadata=meta)
    out = tmp_path / "g.parquet"
    argv = ["generate", "--model", str(tmp_path / "no-model"), "--items", str(items), "--interventions", str(path)]
    argv += ["--only-intervened", "--run", "m/d/ablation/xici-cap25", "--out", str(out)]
    refused(capsys, argv, needle, out)


# --- TSV: a table cut short ------------------------------------------------------------------------------------------


def _outcome_tsv(path):
    table = pl.DataFrame(
        {"row": [r[0] for r in OUTCOME_ROWS], "metric": [r[1] for r in OUTCOME_ROWS], "label": [r[2] for r in OUTCOME_ROWS]}
    ).with_columns(demo_facts=pl.lit("1"))
    io.write_tsv(table, path)


def test_summary_refuses_an_outcome_table_missing_its_last_line(tmp_path, capsys):
    tsv = tmp_path / "outcome_table.tsv"
    _outcome_tsv(tsv)
    out = tmp_path / "summary.md"
    assert main(["summary", "--model", "m", "--outcome-table", str(tsv), "--out", str(out)]) == 0
    out.unlink()
    lines = tsv.read_text().splitlines(keepends=True)
    tsv.write_text("".join(lines[:-1]))
    refused(
        capsys, ["summary", "--model", "m", "--outcome-table", str(tsv), "--out", str(out)], "no row with metric 'mixed'", out
    )
    tsv.write_text("".join(lines)[:-5])
    refused(capsys, ["summary", "--model", "m", "--outcome-table", str(tsv), "--out", str(out)], "last line is cut off", out)


# --- nothing left behind --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stage_stopped_by_a_signal_leaves_no_temporary_file(tmp_path, sig):
    """The CLI's SIGTERM handler unwinds like Ctrl-C, so io's atomic writer removes its temporary file."""
    script = f"""
import os, signal, sys
from moe_routing import cli
from moe_routing.core import io
signal.signal(signal.SIGTERM, cli._terminated)
with io.atomic_path({str(tmp_path / "out.parquet")!r}) as tmp:
    tmp.write_bytes(b"half")
    os.kill(os.getpid(), {int(sig)})
    signal.pause()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == [], proc.stderr
