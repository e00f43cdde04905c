"""Per-job overhead of the SLURM profile: the same small DAG locally and through SLURM, before and after.

Needs a running test cluster (scripts/slurm_test_cluster.sh start; with accounting, so that the old
profile's sacct status checks work). The DAG has the workflow's shape with trivial commands: per
language generate -> judge, then the outcome table and a figure from all languages.
- before: the profile as it was (git show 2995492:profiles/slurm/config.yaml) with its placeholders
  filled in for this cluster: the plugin's first status check after 40 s, every job submitted;
- after: profiles/slurm with resources from moe_routing.pipeline.cluster and the table and figure as local rules.
Overhead per SLURM job = (wall time through SLURM - wall time locally) / SLURM jobs.

Usage: python scripts/slurm_overhead.py [--languages 4] [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

SNAKEFILE = r"""
import sys
sys.path.insert(0, "@WORKFLOW@")
from moe_routing.pipeline import cluster

LANGS = config["languages"]
if config.get("local_tables"):

    localrules:
        outcome_table,
        figure,


rule all:
    input: "results/figure.txt"

rule generate:
    output: "results/generations/{lang}.txt"
    resources: **cluster.rule_resources(config)
    shell: "echo {wildcards.lang} > {output}"

rule judge:
    input: "results/generations/{lang}.txt"
    output: "results/judged/{lang}.txt"
    resources: **cluster.rule_resources(config)
    shell: "cat {input} > {output}"

rule outcome_table:
    input: expand("results/judged/{lang}.txt", lang=LANGS)
    output: "results/outcome_table.tsv"
    resources: **cluster.rule_resources(config)
    shell: "cat {input} > {output}"

rule figure:
    input: "results/outcome_table.tsv"
    output: "results/figure.txt"
    resources: **cluster.rule_resources(config)
    shell: "wc -l {input} > {output}"
"""

OLD_PROFILE_COMMIT = "2995492"
SITE = {"account": "moe", "partition": "cpu", "gpu_partition": "gpu", "gpu_model": "fake"}


def old_profile(dest: Path) -> Path:
    """The profile before the fixes, placeholders filled in for the test cluster."""
    text = subprocess.run(
        ["git", "show", f"{OLD_PROFILE_COMMIT}:profiles/slurm/config.yaml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for placeholder, value in (
        ("REPLACE_WITH_ACCOUNT", SITE["account"]),
        ("REPLACE_WITH_CPU_PARTITION", SITE["partition"]),
        ("REPLACE_WITH_GPU_PARTITION", SITE["gpu_partition"]),
        ("REPLACE_WITH_GPU_MODEL", SITE["gpu_model"]),
    ):
        text = text.replace(placeholder, value)
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(text)
    return dest


def run(workdir: Path, config: dict, *args: str) -> tuple[float, int]:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *args,
        "--snakefile",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, len(re.findall(r"has been submitted with SLURM jobid", proc.stdout + proc.stderr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="keep the work folders here")
    args = parser.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="slurm_overhead_"))
    langs = [f"l{i}" for i in range(args.languages)]
    config = {"languages": langs, "cluster": {**SITE, "node": {"cpus": 1}, "small_job": {"mem_mb": 500, "runtime": 10}}}
    variants = {
        "local (-c2)": ({**config, "local_tables": True}, ["-c2"]),
        "before (old profile)": (config, ["--profile", str(old_profile(base / "old_profile"))]),
        "after (profiles/slurm)": ({**config, "local_tables": True}, ["--profile", str(ROOT / "profiles" / "slurm")]),
    }
    results = {}
    for name, (cfg, extra) in variants.items():
        workdir = base / re.sub(r"\W+", "_", name)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "Snakefile").write_text(SNAKEFILE.replace("@WORKFLOW@", str(ROOT / "workflow")))
        results[name] = run(workdir, cfg, *extra)
    local = results["local (-c2)"][0]
    print(f"{len(langs)} languages: {2 * len(langs) + 2} jobs (generate and judge per language, table, figure)")
    print("| run | wall s | SLURM jobs | overhead per SLURM job s |")
    print("|---|---|---|---|")
    for name, (wall, jobs) in results.items():
        per_job = f"{(wall - local) / jobs:.1f}" if jobs else "-"
        print(f"| {name} | {wall:.1f} | {jobs} | {per_job} |")


if __name__ == "__main__":
    main()
