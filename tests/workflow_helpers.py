"""Running Snakemake from tests: dry-runs parsed into job counts, and real runs in a copy of the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def snakemake(
    *args: str, cwd: Path = REPO, timeout: int = 600, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry-run as {rule: count}."""
    counts: dict[str, int] = {}
    block = output.split("Job stats:", 1)
    if len(block) < 2:
        return counts
    for line in block[1].splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run(*args: str, cwd: Path = REPO) -> dict[str, int]:
    """Job counts of the whole DAG, whatever outputs exist (CI runs the demo in REPO before the tests)."""
    proc = snakemake("-n", "--forceall", "--quiet", "rules", *args, cwd=cwd)
    return job_counts(proc.stdout + proc.stderr)


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def load_config(name: str = "config.yaml") -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def copy_workflow(dest: Path) -> Path:
    """A copy of what the workflow needs to run (no results, no venvs, no built data or models), for runs that write files."""
    built = {"models", "data", "demo", "mirrors"}  # what the workflow builds under resources/

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__"}
        return skipped | (built & set(names) if Path(folder).name == "resources" else set())

    for item in ("Snakefile", "workflow", "config", ".test", "resources", "envs", "profiles"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / item)
    return dest
