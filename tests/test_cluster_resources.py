"""SLURM resources derived from the config (moe_routing.pipeline.cluster), without SLURM.

The log lines are the ones slurmstepd 22.05 wrote on the test cluster (scripts/slurm_test_cluster.sh)
when it killed a job for memory (jobacct_gather OverMemoryKill) and for time, and the one a cgroup
cluster writes; the sinfo and sacctmgr answers are that cluster's.
"""

from __future__ import annotations

import subprocess

import pytest
from snakemake.iocontainers import Wildcards
from workflow_helpers import load_config

from moe_routing.pipeline import cluster as cl
from moe_routing.pipeline.config import validate
from moe_routing.core.errors import ConfigError

OVER_MEMORY_LOG = """host: vm
slurmstepd-vm: error: StepId=2.0 exceeded memory limit (414658560 > 314572800), being killed
srun: Job step aborted: Waiting up to 7 seconds for job step to finish.
slurmstepd-vm: error: Exceeded job memory limit
"""
CGROUP_OOM_LOG = "slurmstepd: error: Detected 1 oom_kill event in StepId=7.batch. Some of the step tasks have been OOM Killed.\n"
TIME_LIMIT_LOG = "slurmstepd-vm: error: *** JOB 1 ON vm CANCELLED AT 2026-11-27T12:12:37 DUE TO TIME LIMIT ***\n"
# a GPU out-of-memory traceback shown by --show-failed-logs: more host memory does not help it
CUDA_OOM_LOG = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\nslurmstepd: error: *** STEP 3.0 ON vm CANCELLED ***\n"


def cluster(**kw) -> cl.Cluster:
    return cl.Cluster.from_config({"cluster": kw})


GPU_MODEL = {"gpu": 1, "cpus_per_gpu": 8, "mem_mb": 1000, "runtime": 10, "gpu_model": "fake"}


def test_cpu_requests_never_exceed_the_node():
    small = cluster(node={"cpus": 2, "mem_mb": 21000, "gpus": 1})
    gpu = cl.base_request(small, GPU_MODEL)
    assert (gpu.gpus, gpu.cpus, gpu.cpus_per_gpu) == (1, 2, 2)
    assert cl.base_request(small, {"gpu": 2, "cpus_per_gpu": 8}).cpus_per_gpu == 1
    assert cl.base_request(small, {"cpus": 16}).cpus == 2
    # no node size given: the model's own numbers, or the cluster's cpus_per_gpu
    assert cl.base_request(cluster(), GPU_MODEL).cpus == 8
    assert cl.base_request(cluster(cpus_per_gpu=6), {"gpu": 2}).cpus == 12
    assert cl.base_request(cluster(), None).cpus == 1


def test_partition_gpu_type_and_small_jobs():
    c = cluster(partition="cpu", gpu_partition="gpu", gpu_model="a100", small_job={"mem_mb": 1500})
    gpu = cl.base_request(c, {"gpu": 1})
    assert (gpu.partition, gpu.gpu_model) == ("gpu", "a100")
    assert cl.base_request(c, {"gpu": 1, "slurm_partition": "h100", "gpu_model": "h100"}).partition == "h100"
    small = cl.base_request(c, None)
    assert (small.partition, small.gpu_model, small.mem_mb, small.runtime) == ("cpu", "", 1500, 60)
    # no GPU partition: GPU jobs go where CPU jobs go
    assert cl.base_request(cluster(partition="all"), {"gpu": 1}).partition == "all"


def test_memory_grows_only_after_out_of_memory_and_up_to_the_cap():
    c = cluster(node={"mem_mb": 3000})
    first = cl.base_request(c, GPU_MODEL)
    assert cl.retry_request(first, c, ["FAILED"]) == first
    assert cl.retry_request(first, c, [cl.OOM]).mem_mb == 2000
    assert cl.retry_request(first, c, [cl.OOM, cl.OOM]).mem_mb == 3000  # node.mem_mb is the default cap
    assert cl.retry_request(first, c, [cl.OOM]).runtime == 10
    timed_out = cl.retry_request(first, cluster(max_runtime=15), [cl.TIMEOUT])
    assert (timed_out.runtime, timed_out.mem_mb) == (15, 1000)
    assert cl.retry_request(first, cluster(max_mem_mb=500), [cl.OOM]).mem_mb == 1000  # a cap never shrinks


