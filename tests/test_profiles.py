"""The Snakemake profiles: the slurm profile submits generation jobs with a GPU request.

SLURM is replaced by stub commands on PATH that log their arguments; sbatch hands out job
ids and sacct reports every job FAILED, so Snakemake retries and then gives up quickly. The
test reads the logged sbatch calls. The Snakefile is a minimal one written here, with the
rule names the real workflow uses, so this does not depend on the workflow's rules.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ACCOUNT = "REPLACE_WITH_ACCOUNT"

STUBS = {
    # --parsable: print only the job id; ids count up so retries are distinguishable
    "sbatch": """#!/bin/sh
echo "$@" >> "$STUB_LOG/sbatch.log"
n=$(wc -l < "$STUB_LOG/sbatch.log")
echo $((1000 + n))
""",
    # sacct -X --parsable2 --noheader --format=JobIdRaw,State ...: every submitted job failed
    "sacct": """#!/bin/sh
echo "sacct $@" >> "$STUB_LOG/other.log"
case "$*" in
  *JobIdRaw*|*jobidraw*|*JobId*)
    if [ -f "$STUB_LOG/sbatch.log" ]; then
      n=$(wc -l < "$STUB_LOG/sbatch.log")
      i=1
      while [ $i -le $n ]; do echo "$((1000 + i))|FAILED"; i=$((i + 1)); done
    fi ;;
esac
exit 0
""",
    "squeue": '#!/bin/sh\necho "squeue $@" >> "$STUB_LOG/other.log"\nexit 0\n',
    "sinfo": '#!/bin/sh\necho "sinfo $@" >> "$STUB_LOG/other.log"\nexit 0\n',
    "scontrol": '#!/bin/sh\necho "scontrol $@" >> "$STUB_LOG/other.log"\nexit 0\n',
    "scancel": '#!/bin/sh\necho "scancel $@" >> "$STUB_LOG/other.log"\nexit 0\n',
    "sshare": f'#!/bin/sh\necho "{ACCOUNT}"\n',
    # account validation lists the user's accounts
    "sacctmgr": f'#!/bin/sh\necho "sacctmgr $@" >> "$STUB_LOG/other.log"\necho "{ACCOUNT}"\n',
}

SNAKEFILE = """
rule all:
    input: "out/gen.txt", "out/stats.txt"

rule generate:
    output: "out/gen.txt"
    # as the workflow's generation rules: gpu, memory and runtime from the model's config, by attempt
    resources:
        gpu=1,
        mem_mb=lambda wc, attempt: 64000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        batch_size=lambda wc, attempt: max(1, 16 // 2 ** (attempt - 1))
    shell: "echo {resources.batch_size} > {output}"

rule xici:
    output: "out/stats.txt"
    shell: "echo done > {output}"
"""


def _stub_path(tmp: Path) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bin_dir


def _run_snakemake(workdir: Path, bin_dir: Path, *extra: str, timeout: int = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["STUB_LOG"] = str(workdir)
    env.pop("SLURM_JOB_ID", None)
    cmd = [*SNAKEMAKE, "--snakefile", str(workdir / "Snakefile"), "--directory", str(workdir), *extra]
    return subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", ["slurm", "local", "ci"])
def test_profile_is_valid_yaml_with_generation_rules(name):
    config = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
    assert config["rerun-incomplete"] is True
    if name == "slurm":
        for rule in ("generate", "ablate_generate", "steer_generate", "judge_llm"):
            assert config["set-resources"][rule]["slurm_partition"] == "REPLACE_WITH_GPU_PARTITION", rule
    else:
        assert config["resources"]["gpu"] == 1  # GPU jobs run one at a time


@pytest.mark.parametrize("name", ["local", "ci"])
def test_local_profiles_serialise_gpu_jobs(name, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    bin_dir = _stub_path(tmp_path)
    proc = _run_snakemake(tmp_path, bin_dir, "--profile", str(PROFILES / name), "--dry-run", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "generate" in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs /bin/sh for the SLURM stubs")
def test_slurm_profile_submits_generation_with_gpu(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    bin_dir = _stub_path(tmp_path)
    proc = _run_snakemake(
        tmp_path,
        bin_dir,
        "--profile", str(PROFILES / "slurm"),
        "--slurm-init-seconds-before-status-checks", "1",
        "--latency-wait", "1",
        "--retries", "1",
        "--jobs", "2",
        timeout=120,
    )
    log = tmp_path / "sbatch.log"
    assert log.exists(), f"sbatch was never called:\n{proc.stdout}\n{proc.stderr}"
    calls = log.read_text().splitlines()
    # the stubbed jobs all fail, so snakemake must give up
    assert proc.returncode != 0
    gen = [c for c in calls if "rule_generate" in c]
    stats = [c for c in calls if "rule_xici" in c]
    # one retry each: the first attempt and the retry
    assert len(gen) == 2, calls
    assert len(stats) == 2, calls
    for call in gen:
        assert re.search(r"--gpus=REPLACE_WITH_GPU_MODEL:1\b", call), call
        assert "-p REPLACE_WITH_GPU_PARTITION" in call, call
        assert f"-A {ACCOUNT}" in call, call
        assert "--cpus-per-gpu=8" in call, call
        assert "--cpus-per-task" not in call, call
    # memory and runtime grow with the attempt
    assert "--mem 64000" in gen[0] and "--mem 128000" in gen[1], gen
    assert "-t 240" in gen[0] and "-t 480" in gen[1], gen
    # the retry runs as attempt 2, where the rule's batch_size callable halves the batch
    assert "--attempt 1 " in gen[0] and "--attempt 2 " in gen[1], gen
    for call in stats:
        assert "--gpus" not in call and "--gres" not in call, call
        assert "-p REPLACE_WITH_CPU_PARTITION" in call, call
        assert "--cpus-per-task=1" in call, call
        assert "--mem 4000" in call or "--mem 8000" in call, call
