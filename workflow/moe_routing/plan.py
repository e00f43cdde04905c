"""What the workflow builds for a config: file paths, language chunks and targets.

Snakemake rules get every path from here, so the layout lives in one place and the
job structure can be unit-tested without Snakemake.
"""

from __future__ import annotations

import shlex

RESULTS = "results"
ITEMS = "resources/data/{dataset}/{lang}.parquet"
MODELS_DIR = "resources/models"


def items_path(dataset: str, lang: str) -> str:
    return ITEMS.format(dataset=dataset, lang=lang)


def ablation_variant(condition: str, cap: int) -> str:
    return f"ablation/{condition}-cap{cap}"


def run_dir(model: str, dataset: str, variant: str = "") -> str:
    """Folder of one generation run: the base run, ``ablation/{condition}-cap{cap}`` or ``steered``."""
    base = f"{RESULTS}/{model}/{dataset}"
    return f"{base}/{variant}" if variant else base


def generations_path(model: str, dataset: str, lang: str, variant: str = "") -> str:
    return f"{run_dir(model, dataset, variant)}/generations/{lang}.parquet"


def judged_path(model: str, dataset: str, lang: str, variant: str = "") -> str:
    return f"{run_dir(model, dataset, variant)}/judged/{lang}.parquet"


def chunks(languages: list[str], size: int) -> list[list[str]]:
    size = max(1, int(size))
    return [languages[i : i + size] for i in range(0, len(languages), size)]


# flags given once per value (argparse action="append") rather than once with several values
REPEATED_FLAGS = ("engine_arg",)


def cli_flags(options: dict) -> str:
    """{'split': 'test', 'limit': 5, 'flag': True} -> '--split test --limit 5 --flag' (shell-quoted)."""
    parts: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            if key in REPEATED_FLAGS:
                parts.extend(f"{flag} {shlex.quote(str(v))}" for v in value)
            else:
                parts.append(flag)
                parts.extend(shlex.quote(str(v)) for v in value)
        else:
            parts.extend([flag, shlex.quote(str(value))])
    return " ".join(parts)


PREPARE_FLAGS = ("split", "config", "ids_file", "limit", "seed", "few_shot", "missing", "revision", "system")


def prepare_flags(options: dict, system: str | None = None) -> str:
    """A dataset's loader options as `prepare` flags: common ones as --flags, the rest as --option KEY=VALUE."""
    opts = dict(options)
    if system is not None:
        opts["system"] = system
    flags = cli_flags({k: v for k, v in opts.items() if k in PREPARE_FLAGS})
    extra = [f"--option {shlex.quote(f'{k}={v}')}" for k, v in opts.items() if k not in PREPARE_FLAGS]
    return " ".join([flags, *extra]).strip()


