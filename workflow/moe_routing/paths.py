"""Where every file of the workflow lives: the one home of the layout.

Patterns use Snakemake's ``{wildcard}`` syntax, so rules declare them as outputs as they are and
input functions fill them with ``fill``. Stages get explicit paths on their command lines; the one
that writes a fixed set of files into a folder (``analyze``) takes the file names from here too.

A run is one generation pass of a model over a dataset, named ``{model}/{dataset}`` for the base
run, ``{model}/{dataset}/ablation/{condition}-cap{cap}`` for an ablation rerun and
``{model}/{dataset}/steered`` for the steered rerun; its files live under ``results/{run}/``.
A chunk is the unit of one generation job: its languages joined by ``+`` (``en``, or ``en+de+fr``
for a model with ``languages_per_job: 3``); its generations and its judgments are one file each.
"""

from __future__ import annotations

RESULTS = "results"
LOGS = "logs"
# a model, dataset or language name (the config schema enforces the same pattern)
NAME = "[A-Za-z][A-Za-z0-9_]*"
CHUNK = f"{NAME}(\\+{NAME})*"
VARIANT = "ablation/(xici|shuffled|random)-cap[0-9]+|steered"

# --- inputs the workflow builds or prepares ----------------------------------------------
ITEMS_ROOT = "resources/data"
ITEMS = ITEMS_ROOT + "/{dataset}/{lang}.parquet"
DEMO_CORPUS = "resources/demo/corpus.jsonl"
DEMO_WORLD = "resources/demo/corpus.world.json"
MODEL_CONFIG = "{path}/config.json"
# the demo model's weights and its planted truth (demo_truth), beside MODEL_CONFIG
DEMO_WEIGHTS = "{path}/model.safetensors"
DEMO_TRUTH = "{path}/planted_truth.json"

# --- generation runs ------------------------------------------------------------------------
GENERATIONS = "results/{run}/generations/{chunk}.parquet"
JUDGMENTS = "results/{run}/judgments/{chunk}.parquet"

# --- XICI ------------------------------------------------------------------------------------
EXPERTS = "results/{model}/{dataset}/experts.parquet"
XICI_SUMMARY = "results/{model}/{dataset}/xici_summary.parquet"
BLACKLIST = "results/{model}/{dataset}/blacklist.parquet"
XICI_SWEEP = "results/{model}/{dataset}/xici_sweep.tsv"
ABLATION_PLAN = "results/{model}/{dataset}/ablation/{condition}-cap{cap}/interventions.parquet"
ABLATION_METRICS = "results/{model}/{dataset}/ablation/{condition}-cap{cap}/metrics.parquet"
OUTCOME_TABLE = "results/{model}/outcome_table.tsv"
ABLATION_TABLE = "results/{model}/ablation_table.tsv"
CAP_SWEEP = "results/{model}/cap_sweep.tsv"
CAP_SWEEP_FIGURE = "results/{model}/figures/cap_sweep.png"
EXPERTS_FIGURE = "results/{model}/figures/experts_per_layer.png"
OUTCOMES_FIGURE = "results/{model}/figures/outcomes.png"

# --- routing study ----------------------------------------------------------------------------
ACCURACY = "results/{model}/{dataset}/accuracy.tsv"
ROUTING_DIR = "results/{model}/routing"
ROUTING_FIGURES_DIR = ROUTING_DIR + "/figures"
# analyze writes these tables into ROUTING_DIR and these figures into ROUTING_DIR/figures
ROUTING_TABLES = (
    "divergence",
    "entropy",
    "consistency",
    "correlation",
    "specialisation",
    "language_experts",
    "task_experts",
    "overlap",
)
ROUTING_FIGURES = ("divergence", "entropy", "consistency", "delta", "experts_per_layer")
STEERING_PLAN = "results/{model}/steering/{dataset}/interventions.parquet"
STEERING_TABLE = "results/{model}/steering_table.tsv"
SUMMARY = "results/{model}/summary.md"
# the demo scored against its planted truth (demo_score), beside the summary that quotes it
DEMO_SCORES = "results/{model}/truth_scores.tsv"


def fill(pattern: str, **wildcards) -> str:
    """A pattern with its wildcards filled in (``fill(ITEMS, dataset='x', lang='en')``)."""
    return pattern.format(**wildcards)


def log(rule: str, pattern: str | None = None) -> str:
    """The log of a rule's job: ``logs/{rule}/`` + the output's path below results/ or resources/
    (``logs/{rule}.log`` for a rule with one job)."""
    if pattern is None:
        return f"{LOGS}/{rule}.log"
    rel = pattern.removeprefix(f"{RESULTS}/").removeprefix("resources/")
    rel = rel.replace("/generations/", "/").replace("/judgments/", "/")
    return f"{LOGS}/{rule}/{rel.rsplit('.', 1)[0]}.log"


def benchmark(rule: str, pattern: str) -> str:
    """Snakemake `benchmark:` file of a job (benchmarks/estimate_cluster.py reads those of generation)."""
    rel = pattern.removeprefix(f"{RESULTS}/").replace("/generations/", "/")
    return f"{RESULTS}/benchmarks/{rule}/{rel.rsplit('.', 1)[0]}.tsv"


# --- runs and chunks -----------------------------------------------------------------------
def run_id(model: str, dataset: str, variant: str = "") -> str:
    """``{model}/{dataset}`` plus the variant (``ablation/{condition}-cap{cap}`` or ``steered``)."""
    return f"{model}/{dataset}/{variant}" if variant else f"{model}/{dataset}"


def run_regex(datasets: list[str] | None = None) -> str:
    """Wildcard constraint of ``{run}``: any run, or only the runs of ``datasets``."""
    dataset = "(" + "|".join(datasets) + ")" if datasets else NAME
    return f"{NAME}/{dataset}(/({VARIANT}))?"


def parse_run(run: str) -> tuple[str, str, str]:
    """``run_id`` -> (model, dataset, variant)."""
    parts = run.split("/", 2)
    return parts[0], parts[1], parts[2] if len(parts) > 2 else ""


def ablation_variant(condition: str, cap: int | str) -> str:
    return f"ablation/{condition}-cap{cap}"


def chunk_name(languages: list[str]) -> str:
    return "+".join(languages)


def chunk_languages(chunk: str) -> list[str]:
    return chunk.split("+")


def generations(model: str, dataset: str, chunk: str, variant: str = "") -> str:
    return fill(GENERATIONS, run=run_id(model, dataset, variant), chunk=chunk)


def judgments(model: str, dataset: str, chunk: str, variant: str = "") -> str:
    return fill(JUDGMENTS, run=run_id(model, dataset, variant), chunk=chunk)


def items(dataset: str, lang: str, root: str = ITEMS_ROOT) -> str:
    return fill(ITEMS.replace(ITEMS_ROOT, str(root), 1), dataset=dataset, lang=lang)


def routing_table(name: str, model: str = "{model}") -> str:
    return f"{fill(ROUTING_DIR, model=model)}/{name}.tsv"


def routing_figure(name: str, model: str = "{model}") -> str:
    return f"{fill(ROUTING_FIGURES_DIR, model=model)}/{name}.png"
