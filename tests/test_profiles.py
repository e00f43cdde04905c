"""The Snakemake profiles: the slurm profile submits every job with the resources moe_routing.pipeline.cluster derives.

SLURM is replaced by stub commands on PATH that log their arguments; sbatch hands out job ids (and
for generation jobs writes into the job's log what slurmstepd writes when it kills a job for memory),
and squeue/sacct report every job FAILED, so Snakemake retries once and gives up quickly. The test
reads the logged sbatch calls. The Snakefile is a minimal one written here, with the rule names the
real workflow uses, so this does not depend on the workflow's rules; tests/test_slurm_cluster.py runs
the profile on a real cluster.
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
ACCOUNT = "myproj"

STUBS = {
    # --parsable: print only the job id; ids count up so retries are distinguishable. A generation
    # job "ran out of memory": its log (--output, %j = the id) gets slurmstepd's line
    "sbatch": """#!/bin/sh
echo "$@" >> "$STUB_LOG/sbatch.log"
n=$(wc -l < "$STUB_LOG/sbatch.log")
id=$((1000 + n))
log=$(echo "$@" | sed -n 's/.*--output \\([^ ]*\\).*/\\1/p' | sed "s/%j/$id/")
case "$*" in
  *rule_generate*) echo "slurmstepd: error: Detected 1 oom_kill event in StepId=$id.batch." > "$log" ;;
  *) echo "Error in rule" > "$log" ;;
esac
echo $id
""",
    # status queries (squeue --name RUN, or sacct where MinJobAge is unknown): every submitted job failed
    "squeue": """#!/bin/sh
echo "squeue $@" >> "$STUB_LOG/other.log"
case "$*" in
  *--name*)
    if [ -f "$STUB_LOG/sbatch.log" ]; then
      n=$(wc -l < "$STUB_LOG/sbatch.log")
      i=1
      while [ $i -le $n ]; do echo "$((1000 + i))|FAILED"; i=$((i + 1)); done
    fi ;;
  *--jobs*) echo FAILED ;;
esac
exit 0
""",
    "sinfo": '#!/bin/sh\necho "sinfo $@" >> "$STUB_LOG/other.log"\nprintf "cpu*|64|500000|(null)\\ngpu|32|500000|gpu:a100:4(S:0-1)\\n"\n',
    "scontrol": '#!/bin/sh\necho "scontrol $@" >> "$STUB_LOG/other.log"\nexit 0\n',
    "scancel": '#!/bin/sh\necho "scancel $@" >> "$STUB_LOG/other.log"\nexit 0\n',
    "sshare": f'#!/bin/sh\necho "{ACCOUNT}"\n',
    # the account check lists the user's accounts
    "sacctmgr": f'#!/bin/sh\necho "sacctmgr $@" >> "$STUB_LOG/other.log"\necho "{ACCOUNT}"\n',
}
STUBS["sacct"] = STUBS["squeue"].replace("squeue", "sacct").replace("*--name*", "*--name*|*JobIdRaw*")

CONFIG = {
    "cluster": {
        "account": ACCOUNT,
        "partition": "cpu",
        "gpu_partition": "gpu",
        "gpu_model": "a100",
        "node": {"cpus": 32, "mem_mb": 500000, "gpus": 4},
        "small_job": {"mem_mb": 4000, "runtime": 60},
    },
    # as the paper configs: one GPU, memory and runtime per model; more CPUs per GPU than a node has
    "models": {"m": {"resources": {"gpu": 1, "cpus_per_gpu": 64, "mem_mb": 64000, "runtime": 240}}},
}

SNAKEFILE = """
import sys
sys.path.insert(0, "@WORKFLOW@")
from moe_routing.pipeline import cluster

cluster.check_config(config)


onstart:
    if workflow.executor_plugin.name == "slurm":
        cluster.check_site(config, getattr(workflow.executor_settings, "status_command", None))


rule all:
    input: "out/m/gen.txt", "out/stats.txt"