class Plan:
    """Job structure for one validated config."""

    def __init__(self, config: dict):
        self.config = config
        self.models = config["models"]
        self.datasets = config["datasets"]
        self.xici = config.get("xici", {})
        self.routing = config.get("routing", {})
        self.english = config.get("english", "en")

    # --- what is generated -------------------------------------------------
    def languages(self, dataset: str) -> list[str]:
        return list(self.datasets[dataset]["languages"])

    def xici_pairs(self) -> list[tuple[str, str]]:
        return [(m, d) for m in self.xici.get("models", []) for d in self.xici.get("datasets", [])]

    def routing_datasets(self, model: str) -> list[str]:
        """Datasets a routing-study model generates: the analysis sets, and the benchmarks if it is steered."""
        r = self.routing
        names = [r.get("parallel"), r.get("accuracy"), *r.get("domains", {}).values()]
        if model in self.steered_models():
            names += [s["benchmark"] for s in r.get("steering", [])]
        return list(dict.fromkeys(n for n in names if n))

    def base_runs(self) -> list[tuple[str, str]]:
        """(model, dataset) pairs with a base generation run."""
        pairs = self.xici_pairs()
        pairs += [(m, d) for m in self.routing.get("models", []) for d in self.routing_datasets(m)]
        return list(dict.fromkeys(pairs))

    def caps(self, model: str) -> list[int]:
        main = self.models[model]["xici"]["cap"]
        return sorted({main, *self.xici.get("cap_sweep", [])})

    def ablation_runs(self) -> list[tuple[str, str, str]]:
        """(model, dataset, variant) for every ablation rerun."""
        out = []
        for m, d in self.xici_pairs():
            for cap in self.caps(m):
                for cond in self.xici.get("conditions", []):
                    out.append((m, d, ablation_variant(cond, cap)))
        return out

    def steered_models(self) -> list[str]:
        """Routing models with steering layers configured."""
        if not self.routing.get("steering"):
            return []
        return [m for m in self.routing.get("models", []) if self.models[m].get("steering", {}).get("layers")]

    def steered_runs(self) -> list[tuple[str, str, str]]:
        return [(m, s["benchmark"], "steered") for m in self.steered_models() for s in self.routing.get("steering", [])]

    def all_runs(self) -> list[tuple[str, str, str]]:
        return [(m, d, "") for m, d in self.base_runs()] + self.ablation_runs() + self.steered_runs()

    def generation_jobs(self) -> list[tuple[str, str, str, list[str]]]:
        """(model, dataset, variant, languages of one job) for every generation job."""
        jobs = []
        for m, d, v in self.all_runs():
            per_job = self.languages_per_job(m, v)
            for chunk in chunks(self.languages(d), per_job):
                jobs.append((m, d, v, chunk))
        return jobs

    def languages_per_job(self, model: str, variant: str = "") -> int:
        """Languages one generation job handles: ``languages_per_job`` for base runs, and
        ``rerun_languages_per_job`` (default: the same) for ablation and steering reruns."""
        m = self.models[model]
        base = int(m.get("languages_per_job", 1))
        return base if not variant else int(m.get("rerun_languages_per_job") or base)

    def single_language_models(self, reruns: bool) -> list[str]:
        """Models whose base runs (or reruns) go one language per job, through the wildcard rules."""
        variant = "rerun" if reruns else ""
        return [m for m in self.models if self.languages_per_job(m, variant) == 1]

    def chunk_jobs(self) -> list[tuple[str, str, str, str, str, list[str]]]:
        """(rule name, rule kind, model, dataset, variant, languages) of the multi-language generation jobs."""
        out = []
        for model, dataset, variant, langs in self.generation_jobs():
            if self.languages_per_job(model, variant) == 1:
                continue
            kind = "generate" if not variant else ("steer_generate" if variant == "steered" else "ablate_generate")
            tag = "".join(c if c.isalnum() else "_" for c in variant)
            name = "__".join(x for x in (kind, model, dataset, tag, f"{langs[0]}_{langs[-1]}") if x)
            out.append((name, kind, model, dataset, variant, langs))
        return out

    def max_new_tokens(self, model: str, dataset: str) -> int:
        own = self.models[model].get("max_new_tokens")
        return int(own if own is not None else self.datasets[dataset].get("max_new_tokens", 32))

    def model_inputs(self, model: str) -> list[str]:
        """Files the workflow must build before the model can be loaded (empty for hub/external checkpoints)."""
        m = self.models[model]
        if m.get("build") == "demo":
            return [f"{m['path']}/config.json"]
        return []

    # --- final targets -----------------------------------------------------
    def xici_targets(self) -> list[str]:
        out = []
        models = self.xici.get("models", [])
        for m in models:
            if not self.xici.get("datasets"):
                continue
            out += [f"{RESULTS}/{m}/outcome_table.tsv", f"{RESULTS}/{m}/ablation_table.tsv"]
            out += [f"{RESULTS}/{m}/figures/outcomes.png", f"{RESULTS}/{m}/figures/experts_per_layer.png"]
            if self.xici.get("cap_sweep"):
                out += [f"{RESULTS}/{m}/cap_sweep.tsv", f"{RESULTS}/{m}/figures/cap_sweep.png"]
        return out

    def routing_targets(self) -> list[str]:
        out = []
        for m in self.routing.get("models", []):
            out.append(f"{RESULTS}/{m}/routing/divergence.tsv")
            if m in self.steered_models():
                out.append(f"{RESULTS}/{m}/steering_table.tsv")
        return out

    def all_targets(self) -> list[str]:
        return self.xici_targets() + self.routing_targets()
