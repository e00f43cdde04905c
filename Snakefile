# moe-routing: XICI knowledge localisation and multilingual routing analysis on MoE models.
# Default config = the CPU demo. Paper runs: --configfile config/xici-paper.yaml (or routing-paper.yaml);
# the reduced demo CI runs: --configfile .test/config.yaml.
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# the package lives in workflow/; importing it from there keeps `snakemake` usable before `pip install -e .`
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from moe_routing.pipeline import cluster
from moe_routing.core import paths as P
from moe_routing.pipeline.commands import cli_flags
from moe_routing.pipeline.config import validate
from moe_routing.pipeline.config_guards import check_workdir
from moe_routing.core.errors import ConfigError
from moe_routing.pipeline.plan import Plan

# the demo config is the default; a --configfile replaces it instead of being merged into it
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


try:
    # the schema (filling defaults), cross-references, and checks of data files and models (moe_routing.pipeline.config),
    # then every job's request against the node sizes of the `cluster` block
    validate(config)
    cluster.check_config(config)
    # the folders jobs write into are writable and hold no looping symlink (Snakemake would trace either)
    check_workdir()
except ConfigError as exc:
    # one line, already "KEY: problem"
    raise WorkflowError(str(exc)) from None


onstart:
    # once, before the first job is submitted: partitions, account and status command work on this cluster
    if workflow.executor_plugin and workflow.executor_plugin.name == "slurm":
        try:
            cluster.check_site(config, getattr(workflow.executor_settings, "status_command", None))
        except ConfigError as exc:
            raise WorkflowError(str(exc)) from None


PLAN = Plan(config)


# names the schema allows: wildcards can never hold a path separator or a shell character
wildcard_constraints:
    model=P.NAME,
    dataset=P.NAME,
    lang=P.NAME,
    chunk=P.CHUNK,
    condition="xici|shuffled|random",
    cap="[0-9]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/rehearsal.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/xici.smk"
include: "workflow/rules/ablate.smk"
include: "workflow/rules/routing.smk"
include: "workflow/rules/steer.smk"
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    input:
        PLAN.all_targets(),