rule generate:
    output: "out/{model}/gen.txt"
    threads: cluster.rule_threads(config, lambda wc: config["models"][wc.model]["resources"])
    resources:
        **cluster.rule_resources(config, lambda wc: config["models"][wc.model]["resources"]),
        batch_size=lambda wc, attempt: max(1, 16 // 2 ** (attempt - 1))
    shell: "echo {resources.batch_size} > {output}"

rule xici:
    output: "out/stats.txt"
    resources: **cluster.rule_resources(config)
    shell: "echo done > {output}"
""".replace("@WORKFLOW@", str(ROOT / "workflow"))


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
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        *extra,
        "--configfile",
        str(workdir / "config.yaml"),
    ]
    return subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def _workdir(tmp: Path) -> Path:
    (tmp / "Snakefile").write_text(SNAKEFILE)
    (tmp / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp


@pytest.mark.parametrize("name", ["slurm", "local", "ci"])
def test_profile_is_valid_yaml(name):
    config = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
    assert config["rerun-incomplete"] is True
    if name == "slurm":
        # site settings and resources live in the workflow config, so command-line overrides drop nothing
        assert not {"default-resources", "set-resources", "set-threads"} & set(config)
        assert "REPLACE_WITH" not in (PROFILES / name / "config.yaml").read_text()
        assert config["slurm-status-command"] == "squeue"
    else:
        assert config["resources"]["gpu"] == 1  # GPU jobs run one at a time


def test_cluster_template_is_a_valid_config_overlay():
    from moe_routing.pipeline.config import validate

    overlay = yaml.safe_load((PROFILES / "slurm" / "cluster.yaml").read_text())
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config.update(overlay)
    assert validate(config)["cluster"]["small_job"]["mem_mb"] == 4000


@pytest.mark.parametrize("name", ["local", "ci"])
def test_local_profiles_serialise_gpu_jobs(name, tmp_path):
    _workdir(tmp_path)
    bin_dir = _stub_path(tmp_path)
    proc = _run_snakemake(tmp_path, bin_dir, "--profile", str(PROFILES / name), "--dry-run", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "generate" in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs /bin/sh for the SLURM stubs")
def test_slurm_profile_submits_generation_with_gpu(tmp_path):
    _workdir(tmp_path)
    bin_dir = _stub_path(tmp_path)
    proc = _run_snakemake(
        tmp_path,
        bin_dir,
        "--profile",
        str(PROFILES / "slurm"),
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--latency-wait",
        "1",
        "--retries",
        "1",
        "--jobs",
        "2",
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
        assert re.search(r"--gpus=a100:1\b", call), call
        assert "-p gpu" in call, call
        assert f"-A {ACCOUNT}" in call, call
        # 64 CPUs per GPU asked, 32 on a node
        assert "--cpus-per-gpu=32" in call, call
        assert "--cpus-per-task" not in call, call
    # the generation job ran out of memory (slurmstepd said so in its log): twice the memory, the same time
    assert "--mem 64000" in gen[0] and "--mem 128000" in gen[1], gen
    assert "-t 240" in gen[0] and "-t 240" in gen[1], gen
    # the retry runs as attempt 2, where the rule's batch_size callable halves the batch
    assert "--attempt 1 " in gen[0] and "--attempt 2 " in gen[1], gen
    for call in stats:
        assert "--gpus" not in call and "--gres" not in call, call
        assert "-p cpu" in call, call
        assert "--cpus-per-task=1" in call, call
        # a failure that is not out of memory: the same memory
        assert "--mem 4000" in call, call


def test_slurm_profile_stops_before_any_job_on_a_wrong_partition(tmp_path):
    _workdir(tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["cluster"]["gpu_partition"] = "REPLACE_WITH_GPU_PARTITION"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    bin_dir = _stub_path(tmp_path)
    proc = _run_snakemake(tmp_path, bin_dir, "--profile", str(PROFILES / "slurm"), timeout=60)
    assert proc.returncode != 0
    assert not (tmp_path / "sbatch.log").exists()
    assert (proc.stdout + proc.stderr).count("cluster.gpu_partition: 'REPLACE_WITH_GPU_PARTITION' is a placeholder") == 1
