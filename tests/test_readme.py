"""The README quotes what the code produces: the demo's summary.md verbatim, and commands that exist."""

from __future__ import annotations

import os
import re

import pytest

from workflow_helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
START, END = "<!-- demo summary: results/demo/summary.md -->", "<!-- end of the demo summary -->"


def quoted_summary() -> str:
    assert README.count(START) == 1 and README.count(END) == 1, "the README must hold one quoted demo summary"
    return README.split(START, 1)[1].split(END, 1)[0].strip()


def test_readme_quotes_the_demo_summary():
    """After `bash scripts/demo.sh` (or any run of the default config), the README must quote its
    results/demo/summary.md: numbers in the README are those of a run of the current code. CI runs
    the demo first (scripts/test.sh); the demo's numbers do not depend on the machine, so there the
    README must match."""
    summary = REPO / "results" / "demo" / "summary.md"
    if not summary.exists() and os.environ.get("MOE_ROUTING_DEMO_RAN") == "1":
        pytest.fail("CI ran the demo (scripts/test.sh) but results/demo/summary.md is missing")
    if not summary.exists():
        pytest.skip("no results/demo/summary.md: run the demo (bash scripts/demo.sh) to check the README's numbers")
    body = summary.read_text(encoding="utf-8").split("\n", 2)[2].strip()  # without the "# demo" title
    assert quoted_summary() == body, "the README's demo numbers differ from results/demo/summary.md: paste it in"


def test_readme_summary_block_is_a_summary_table():
    rows = [line for line in quoted_summary().splitlines() if line.startswith("| ")]
    assert any(r.startswith("| model |") for r in rows) and any("ablation (cap" in r for r in rows)


def test_readme_names_files_that_exist():
    for path in set(re.findall(r"(?:config|scripts|benchmarks|profiles)/[\w./-]+\.(?:yaml|sh|py)", README)):
        assert (REPO / path).exists(), path
