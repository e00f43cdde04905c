"""One registry per extension point: every other list of sources or judges is derived from it or tied to it here,
and the repository's own files are found through moe_routing.core.paths."""

from __future__ import annotations

import re

import pytest
import yaml

from moe_routing.core import paths
from moe_routing.pipeline.config import SCHEMA
from moe_routing.rehearsal.mirrors import MIRRORS
from moe_routing.data.sources import SOURCES, get
from moe_routing.judging.judge import ANSWER_JUDGES, JUDGES
from workflow_helpers import REPO

DEFS = yaml.safe_load(SCHEMA.read_text())["$defs"]
# the sources the workflow builds itself (rule demo_world) or reads as they are (items-contract files)
BUILT_IN_SOURCES = {"demo", "items"}


def test_the_schema_offers_exactly_the_registered_sources():
    assert set(DEFS["dataset"]["properties"]["source"]["enum"]) == BUILT_IN_SOURCES | set(SOURCES)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_module_names_itself(source):
    assert get(source).NAME == source


def test_mirrors_exist_only_for_registered_sources():
    assert set(MIRRORS) <= set(SOURCES)


def test_the_schema_offers_exactly_the_registered_judges():
    # `none`: a dataset that is routed or generated but not judged
    assert set(DEFS["dataset"]["properties"]["judge"]["enum"]) == set(JUDGES) | {"none"}
    assert set(ANSWER_JUDGES) < set(JUDGES)


def test_repository_files_are_found_through_paths():
    assert paths.repository_root() == REPO.resolve()
    for name in ("SCHEMA", "JUDGE_PROMPT", "LANG_CODES", "GLOBAL_MMLU_IDS"):
        assert paths.repository_file(getattr(paths, name)).is_file(), name
    assert SCHEMA == paths.repository_file(paths.SCHEMA)


def test_no_module_counts_parents_of_its_own_file():
    package = REPO / "workflow" / "moe_routing"
    counting = re.compile(r"__file__\)?(\.resolve\(\))?\.parents?\b|\.parent\.parent")
    offenders = [
        str(f.relative_to(package))
        for f in package.rglob("*.py")
        if f.name != "paths.py" and counting.search(f.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


@pytest.mark.parametrize(
    "key, names", [("source", BUILT_IN_SOURCES | set(SOURCES)), ("judge", set(JUDGES) | {"none"})], ids=["source", "judge"]
)
def test_the_config_reference_lists_every_registered_name(key, names):
    row = next(line for line in (REPO / "config" / "README.md").read_text().splitlines() if line.startswith(f"| `{key}` |"))
    documented = set(re.findall(r"`(\w+)`", row.split("|")[3]))
    assert names <= documented, sorted(names - documented)
