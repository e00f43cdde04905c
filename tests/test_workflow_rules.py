"""The rules' text: what a job's identity holds, and declarations that sit beside their rule."""

from __future__ import annotations

import re

import pytest

from moe_routing.commands import StageCommand
from workflow_helpers import REPO

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def _blocks(text: str) -> list[str]:
    """Top-level blocks of a rule file: a rule, or an `if` with everything under it."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            blocks.append([])
        blocks[-1].append(line)
    return ["\n".join(b) for b in blocks]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_localrules_sit_under_the_condition_of_their_rule(path):
    """A `localrules:` naming a rule defined under another condition would miss it (or name a rule that is not there)."""
    blocks = _blocks(path.read_text())
    defined = [set(re.findall(r"^\s*(?:rule|use rule \w+ as) (\w+)", b, re.M)) for b in blocks]
    for i, block in enumerate(blocks):
        for names in re.findall(r"^(\s*)localrules:\n((?:\1\s+\w+,?\n?)+)", block, re.M):
            for name in re.findall(r"\w+", names[1]):
                # a top-level localrules follows its rule's block; an indented one shares its rule's `if`
                here = defined[i] | (defined[i - 1] if not names[0] else set())
                assert name in here, f"{path.name}: localrules {name} is not beside rule {name}"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_the_interpreter_is_never_a_param(path):
    """Snakemake reruns a job whose recorded params changed: the stage command is the workflow global {MOE}."""
    text = path.read_text()
    assert "JOBS.moe(" not in text and "params.moe" not in text
    for shell in re.findall(r'shell:\n\s+"([^"]*)', text):
        assert shell.lstrip("(").startswith("{MOE"), shell


def test_the_stage_command_is_chosen_by_format_spec():
    moe = StageCommand("/a/python", "/b/python")
    assert "{MOE} x".format(MOE=moe) == "/a/python -m moe_routing x"
    assert "{MOE:{b}} x".format(MOE=moe, b="vllm") == "/b/python -m moe_routing x"
    assert "{MOE:hf}".format(MOE=moe) == str(moe) == "/a/python -m moe_routing"
    with pytest.raises(ValueError, match="sglang"):
        format(moe, "sglang")
