# Shared by all rules: JOBS (moe_routing.pipeline.jobs) gives each rule its input functions (get_*), option
# strings (*_flags, quoted by moe_routing.pipeline.commands) and the stage command; file paths are patterns
# of moe_routing.core.paths (P), quoted in shell commands by Snakemake's :q.

from snakemake.settings.types import DeploymentMethod

from moe_routing.pipeline.jobs import Jobs, as_named, flat

JOBS = Jobs(config, PLAN, use_conda=DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method)
# every job's CPUs, GPUs, memory, runtime and partition come from moe_routing.pipeline.cluster: a model's (or the
# judge's) `resources` for GPU jobs, `cluster.small_job` for the rest. The tables, figures, string judges
# and prepare are `localrules` (declared beside each rule): on SLURM each would pay a round trip of
# seconds for a second of work, and prepare downloads datasets, which compute nodes often cannot.
SMALL_JOB = cluster.rule_resources(config)
# xici runs its per-question tests on two threads
XICI_RESOURCES = {"cpus": 2}
