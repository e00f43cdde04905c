"""The SLURM profile (profiles/slurm) against a real one-node SLURM cluster.

Start one with `bash scripts/slurm_test_cluster.sh start [--no-accounting]` (root; scripts/test_slurm.sh
runs these tests in both accounting modes); without one every test here is skipped. The Snakefile is
written here: it mirrors the workflow's rule names and resource shapes (generation per model and
language from the model's `resources`, judging as a small job, the outcome table as a local rule) and
wires moe_routing.pipeline.cluster as the workflow does. What SLURM did is read back from squeue, which keeps
finished jobs for MinJobAge (300 s), by the run ID the executor gives every job as its name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "slurm"
DEFAULT_CONF = Path(os.environ.get("MOE_SLURM_DIR", "/tmp/moe-slurm")) / "etc" / "slurm.conf"
LANGS = ["en", "de", "fr"]
OOM_MB = 600  # the first attempt of generate[oom] gets this much and uses more

SNAKEFILE = r"""
import sys
sys.path.insert(0, "@WORKFLOW@")
from moe_routing.pipeline import cluster

cluster.check_config(config)


onstart:
    # the workflow's Snakefile does the same: SLURM settings checked once, before the first job
    if workflow.executor_plugin.name == "slurm":
        cluster.check_site(config, getattr(workflow.executor_settings, "status_command", None))


def model_resources(wc):
    return config["models"][wc.model]["resources"]


localrules:
    outcome_table,


rule all:
    input:
        "results/cpu/outcome_table.tsv",
        "results/gpu/generations/en.txt",
        "results/cpu/generations/oom.txt",
        "results/cpu/generations/flaky.txt",


rule generate:
    output:
        "results/{model}/generations/{lang}.txt",
    threads: cluster.rule_threads(config, model_resources)
    resources:
        **cluster.rule_resources(config, model_resources),
    params:
        # lang oom: uses more memory than a first attempt gets; lang flaky: fails its first attempt
        use_mb=lambda wc: @OOM_MB@ * 3 // 2 if wc.lang == "oom" else 1,
        flaky=lambda wc: "1" if wc.lang == "flaky" else "",
    shell:
        "if [ -n '{params.flaky}' ] && [ ! -e {output}.tried ]; then touch {output}.tried; exit 3; fi; "
        "@PYTHON@ -c 'import time; b = bytearray({params.use_mb} << 20); b[::4096] = bytes(len(b[::4096])); time.sleep(3 * (len(b) > 1 << 20))' && "
        "echo \"job=$SLURM_JOB_ID cuda=${{CUDA_VISIBLE_DEVICES:-none}} "
        "threads={threads} mem_mb={resources.mem_mb}\" > {output}"


rule judge:
    input:
        "results/{model}/generations/{lang}.txt",
    output:
        "results/{model}/judged/{lang}.txt",
    resources:
        **cluster.rule_resources(config),
    shell:
        "echo \"judged by $SLURM_JOB_ID\" | cat {input} - > {output}"


rule outcome_table:
    input:
        expand("results/{{model}}/judged/{lang}.txt", lang=config["languages"]),
    output:
        "results/{model}/outcome_table.tsv",
    shell:
        "echo \"table by ${{SLURM_JOB_ID:-local}}\" | cat {input} - > {output}"