def test_sbatch_resources_of_gpu_and_cpu_jobs():
    c = cluster(account="moe", node={"cpus": 2})
    gpu = cl.sbatch_resources(cl.base_request(c, GPU_MODEL), c)
    assert gpu == {
        "slurm_account": "moe",
        "slurm_partition": None,
        "gpu": 1,
        "gpu_model": "fake",
        "cpus_per_gpu": 2,
        "cpus_per_task": None,
        "mem_mb": 1000,
        "runtime": 10,
        "slurm_extra": None,
    }
    cpu = cl.sbatch_resources(cl.base_request(cluster(), {"cpus": 3, "slurm_extra": "--qos=low"}), cluster())
    assert (cpu["gpu"], cpu["cpus_per_task"], cpu["cpus_per_gpu"], cpu["slurm_account"]) == (0, 3, None, None)
    assert cpu["slurm_extra"] == "--qos=low"


@pytest.mark.parametrize(
    "log, expected",
    [(OVER_MEMORY_LOG, cl.OOM), (CGROUP_OOM_LOG, cl.OOM), (TIME_LIMIT_LOG, cl.TIMEOUT), (CUDA_OOM_LOG, "CANCELLED")],
)
def test_failure_kind_reads_slurmstepd(log, expected):
    asked = []
    kind = cl.failure_kind(log, lambda: asked.append(1) or "CANCELLED")
    assert kind == expected
    assert bool(asked) == (expected == "CANCELLED")  # the state is asked only when the log says nothing


def test_failure_kind_from_the_state_alone():
    assert cl.failure_kind("", lambda: "OUT_OF_MEMORY") == cl.OOM
    assert cl.failure_kind("", lambda: None) == "FAILED"


def test_previous_failures_are_the_newest_failed_logs_of_the_job(tmp_path, monkeypatch):
    folder = cl.job_log_dir(tmp_path, "generate", ["demo", "de"])
    assert folder == tmp_path / "rule_generate" / "demo_de"
    folder.mkdir(parents=True)
    (folder / "101.log").write_text(TIME_LIMIT_LOG)  # an older run's failure
    (folder / "205.log").write_text(OVER_MEMORY_LOG)
    (folder / "230.log").write_text("Error in rule generate\n")
    (folder / "231.log").write_text("running\n")  # the job asking (inside SLURM)
    monkeypatch.setenv("SLURM_JOB_ID", "231")
    states = {"230": "FAILED"}
    assert cl.previous_failures(tmp_path, "generate", ["demo", "de"], 3, states.get) == [cl.OOM, "FAILED"]
    assert cl.previous_failures(tmp_path, "generate", ["demo", "de"], 2, states.get) == ["FAILED"]
    assert cl.previous_failures(tmp_path, "generate", ["demo", "de"], 1, states.get) == []
    assert cl.previous_failures(tmp_path, "judge", ["demo", "de"], 2, states.get) == []


def fake_run(answers: dict[str, tuple[int, str, str]]):
    """A runner answering by the longest matching start of the command; unknown commands fail."""
    calls = []

    def run(cmd):
        calls.append(cmd)
        for prefix, (rc, out, err) in sorted(answers.items(), key=lambda a: -len(a[0])):
            if " ".join(cmd).startswith(prefix):
                return subprocess.CompletedProcess(cmd, rc, out, err)
        return subprocess.CompletedProcess(cmd, 1, "", f"{cmd[0]}: not available")

    run.calls = calls
    return run


def test_job_state_from_squeue_then_sacct():
    assert cl.job_state("7", fake_run({"squeue": (0, "OUT_OF_MEMORY\n", "")})) == "OUT_OF_MEMORY"
    # squeue forgot the job (MinJobAge): sacct, whose states read "CANCELLED by 0"
    run = fake_run({"squeue": (1, "", "Invalid job id specified"), "sacct": (0, "CANCELLED by 0\n", "")})
    assert cl.job_state("7", run) == "CANCELLED"
    assert cl.job_state("7", fake_run({})) is None


def test_rule_resources_by_wildcards_and_attempt(tmp_path):
    config = {
        "cluster": {"node": {"cpus": 2, "mem_mb": 8000}, "logdir": str(tmp_path)},
        "models": {"big": {"resources": GPU_MODEL}, "cpu": {"resources": {"cpus": 1, "mem_mb": 500}}},
    }
    resources = cl.rule_resources(config, lambda wc: config["models"][wc.model]["resources"])
    threads = cl.rule_threads(config, lambda wc: config["models"][wc.model]["resources"])
    big, small = Wildcards(fromdict={"model": "big", "lang": "de"}), Wildcards(fromdict={"model": "cpu", "lang": "de"})

    def get(key, wc, attempt=1):
        return resources[key](wc, attempt, "generate")

    assert (get("gpu", big), get("cpus_per_gpu", big), get("gpu_model", big), get("mem_mb", big)) == (1, 2, "fake", 1000)
    assert (get("gpu", small), get("cpus_per_task", small), get("cpus_per_gpu", small)) == (0, 1, None)
    assert threads(big) == 2 and threads(small) == 1
    # the first attempt ran out of memory: the second gets twice the memory, the same time
    folder = cl.job_log_dir(tmp_path, "generate", ["big", "de"])
    folder.mkdir(parents=True)
    (folder / "12.log").write_text(OVER_MEMORY_LOG)
    assert (get("mem_mb", big, 2), get("runtime", big, 2)) == (2000, 10)
    # a small job with no block at all
    assert cl.rule_resources(config)["mem_mb"](small, 1, "xici") == 4000


