"""The code is formatted by its formatters (settings in pyproject.toml), and the workflow is lint-clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_helpers import REPO, snakemake


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists() and shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return str(path) if path.exists() else name


def test_python_is_ruff_formatted():
    proc = subprocess.run([_tool("ruff"), "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefiles_are_snakefmt_formatted():
    proc = subprocess.run([_tool("snakefmt"), "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_is_clean_on_every_config():
    for config in ("config/config.yaml", ".test/config.yaml", "config/xici-paper.yaml", "config/routing-paper.yaml"):
        proc = snakemake("--lint", "--configfile", config)
        assert "Congratulations" in proc.stdout + proc.stderr, config


def test_python_is_lint_clean():
    proc = subprocess.run([_tool("ruff"), "check", "--output-format", "concise", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
