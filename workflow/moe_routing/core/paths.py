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

import hashlib
import re
from functools import cache
from pathlib import Path

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


# --- the repository's own files -------------------------------------------------------------------
SCHEMA = "workflow/schemas/config.schema.yaml"
JUDGE_PROMPT = "resources/judge_prompt.txt"
LANG_CODES = "resources/lang_codes.tsv"
GLOBAL_MMLU_IDS = "resources/global_mmlu_prehistory_ids.txt"


@cache
def repository_root() -> Path:
    """The checkout this package runs from: the nearest folder above it holding the Snakefile and resources/
    (the package is installed editable, so its files stay in the checkout wherever a module moves)."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "Snakefile").is_file() and (folder / "resources").is_dir():
            return folder
    raise FileNotFoundError(f"{here}: no repository (a folder with Snakefile and resources/) above the package")


def repository_file(relative: str) -> Path:
    """A file of the repository (``SCHEMA``, ``JUDGE_PROMPT``, ...) as an absolute path."""
    return repository_root() / relative


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


def at_root(pattern: str) -> str:
    """The pattern of a rule matching only absolute paths, whose wildcard holds the path without its leading ``/``."""
    return "/" + pattern


def under_root(path: str) -> str:
    """An absolute path without its leading ``/`` (what a rule matching ``/{path}`` sees); '' for a relative one."""
    return path.lstrip("/") if path.startswith("/") else ""


def alternatives(values) -> str:
    """A wildcard constraint matching exactly these values (none: nothing at all)."""
    escaped = [re.escape(v) for v in values]
    return "|".join(escaped) if escaped else "(?!)"


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


# a chunk name longer than this is hashed: with ".parquet" it must stay under the file systems' 255-byte limit
MAX_CHUNK_NAME = 120
# hashed chunk name -> its languages (filled by chunk_name, which the plan calls for every chunk at parse time)
_HASHED_CHUNKS: dict[str, list[str]] = {}


def chunk_name(languages: list[str]) -> str:
    """'en+de+fr'; when that is over MAX_CHUNK_NAME characters, 'FIRST+LAST+N_hHASH', which maps back to the languages."""
    name = "+".join(languages)
    if len(name) <= MAX_CHUNK_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    short = f"{languages[0][:40]}+{languages[-1][:40]}+n{len(languages)}_h{digest}"
    _HASHED_CHUNKS[short] = list(languages)
    return short


def chunk_languages(chunk: str) -> list[str]:
    return list(_HASHED_CHUNKS.get(chunk) or chunk.split("+"))


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