def test_check_config_names_every_request_no_node_gives():
    config = {
        "cluster": {"account": "REPLACE_WITH_ACCOUNT", "node": {"cpus": 2, "mem_mb": 4000, "gpus": 1}},
        "models": {"air": {"resources": {"gpu": 4, "mem_mb": 256000}}, "ok": {"resources": GPU_MODEL}},
    }
    with pytest.raises(ConfigError) as err:
        cl.check_config(config)
    msg = str(err.value)
    assert "cluster.account" in msg and "placeholder" in msg
    assert "models.air.resources: gpu 4 > cluster.node.gpus 1" in msg
    assert "models.air.resources: mem_mb 256000 > cluster.node.mem_mb 4000" in msg
    assert "models.ok" not in msg
    cl.check_config({"models": {"air": {"resources": {"gpu": 4, "mem_mb": 256000}}}})  # no node given: no limit


SINFO = "cpu*|2|21694|gpu:fake:1(S:0)\ngpu|2|21694|gpu:fake:1(S:0)\n"


def site(**answers):
    base = {
        "sinfo": (0, SINFO, ""),
        "sacctmgr --noheader --parsable2 list cluster": (0, "moetest\n", ""),
        "sacctmgr --noheader --parsable2 --associations list user": (0, "moe\nroot\n", ""),
        "sacct": (0, "", ""),
        "squeue": (0, "", ""),
    }
    base.update(answers)
    return fake_run(base)


def test_check_site_accepts_a_config_this_cluster_can_run():
    config = {
        "cluster": {"account": "moe", "gpu_partition": "gpu", "node": {"cpus": 2}},
        "models": {"m": {"resources": GPU_MODEL}},
    }
    cl.check_site(config, "squeue", site())
    cl.check_site(config, "sacct", site())


def test_check_site_one_error_for_partition_cpus_and_account():
    config = {
        "cluster": {"account": "other", "gpu_partition": "gpu_h100", "small_job": {"mem_mb": 30000}},
        "models": {
            "m": {"resources": {"gpu": 1, "cpus_per_gpu": 8}},
            "m2": {"resources": {"gpu": 1}},
            "c": {"resources": {"cpus": 4}},
            "p": {"resources": {"slurm_partition": "big"}},
        },
    }
    with pytest.raises(ConfigError) as err:
        cl.check_site(config, "squeue", site())
    msg = str(err.value)
    assert msg.count("cluster.gpu_partition: no such partition 'gpu_h100' (sinfo lists cpu, gpu)") == 1
    assert "models.c.resources (partition cpu): 4 CPUs, but its nodes have 2; set cluster.node.cpus: 2" in msg
    assert "cluster.small_job (partition cpu): mem_mb 30000, but its nodes have 21694" in msg
    assert "models.p.resources.slurm_partition: no such partition 'big'" in msg
    assert "cluster.account 'other' is not one of yours (moe, root)" in msg


def test_check_site_without_accounting_database():
    no_db = {
        "sacctmgr --noheader --parsable2 list cluster": (
            1,
            "",
            "sacctmgr: error: Problem talking to the database: Connection refused",
        ),
        "sacct": (1, "", "Slurm accounting storage is disabled"),
    }
    cl.check_site({"models": {}}, "squeue", site(**no_db))
    with pytest.raises(ConfigError, match="use slurm-status-command: squeue"):
        cl.check_site({"models": {}}, None, site(**no_db))
    with pytest.raises(ConfigError, match="no accounting database.*leave cluster.account empty"):
        cl.check_site({"cluster": {"account": "moe"}, "models": {}}, "squeue", site(**no_db))


def test_gres_gpu_counts():
    assert cl._gres_gpus("gpu:fake:1(S:0)") == 1
    assert cl._gres_gpus("gpu:a100:4(S:0-1),gpu:2,shard:8") == 6
    assert cl._gres_gpus("(null)") == 0


def test_schema_takes_the_cluster_block():
    config = load_config()
    config["cluster"] = {"account": "moe", "node": {"cpus": 2, "gpus": 1}, "small_job": {"mem_mb": 1000}}
    config["models"]["demo"]["resources"] = {"cpus": 2}
    out = validate(config)["cluster"]
    assert out["small_job"] == {"mem_mb": 1000, "runtime": 60} and out["cpus_per_gpu"] == 4
    config["cluster"]["nodes"] = 3
    with pytest.raises(ConfigError, match="nodes"):
        validate(config)