"""


def _slurm_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SLURM_CONF", str(DEFAULT_CONF))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SLURM_JOB_ID", None)
    return env


def _slurm(env, *cmd) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def env():
    env = _slurm_env()
    if shutil.which("scontrol") is None or not Path(env["SLURM_CONF"]).exists():
        pytest.skip("no SLURM test cluster (start one: sudo bash scripts/slurm_test_cluster.sh start)")
    if "UP" not in _slurm(env, "scontrol", "ping").stdout:
        pytest.skip(f"the SLURM test cluster of {env['SLURM_CONF']} does not answer (scontrol ping)")
    return env


@pytest.fixture(scope="module")
def node(env) -> dict:
    cpus, mem = _slurm(env, "sinfo", "--noheader", "--partition=cpu", "--format=%c %m").stdout.split()
    config = _slurm(env, "scontrol", "show", "config").stdout
    return {"cpus": int(cpus), "mem_mb": int(mem), "accounting": "accounting_storage/slurmdbd" in config}


def _config(node: dict, **cluster) -> dict:
    return {
        "languages": LANGS,
        "cluster": {
            # an account can only be checked (and is only enforced) with an accounting database
            "account": "moe" if node["accounting"] else "",
            "gpu_partition": "gpu",
            "gpu_model": "fake",
            "node": {"cpus": node["cpus"], "mem_mb": node["mem_mb"], "gpus": 1},
            "small_job": {"mem_mb": 500, "runtime": 10},
            **cluster,
        },
        "models": {
            "cpu": {"resources": {"mem_mb": OOM_MB, "runtime": 10}},
            # as a paper model: one GPU and more CPUs per GPU than this node has
            "gpu": {"resources": {"gpu": 1, "cpus_per_gpu": 8, "mem_mb": 1000, "runtime": 15}},
        },
    }


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, env: dict):
        self.proc = proc
        self.log = proc.stdout + proc.stderr
        m = re.search(r"SLURM run ID: (\S+)", self.log)
        self.jobs = []
        if m:
            fields = "JobID:|,State:|,MinMemory:|,TimeLimit:|,Comment:|,Partition:|,NumCPUs:|,tres-per-job:"
            out = _slurm(env, "squeue", "--noheader", "--states=all", f"--name={m.group(1)}", f"--Format={fields}")
            for line in out.stdout.splitlines():
                jobid, state, mem, limit, comment, part, cpus, tres = (f.strip() for f in line.split("|"))
                self.jobs.append(
                    {
                        "id": int(jobid),
                        "state": state,
                        "mem": mem,
                        "time": limit,
                        "job": comment,
                        "partition": part,
                        "cpus": int(cpus),
                        "tres": tres,
                    }
                )
            self.jobs.sort(key=lambda j: j["id"])

    def of(self, name: str) -> list[dict]:
        return [j for j in self.jobs if j["job"] == name]

    def __repr__(self):
        return f"{self.log[-6000:]}\nSLURM jobs: {self.jobs}"


def snakemake(workdir: Path, env: dict, *args: str, timeout: int = 300) -> Run:
    # --configfile last: it takes every path that follows it
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *args,
        "--snakefile",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--profile",
        str(PROFILE),
        "--configfile",
        str(workdir / "config.yaml"),
    ]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc, env)


def _workdir(path: Path, config: dict) -> Path:
    snakefile = SNAKEFILE.replace("@WORKFLOW@", str(ROOT / "workflow")).replace("@PYTHON@", sys.executable)
    (path / "Snakefile").write_text(snakefile.replace("@OOM_MB@", str(OOM_MB)))
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, env, node):
    """The whole test workflow, run once through SLURM."""
    workdir = _workdir(tmp_path_factory.mktemp("slurm"), _config(node))
    return workdir, snakemake(workdir, env)


def test_workflow_runs_through_slurm(workflow, node):
    workdir, run = workflow
    assert run.proc.returncode == 0, run
    for lang in LANGS:
        assert [j["state"] for j in run.of(f"rule_generate_wildcards_cpu_{lang}")] == ["COMPLETED"], run
        assert [j["state"] for j in run.of(f"rule_judge_wildcards_cpu_{lang}")] == ["COMPLETED"], run
        gen = run.of(f"rule_generate_wildcards_cpu_{lang}")[0]
        assert (gen["partition"], gen["cpus"], gen["mem"], gen["time"]) == ("cpu", 1, f"{OOM_MB}M", "10:00"), gen
        judged = (workdir / "results" / "cpu" / "judged" / f"{lang}.txt").read_text()
        assert f"job={gen['id']} " in judged and "cuda=none" in judged
    # the tiny table job ran in Snakemake's own process, not as a SLURM job
    assert not any("outcome_table" in j["job"] for j in run.jobs)
    assert "table by local" in (workdir / "results" / "cpu" / "outcome_table.tsv").read_text()
    # the executor's warnings about the account: none with an account it can check, else at most one per
    # submission thread (it has two), not one per job
    for warning in ("No SLURM account given", "Unable to test the validity", "returned empty results for account"):
        assert run.log.count(warning) <= (0 if node["accounting"] else 2), run


def test_gpu_job_gets_gpus_and_at_most_the_node_cpus(workflow, node):
    workdir, run = workflow
    [gpu] = run.of("rule_generate_wildcards_gpu_en")
    assert gpu["state"] == "COMPLETED", run
    assert gpu["partition"] == "gpu"
    assert "gpu:fake:1" in gpu["tres"], gpu
    # cpus_per_gpu 8 in the model's resources, capped at the node's CPUs
    assert gpu["cpus"] == min(8, node["cpus"]), gpu
    out = (workdir / "results" / "gpu" / "generations" / "en.txt").read_text()
    assert "cuda=0" in out and f"threads={min(8, node['cpus'])}" in out, out


def test_rerun_of_one_language_resubmits_only_its_chain(workflow, env):
    workdir, _ = workflow
    results = workdir / "results" / "cpu"
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*.txt")}
    run = snakemake(workdir, env, "--forcerun", "results/cpu/generations/de.txt")
    assert run.proc.returncode == 0, run
    assert sorted(j["job"] for j in run.jobs) == ["rule_generate_wildcards_cpu_de", "rule_judge_wildcards_cpu_de"], run
    assert all(j["state"] == "COMPLETED" for j in run.jobs), run
    for path, mtime in before.items():
        if "/de.txt" not in str(path):
            assert path.stat().st_mtime_ns == mtime, path


def test_retries_grow_memory_only_after_out_of_memory(workflow):
    workdir, run = workflow
    oom = run.of("rule_generate_wildcards_cpu_oom")
    # the first attempt is killed by SLURM for memory (FAILED under jobacct_gather, OUT_OF_MEMORY under
    # cgroups); the second gets twice the memory and the same time
    assert [j["state"] for j in oom] in (["FAILED", "COMPLETED"], ["OUT_OF_MEMORY", "COMPLETED"]), run
    assert [j["mem"] for j in oom] == [f"{OOM_MB}M", f"{2 * OOM_MB}M"], run
    assert [j["time"] for j in oom] == ["10:00", "10:00"], run
    assert f"mem_mb={2 * OOM_MB}" in (workdir / "results" / "cpu" / "generations" / "oom.txt").read_text()
    # a failure that is not out of memory: the retry asks for the same
    flaky = run.of("rule_generate_wildcards_cpu_flaky")
    assert [j["state"] for j in flaky] == ["FAILED", "COMPLETED"], run
    assert [j["mem"] for j in flaky] == [f"{OOM_MB}M", f"{OOM_MB}M"], run


def test_wrong_settings_fail_once_before_any_job(tmp_path, env, node):
    config = _config(node, partition="REPLACE_WITH_CPU_PARTITION", gpu_partition="gpu_h100")
    config["cluster"].pop("node")
    config["models"]["cpu"]["resources"]["cpus"] = node["cpus"] + 1
    workdir = _workdir(tmp_path, config)
    run = snakemake(workdir, env, timeout=120)
    assert run.proc.returncode != 0
    assert run.jobs == [], run
    assert run.log.count("cluster.partition: 'REPLACE_WITH_CPU_PARTITION' is a placeholder") == 1, run
    # no placeholder: the check against sinfo names the partition and the CPUs
    del config["cluster"]["partition"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workdir, env, timeout=120)
    assert run.proc.returncode != 0 and run.jobs == [], run
    assert run.log.count("cluster.gpu_partition: no such partition 'gpu_h100'") == 1, run
    assert run.log.count(f"{node['cpus'] + 1} CPUs, but its nodes have {node['cpus']}; set cluster.node.cpus") == 1, run


def test_sacct_status_command_works_or_fails_at_once(tmp_path, env, node):
    """With accounting sacct is a working status command; without, a clear error instead of a silent hang."""
    workdir = _workdir(tmp_path, _config(node))
    run = snakemake(workdir, env, "--slurm-status-command", "sacct", "results/cpu/generations/en.txt", timeout=180)
    if node["accounting"]:
        assert run.proc.returncode == 0, run
        assert [j["state"] for j in run.jobs] == ["COMPLETED"], run
    else:
        assert run.proc.returncode != 0 and run.jobs == [], run
        assert "use slurm-status-command: squeue" in run.log, run


@pytest.fixture(scope="module")
def demo_workdir(tmp_path_factory, node):
    """The real workflow on the reduced demo config (.test/config.yaml) cut to three languages, with a tiny
    random checkpoint built here instead of the training (MOE_SLURM_DEMO_CONFIG: another config to start from)."""
    if os.environ.get("MOE_SLURM_DEMO") != "1":
        pytest.skip("the real workflow through SLURM runs with MOE_SLURM_DEMO=1 (scripts/test_slurm.sh sets it once)")
    from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint
    from workflow_helpers import copy_workflow

    root = copy_workflow(tmp_path_factory.mktemp("slurm_demo"))
    config = yaml.safe_load(Path(os.environ.get("MOE_SLURM_DEMO_CONFIG", ROOT / ".test" / "config.yaml")).read_text())
    model = config["xici"]["models"][0]
    config["demo"].pop("model", None)
    config["models"][model].pop("build", None)
    # as many layers as the constructed demo model, so the config's layer settings (steering) fit it
    layers = config["demo"].get("build", {}).get("layers", 8)
    config["models"][model]["path"] = str(
        build_tiny_checkpoint("qwen3_moe", root / "resources" / "models" / "tiny", layers=layers)
    )
    config["models"][model]["resources"] = {"mem_mb": 2000, "runtime": 10}
    for ds in config["datasets"].values():
        ds["languages"] = ds["languages"][:3]
    config["cluster"] = _config(node)["cluster"]
    (root / "config" / "slurm-demo.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root, model, config["xici"]["datasets"][0], config["datasets"][config["xici"]["datasets"][0]]["languages"]


def test_demo_outcome_table_through_slurm(demo_workdir, env):
    root, model, dataset, langs = demo_workdir
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        f"results/{model}/outcome_table.tsv",
        "--profile",
        str(PROFILE),
        "--configfile",
        "config/slurm-demo.yaml",
    ]
    run = Run(subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600), env)
    assert run.proc.returncode == 0, run
    assert (root / "results" / model / "outcome_table.tsv").stat().st_size > 0
    for lang in langs:
        # generation is a SLURM job per language (its run wildcard's slashes become _ in the job name);
        # string judges and the table are local rules
        assert [j["state"] for j in run.of(f"rule_generate_wildcards_{model}_{dataset}_{lang}")] == ["COMPLETED"], run
        assert run.of(f"rule_judge_wildcards_{model}_{dataset}_{lang}") == [], run
