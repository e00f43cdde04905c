"""SLURM resources of every job, derived from the config's `cluster` block and a model's `resources`.

A rule's `resources:` come from ``rule_resources(config, settings)`` and its `threads:` from
``rule_threads(config, settings)``; `settings` is a `resources` block (a model's or the judge's),
a function of the wildcards returning one, or None for a small CPU job. Snakemake evaluates them
per job and attempt, and the values become sbatch flags (snakemake-executor-plugin-slurm):

- CPUs never exceed `cluster.node.cpus` (a request larger than every node pends forever, and
  ``--cpus-per-gpu`` larger than the node is refused at submission);
- memory doubles only after an attempt that ran out of memory, runtime only after one that hit
  its time limit, up to `cluster.max_mem_mb` / `max_runtime`. A resource function only gets the
  attempt number, so the reason is read back from SLURM: the failed attempts' logs, which the
  plugin keeps (``<logdir>/rule_<rule>/<wildcards>/<jobid>.log``, where slurmstepd writes why it
  killed the job), and the job state from squeue or sacct (OUT_OF_MEMORY, TIMEOUT).

``check_config`` checks the requests against the node once, without SLURM; ``check_site`` checks,
once on the submit host, that partitions, account and status command work on this cluster and
that the node limits are true, so that a wrong setting is one clear error instead of a failure,
a warning or an endless PENDING per job.
"""

from __future__ import annotations

import functools
import getpass
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from moe_routing.core.errors import ConfigError

OOM, TIMEOUT = "OUT_OF_MEMORY", "TIMEOUT"
# what slurmstepd writes into the job's output when it kills it: cgroup OOM ("Detected 1 oom_kill
# event"), jobacct_gather OverMemoryKill ("exceeded memory limit"), time limit. Only slurmstepd's
# lines count: a CUDA "out of memory" traceback in the log is not one the node's memory can fix.
_STEPD = re.compile(r"^slurmstepd[^:]*: error: (.*)$", re.MULTILINE)
_OOM_TEXT = re.compile(r"oom[-_]kill|memory limit", re.IGNORECASE)
_TIMEOUT_TEXT = re.compile(r"DUE TO TIME LIMIT")
PLACEHOLDER = "REPLACE_WITH"

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Request:
    """What one job asks SLURM for."""

    gpus: int
    cpus: int  # in all: cpus_per_gpu * gpus for a GPU job
    mem_mb: int
    runtime: int  # minutes
    partition: str
    gpu_model: str
    slurm_extra: str

    @property
    def cpus_per_gpu(self) -> int:
        return self.cpus // self.gpus


@dataclass(frozen=True)
class Cluster:
    account: str
    partition: str
    gpu_partition: str
    gpu_model: str
    cpus_per_gpu: int
    node_cpus: int | None
    node_mem_mb: int | None
    node_gpus: int | None
    max_mem_mb: int | None
    max_runtime: int | None
    small_mem_mb: int
    small_runtime: int
    logdir: str

    @classmethod
    def from_config(cls, config: Mapping) -> Cluster:
        c = _with_defaults(config.get("cluster") or {})
        node, small = c["node"], c["small_job"]
        return cls(
            account=c["account"],
            partition=c["partition"],
            gpu_partition=c["gpu_partition"],
            gpu_model=c["gpu_model"],
            cpus_per_gpu=c["cpus_per_gpu"],
            node_cpus=node.get("cpus"),
            node_mem_mb=node.get("mem_mb"),
            node_gpus=node.get("gpus"),
            max_mem_mb=c.get("max_mem_mb") or node.get("mem_mb"),
            max_runtime=c.get("max_runtime"),
            small_mem_mb=small["mem_mb"],
            small_runtime=small["runtime"],
            logdir=c["logdir"],
        )


@functools.cache
def _schema_defaults() -> dict:
    from moe_routing.pipeline.config import _schema

    def fill(definition: dict) -> dict:
        out = {}
        for key, sub in definition.get("properties", {}).items():
            if sub.get("type") == "object" and "properties" in sub:
                out[key] = fill(sub)
            elif "default" in sub:
                out[key] = sub["default"]
        return out

    return fill(_schema()["properties"]["cluster"])


def _with_defaults(block: Mapping) -> dict:
    """The `cluster` block with the schema's defaults, also for a config the schema has not filled."""
    out = dict(block)
    for key, default in _schema_defaults().items():
        if isinstance(default, dict):
            out[key] = {**default, **(block.get(key) or {})}
        else:
            out.setdefault(key, default)
    return out


