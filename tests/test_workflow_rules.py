"""The rules' text: what a job's identity holds, and declarations that sit beside their rule."""

from __future__ import annotations

import re

import pytest

from moe_routing.pipeline.commands import StageCommand
from workflow_helpers import REPO, job_counts, snakemake, write_config

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


def test_the_stage_command_is_no_recorded_param(tmp_path):
    """Snakemake records (and compares) only params of builtin types: the stage command formats as its words in a
    shell command but is left out of the job's record, so the interpreter is no part of a job's identity."""
    from snakemake.persistence import UNREPRESENTABLE, PersistenceBase

    moe = StageCommand("/envs/main/bin/python")
    assert f"{moe} judge" == "/envs/main/bin/python -m moe_routing judge" and not isinstance(moe, str)
    assert PersistenceBase._serialize_param_builtin(None, moe) is UNREPRESENTABLE
    assert PersistenceBase._serialize_param_builtin(None, "--alpha 0.05") == "'--alpha 0.05'"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_stage_command_comes_from_jobs_moe(path):
    text = path.read_text()
    for shell in re.findall(r'shell:\n\s+"([^"]*)', text):
        assert shell.lstrip("(").startswith("{params.moe}"), shell
    assert text.count("moe=JOBS.moe(") + text.count("moe=lambda wc: JOBS.moe(") >= len(re.findall(r"^\s*rule \w+:", text, re.M))


def test_folders_at_absolute_paths_log_without_a_double_slash(tmp_path):
    """A stand-in and a mirror at absolute paths log below logs/<rule>/ like any other, never logs/<rule>//..."""
    config = {
        "models": {"qwen3": {"path": str(tmp_path / "stand-ins" / "qwen3"), "stand_in": "Qwen/Qwen3-30B-A3B"}},
        "datasets": {
            "mgsm": {
                "source": "mgsm",
                "path": str(tmp_path / "mirrors" / "mgsm"),
                "mirror": True,
                "languages": ["en", "de", "fr"],
            },
            "local": {"source": "mgsm", "path": "mirrors/local", "mirror": True, "languages": ["en", "de", "fr"]},
        },
        "xici": {"models": ["qwen3"], "datasets": ["mgsm", "local"]},
    }
    proc = snakemake("-n", "--configfile", str(write_config(tmp_path / "absolute.yaml", config)))
    out = proc.stdout + proc.stderr
    assert "//" not in out, [line for line in out.splitlines() if "//" in line][:5]
    logs = {line.split("log:", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("log: logs/")}
    under = str(tmp_path).lstrip("/")
    assert f"logs/stand_in/{under}/stand-ins/qwen3/config.log" in logs
    assert f"logs/mirror/{under}/mirrors/mgsm.log" in logs and "logs/mirror/mirrors/local.log" in logs
    assert job_counts(out).get("stand_in_absolute") == 1 and job_counts(out).get("mirror") == 1
