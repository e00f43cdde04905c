"""Which run a file belongs to and what it was made from, in its schema metadata, so that a stage joining
files refuses a mismatch instead of computing a quiet wrong answer.

- generations record their run (``{model}/{dataset}[/{variant}]``, generate --run) and the SHA-256 of each
  input (items files, interventions): Snakemake compares modification times only, so a downstream stage or a
  person can tell that an input changed under an older mtime;
- judgments record the run, row count and SHA-256 of the generations they judge: a stage refuses judgments
  with rows missing, or judgments of other generations (another model's, another dataset's);
- ablation plans record the base run their experts come from and how many questions had experts: a rerun
  refuses a plan of another run, and an empty plan is an error unless its experts file named no question.

Files written before these keys existed (or by hand) lack them; the checks then have nothing to compare.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from moe_routing.core.errors import ContractError

RUN = b"moe_routing:run"
INPUTS = b"moe_routing:inputs_sha256"
GENERATIONS_ROWS = b"moe_routing:generations_rows"
GENERATIONS_SHA = b"moe_routing:generations_sha256"
EXPERTS_QUESTIONS = b"moe_routing:experts_questions"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def generations_metadata(run: str | None, inputs: list[str]) -> dict[bytes, bytes]:
    meta = {INPUTS: json.dumps({str(p): sha256_file(p) for p in inputs}, sort_keys=True).encode()}
    if run:
        meta[RUN] = run.encode()
    return meta


def judgments_metadata(generations: str | os.PathLike) -> dict[bytes, bytes]:
    from moe_routing.core.io import count_rows, read_schema

    meta = read_schema(generations).metadata or {}
    out = {GENERATIONS_ROWS: str(count_rows(generations)).encode(), GENERATIONS_SHA: sha256_file(generations).encode()}
    if RUN in meta:
        out[RUN] = meta[RUN]
    return out


def run_of(meta: dict | None) -> str | None:
    value = (meta or {}).get(RUN)
    return value.decode() if value else None


def check_covers(path, num_rows: int, meta: dict | None) -> None:
    """Judgments hold a row for each row of the generations they judge."""
    want = (meta or {}).get(GENERATIONS_ROWS)
    if want is not None and int(want) != num_rows:
        raise ContractError(
            f"{path}: {num_rows} judgment rows for the {int(want)} rows of the generations it judges; judge them again"
        )


def check_inputs(path, meta: dict | None) -> None:
    """Each input a file records still has the checksum it had when the file was made."""
    recorded = json.loads((meta or {}).get(INPUTS, b"{}"))
    for source, digest in recorded.items():
        if Path(source).is_file() and sha256_file(source) != digest:
            raise ContractError(f"{path}: its input {source} changed since it was made (checksum differs); regenerate it")


def check_joined(generations: list[str], judgments: list[str]) -> None:
    """Generations of one run, and judgments of exactly these generations (run, checksum and every row)."""
    from moe_routing.core.io import count_rows, read_schema

    runs = {g: run_of(read_schema(g).metadata) for g in generations}
    known = {r for r in runs.values() if r}
    if len(known) > 1:
        first = generations[0]
        other = next(g for g, r in runs.items() if r and r != runs[first])
        raise ContractError(f"{other}: generations of run {runs[other]!r}, but {first} is of run {runs[first]!r}")
    digests = None
    for j in judgments:
        meta = read_schema(j).metadata or {}
        check_covers(j, count_rows(j), meta)
        run = run_of(meta)
        if run and known and run not in known:
            raise ContractError(f"{j}: judgments of run {run!r}, but the generations are of run {sorted(known)[0]!r}")
        if GENERATIONS_SHA in meta:
            digests = digests if digests is not None else {sha256_file(g) for g in generations}
            if meta[GENERATIONS_SHA].decode() not in digests:
                raise ContractError(
                    f"{j}: judges generations that are none of the given ones (checksum differs); judge them again"
                )


def check_plan_run(plan_path, plan_meta: dict | None, run: str | None) -> None:
    """An ablation plan is used for reruns of the base run its experts come from."""
    planned = run_of(plan_meta)
    if planned and run and not (run == planned or run.startswith(planned + "/")):
        raise ContractError(f"{plan_path}: a plan of run {planned!r}, not of {run!r}")


def check_plan_selects(plan_path, plan_meta: dict | None, plan_rows: int, selected: int, run: str | None) -> None:
    """--only-intervened: the plan names some of the items; or it is empty because its experts file had no
    question; or it is this run's own plan (recorded) and these languages hold none of its questions."""
    if selected:
        return
    if plan_rows == 0:
        if (plan_meta or {}).get(EXPERTS_QUESTIONS) == b"0":
            return  # no question had experts: an empty rerun is the right answer
        raise ContractError(
            f"{plan_path}: --only-intervened, but the plan is empty and does not say that no question had experts "
            "(ablation-plan records it); is it the plan of this run?"
        )
    if run and run_of(plan_meta) and (run == run_of(plan_meta) or run.startswith(run_of(plan_meta) + "/")):
        return
    raise ContractError(f"{plan_path}: --only-intervened, but the plan names none of these items; is it the plan of this run?")


def read_judgments(paths: list[str], columns=("item_id", "lang", "correct")):
    """Judgments files as one polars frame (``columns``), each checked to cover its generations row for row;
    with the set of runs they record."""
    import polars as pl

    from moe_routing.core.io import read_table

    frames, runs = [], set()
    for p in paths:
        table = read_table(p, contract="judgments")
        check_covers(p, table.num_rows, table.schema.metadata)
        if run_of(table.schema.metadata):
            runs.add(run_of(table.schema.metadata))
        frames.append(pl.from_arrow(table).select(*columns))
    if len(runs) > 1:
        raise ContractError(f"{paths[0]} ...: judgments of several runs {sorted(runs)} given as one")
    return pl.concat(frames), runs