def base_request(cluster: Cluster, settings: Mapping | None = None) -> Request:
    """The first attempt's request of a job with this `resources` block (None: a small CPU job)."""
    s = settings or {}
    gpus = s.get("gpu", 0) or 0
    if gpus:
        per_gpu = s.get("cpus_per_gpu") or cluster.cpus_per_gpu
        if cluster.node_cpus:
            per_gpu = max(1, min(per_gpu, cluster.node_cpus // gpus))
        cpus = per_gpu * gpus
    else:
        cpus = min(s.get("cpus") or 1, cluster.node_cpus or 1 << 30)
    return Request(
        gpus=gpus,
        cpus=cpus,
        mem_mb=s.get("mem_mb") or cluster.small_mem_mb,
        runtime=s.get("runtime") or cluster.small_runtime,
        partition=s.get("slurm_partition") or (gpus and cluster.gpu_partition) or cluster.partition,
        gpu_model=(s.get("gpu_model") or cluster.gpu_model) if gpus else "",
        slurm_extra=s.get("slurm_extra") or "",
    )


def retry_request(request: Request, cluster: Cluster, failures: Sequence[str]) -> Request:
    """The request after these failed attempts: memory doubles per OUT_OF_MEMORY, runtime per TIMEOUT."""
    mem = request.mem_mb * 2 ** sum(f == OOM for f in failures)
    runtime = request.runtime * 2 ** sum(f == TIMEOUT for f in failures)
    if cluster.max_mem_mb:
        mem = min(mem, max(cluster.max_mem_mb, request.mem_mb))
    if cluster.max_runtime:
        runtime = min(runtime, max(cluster.max_runtime, request.runtime))
    return replace(request, mem_mb=mem, runtime=runtime)


def sbatch_resources(request: Request, cluster: Cluster) -> dict[str, object]:
    """Snakemake resource names the SLURM executor turns into sbatch flags (None: flag left out)."""
    return {
        "slurm_account": cluster.account or None,
        "slurm_partition": request.partition or None,
        "gpu": request.gpus,
        "gpu_model": request.gpu_model or None,
        "cpus_per_gpu": request.cpus_per_gpu if request.gpus else None,
        "cpus_per_task": None if request.gpus else request.cpus,
        "mem_mb": request.mem_mb,
        "runtime": request.runtime,
        "slurm_extra": request.slurm_extra or None,
    }


Settings = Mapping | Callable[[object], Mapping | None] | None


def _settings_for(settings: Settings, wildcards) -> Mapping | None:
    return settings(wildcards) if callable(settings) else settings


def rule_resources(config: Mapping, settings: Settings = None) -> dict[str, Callable]:
    """A rule's `resources:` (use as ``resources: **rule_resources(config, ...)``)."""
    cluster = Cluster.from_config(config)

    @functools.lru_cache(maxsize=4096)
    def values(rulename: str, wildcards: tuple, attempt: int) -> dict[str, object]:
        request = base_request(cluster, _settings_for(settings, _Wildcards(wildcards)))
        if attempt > 1:
            failures = previous_failures(cluster.logdir, rulename, [v for _, v in wildcards], attempt)
            request = retry_request(request, cluster, failures)
        return sbatch_resources(request, cluster)

    def resource(key: str) -> Callable:
        def value(wildcards, attempt, rulename):
            return values(rulename, tuple(wildcards.items()), attempt)[key]

        return value

    return {key: resource(key) for key in sbatch_resources(base_request(cluster), cluster)}


def rule_threads(config: Mapping, settings: Settings = None) -> Callable:
    """A rule's `threads:`: the CPUs of its request (a GPU job's cpus_per_gpu times its GPUs)."""
    cluster = Cluster.from_config(config)
    return lambda wildcards: base_request(cluster, _settings_for(settings, wildcards)).cpus


class _Wildcards(dict):
    """Wildcards rebuilt from a cache key, readable as Snakemake's (wc.model and wc["model"])."""

    def __init__(self, items: tuple):
        super().__init__(items)

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def job_log_dir(logdir: str | Path, rulename: str, wildcard_values: Sequence[str]) -> Path:
    """Where the SLURM executor puts the logs of a rule's job (its get_job_wildcards, slashes as _)."""
    return Path(logdir) / f"rule_{rulename}" / "_".join(str(v) for v in wildcard_values).replace("/", "_")


def previous_failures(
    logdir: str | Path,
    rulename: str,
    wildcard_values: Sequence[str],
    attempt: int,
    state_of: Callable[[str], str | None] | None = None,
) -> list[str]:
    """Why each of the job's attempts before `attempt` failed: OUT_OF_MEMORY, TIMEOUT or another state.

    The plugin deletes the logs of successful jobs and keeps the failed ones, so the attempt-1 newest
    logs of this job are its previous attempts (the running job's own log is left out).
    """
    folder = job_log_dir(logdir, rulename, wildcard_values)
    if attempt < 2 or not folder.is_dir():
        return []
    current = os.environ.get("SLURM_JOB_ID")
    ids = sorted(int(p.stem) for p in folder.glob("*.log") if p.stem.isdigit() and p.stem != current)
    state_of = state_of or job_state
    return [
        failure_kind((folder / f"{i}.log").read_text(errors="replace"), lambda i=i: state_of(str(i)))
        for i in ids[-(attempt - 1) :]
    ]


def failure_kind(log_text: str, state: Callable[[], str | None]) -> str:
    """OUT_OF_MEMORY or TIMEOUT when slurmstepd says so in the log, else the job's state (asked only then)."""
    reasons = _STEPD.findall(log_text)
    if any(_OOM_TEXT.search(r) for r in reasons):
        return OOM
    if any(_TIMEOUT_TEXT.search(r) for r in reasons):
        return TIMEOUT
    return state() or "FAILED"


def job_state(jobid: str, run: Runner | None = None) -> str | None:
    """A finished job's state from squeue (kept for MinJobAge) or else sacct; None if neither knows it."""
    run = run or _run
    for cmd in (
        ["squeue", "--noheader", "--states=all", "--jobs", jobid, "--format=%T"],
        ["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", jobid, "--format=State"],
    ):
        try:
            proc = run(cmd)
        except (OSError, subprocess.SubprocessError):
            continue
        lines = proc.stdout.split() if proc.returncode == 0 else []
        if lines:
            return lines[0].split()[0]  # sacct: "CANCELLED by 0" -> CANCELLED
    return None


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


def _blocks(config: Mapping) -> dict[str, Mapping | None]:
    """Every `resources` block a job can get, by the config key that sets it."""
    blocks: dict[str, Mapping | None] = {"cluster.small_job": None}
    for name, model in (config.get("models") or {}).items():
        blocks[f"models.{name}.resources"] = model.get("resources") or {}
    judge = config.get("judge_model") or {}
    if judge:
        blocks["judge_model.resources"] = judge.get("resources") or {}
    return blocks


def check_config(config: Mapping) -> None:
    """Requests that no node can give, and placeholders left in: one error naming every key (no SLURM needed)."""
    cluster = Cluster.from_config(config)
    problems = [
        f"cluster.{k}: {v!r} is a placeholder; set it, or leave it empty for the cluster's default"
        for k, v in (config.get("cluster") or {}).items()
        if isinstance(v, str) and PLACEHOLDER in v
    ]
    for key, settings in _blocks(config).items():
        for k, v in (settings or {}).items():
            if isinstance(v, str) and PLACEHOLDER in v:
                problems.append(f"{key}.{k}: {v!r} is a placeholder")
        r = base_request(cluster, settings)
        if cluster.node_gpus is not None and r.gpus > cluster.node_gpus:
            problems.append(f"{key}: gpu {r.gpus} > cluster.node.gpus {cluster.node_gpus}")
        if cluster.node_mem_mb and r.mem_mb > cluster.node_mem_mb:
            problems.append(f"{key}: mem_mb {r.mem_mb} > cluster.node.mem_mb {cluster.node_mem_mb}")
    if cluster.node_mem_mb and cluster.max_mem_mb and cluster.max_mem_mb > cluster.node_mem_mb:
        problems.append(f"cluster.max_mem_mb {cluster.max_mem_mb} > cluster.node.mem_mb {cluster.node_mem_mb}")
    if problems:
        raise ConfigError("cluster resources: " + "; ".join(problems))


@dataclass(frozen=True)
class NodeSize:
    cpus: int
    mem_mb: int
    gpus: int


def partition_nodes(run: Runner) -> dict[str, NodeSize]:
    """The largest node of every partition (CPUs, memory, GPUs), from sinfo."""
    proc = run(["sinfo", "--noheader", "--format=%P|%c|%m|%G"])
    if proc.returncode != 0:
        raise ConfigError(f"sinfo failed: {proc.stderr.strip()}")
    nodes: dict[str, NodeSize] = {}
    for line in proc.stdout.splitlines():
        part, cpus, mem, gres = (line.split("|") + ["", "", "", ""])[:4]
        size = NodeSize(_int(cpus), _int(mem), _gres_gpus(gres))
        old = nodes.get(part.strip())
        nodes[part.strip()] = (
            size
            if old is None
            else NodeSize(*map(max, zip((old.cpus, old.mem_mb, old.gpus), (size.cpus, size.mem_mb, size.gpus))))
        )
    return nodes


def _int(text: str) -> int:
    m = re.match(r"\d+", text.strip())
    return int(m.group()) if m else 0


def _gres_gpus(gres: str) -> int:
    """GPUs in a sinfo GRES string: gpu:a100:4(S:0-1),gpu:2 -> 6."""
    total = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu":
            total += _int(parts[-1]) if len(parts) > 1 else 1
    return total


def check_site(config: Mapping, status_command: str | None, run: Runner | None = None) -> None:
    """Once, on the submit host, before any job: partitions, account, status command and node size.

    Raises one ConfigError naming every setting this cluster cannot honour. `status_command` is the
    executor's slurm-status-command (None: the plugin's default, sacct where installed).
    """
    run = run or _run
    if shutil.which("sinfo") is None and run is _run:
        raise ConfigError("the SLURM profile needs the SLURM commands (sinfo, sbatch, squeue) on this host")
    check_config(config)
    cluster = Cluster.from_config(config)
    problems: list[str] = []
    nodes = partition_nodes(run)
    default = next((p.rstrip("*") for p in nodes if p.endswith("*")), None)
    nodes = {p.rstrip("*"): n for p, n in nodes.items()}
    for key, settings in _blocks(config).items():
        r = base_request(cluster, settings)
        if r.partition and r.partition not in nodes:
            problem = f"{_partition_key(key, settings, cluster)}: no such partition {r.partition!r} (sinfo lists {', '.join(sorted(nodes))})"
            if problem not in problems:
                problems.append(problem)
            continue
        part = r.partition or default
        node = nodes.get(part) if part else None
        if node is None:
            continue
        where = f"{key} (partition {part})"
        if r.cpus > node.cpus:
            problems.append(f"{where}: {r.cpus} CPUs, but its nodes have {node.cpus}; set cluster.node.cpus: {node.cpus}")
        if r.mem_mb > node.mem_mb:
            problems.append(f"{where}: mem_mb {r.mem_mb}, but its nodes have {node.mem_mb}")
        if r.gpus > node.gpus:
            problems.append(f"{where}: {r.gpus} GPUs, but its nodes have {node.gpus}")
    if cluster.account:
        problems += _account_problems(cluster.account, run)
    if status_command in (None, "sacct"):
        probe = run(["sacct", "--noheader", "--allocations", "--format=JobID", "--starttime=now"])
        if probe.returncode != 0:
            problems.append(
                f"slurm-status-command {status_command or 'sacct (the default)'} fails here "
                f"({probe.stderr.strip() or probe.returncode}): Snakemake would never see a job finish; "
                "use slurm-status-command: squeue (profiles/slurm does)"
            )
    if problems:
        raise ConfigError("this SLURM cluster cannot run the config as set: " + "; ".join(problems))


def _partition_key(key: str, settings: Mapping | None, cluster: Cluster) -> str:
    """The config key that chose a job's partition."""
    if settings and settings.get("slurm_partition"):
        return f"{key}.slurm_partition"
    if settings and settings.get("gpu") and cluster.gpu_partition:
        return "cluster.gpu_partition"
    return "cluster.partition"


def _account_problems(account: str, run: Runner) -> list[str]:
    # the executor validates the account of every job with sacctmgr (then sshare) and fails the job
    # when both fail, as they do without an accounting database
    accounting = run(["sacctmgr", "--noheader", "--parsable2", "list", "cluster", "format=cluster"])
    if accounting.returncode != 0:
        return [
            f"cluster.account {account!r}: this cluster has no accounting database "
            f"({accounting.stderr.strip()}), so no account can be checked; leave cluster.account empty"
        ]
    proc = run(["sacctmgr", "--noheader", "--parsable2", "--associations", "list", "user", getpass.getuser(), "format=account"])
    accounts = {a.strip().lower() for a in proc.stdout.split() if a.strip()} if proc.returncode == 0 else set()
    if accounts and account.lower() not in accounts:
        return [f"cluster.account {account!r} is not one of yours ({', '.join(sorted(accounts))})"]
    return []
