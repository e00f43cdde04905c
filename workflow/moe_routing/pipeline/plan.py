"""The jobs a validated config asks for: runs, chunks of languages, and every file they produce.

The Snakefile builds one ``Plan`` and asks it for file lists (input functions) and targets, so the
DAG's shape is unit-tested without Snakemake. File names come from ``paths``.
"""

from __future__ import annotations

from moe_routing.core import paths


def is_built(model: dict) -> bool:
    """Whether the workflow builds this checkpoint itself (the demo model, a rehearsal stand-in)."""
    return bool(model.get("build") or model.get("stand_in"))


def chunks(languages: list[str], size: int) -> list[list[str]]:
    size = max(1, int(size))
    return [languages[i : i + size] for i in range(0, len(languages), size)]


class Plan:
    """Job structure of one validated config."""

    def __init__(self, config: dict):
        self.config = config
        self.models = config["models"]
        self.datasets = config["datasets"]
        self.xici = config.get("xici", {})
        self.routing = config.get("routing", {})
        self.english = config.get("english", "en")

    # --- datasets ------------------------------------------------------------------------
    def languages(self, dataset: str) -> list[str]:
        return list(self.datasets[dataset]["languages"])

    def datasets_of_source(self, *sources: str, exclude: bool = False) -> list[str]:
        return [d for d, s in self.datasets.items() if (s["source"] in sources) != exclude]

    def judged_by(self, *kinds: str) -> list[str]:
        """Datasets whose judge is one of ``kinds``."""
        return [d for d, s in self.datasets.items() if s["judge"] in kinds]

    def tasks(self) -> dict[str, str]:
        """Task name -> English task dataset (task experts; routing.tasks)."""
        return dict(self.routing.get("tasks", {}))

    def steering(self) -> dict[str, dict]:
        """Steering benchmark -> its routing.steering entry."""
        return {s["benchmark"]: s for s in self.routing.get("steering", [])}

    # --- runs ----------------------------------------------------------------------------
    def xici_pairs(self) -> list[tuple[str, str]]:
        return [(m, d) for m in self.xici.get("models", []) for d in self.xici.get("datasets", [])]

    def steered_models(self) -> list[str]:
        """Routing models with steering layers configured."""
        if not self.routing.get("steering"):
            return []
        return [m for m in self.routing.get("models", []) if self.models[m]["steering"].get("layers")]

    def analysed_datasets(self) -> list[str]:
        """The sets whose routing the routing analysis reads: the parallel set and the task sets."""
        return [d for d in [self.routing.get("parallel"), *self.tasks().values()] if d]

    def routing_datasets(self, model: str) -> list[str]:
        """Datasets a routing-study model generates: the analysis sets, and the benchmarks if it is steered."""
        r = self.routing
        names = [r.get("parallel"), r.get("accuracy"), *self.tasks().values()]
        if model in self.steered_models():
            names += list(self.steering())
        return list(dict.fromkeys(n for n in names if n))

    def base_runs(self) -> list[tuple[str, str]]:
        """(model, dataset) pairs with a base generation run."""
        pairs = self.xici_pairs()
        pairs += [(m, d) for m in self.routing.get("models", []) for d in self.routing_datasets(m)]
        return list(dict.fromkeys(pairs))

    def caps(self, model: str) -> list[int]:
        main = self.models[model]["xici"]["cap"]
        return sorted({main, *self.xici.get("cap_sweep", [])})

    def main_cap(self, model: str) -> int:
        return int(self.models[model]["xici"]["cap"])

    def ablation_runs(self, caps: str = "all") -> list[tuple[str, str, str]]:
        """(model, dataset, variant) of the ablation reruns: every cap swept, or only the main cap."""
        out = []
        for m, d in self.xici_pairs():
            for cap in self.caps(m) if caps == "all" else [self.main_cap(m)]:
                for cond in self.xici.get("conditions", []):
                    out.append((m, d, paths.ablation_variant(cond, cap)))
        return out

    def steered_runs(self) -> list[tuple[str, str, str]]:
        return [(m, b, "steered") for m in self.steered_models() for b in self.steering()]

    def all_runs(self) -> list[tuple[str, str, str]]:
        return [(m, d, "") for m, d in self.base_runs()] + self.ablation_runs() + self.steered_runs()

    # --- chunks: the unit of a generation job ------------------------------------------------
    def languages_per_job(self, model: str, variant: str = "") -> int:
        """``languages_per_job`` for base runs; ``rerun_languages_per_job`` (default: the same) for reruns."""
        m = self.models[model]
        base = int(m.get("languages_per_job", 1))
        return base if not variant else int(m.get("rerun_languages_per_job") or base)

    def chunks(self, model: str, dataset: str, variant: str = "") -> list[str]:
        """Chunk names of one run, in language order."""
        size = self.languages_per_job(model, variant)
        return [paths.chunk_name(c) for c in chunks(self.languages(dataset), size)]

    def generation_files(self, model: str, dataset: str, variant: str = "") -> list[str]:
        return [paths.generations(model, dataset, c, variant) for c in self.chunks(model, dataset, variant)]

    def judgment_files(self, model: str, dataset: str, variant: str = "") -> list[str]:
        return [paths.judgments(model, dataset, c, variant) for c in self.chunks(model, dataset, variant)]

    def generation_jobs(self) -> list[tuple[str, str, str, str]]:
        """(model, dataset, variant, chunk) of every generation job."""
        return [(m, d, v, c) for m, d, v in self.all_runs() for c in self.chunks(m, d, v)]

    def english_generations(self, model: str, dataset: str) -> str:
        """The generations file holding a dataset's English rows (its first chunk with English)."""
        for chunk in self.chunks(model, dataset):
            if self.english in paths.chunk_languages(chunk):
                return paths.generations(model, dataset, chunk)
        raise KeyError(f"{dataset} has no {self.english!r} language")

    def max_new_tokens(self, model: str, dataset: str) -> int:
        own = self.models[model].get("max_new_tokens")
        return int(own if own is not None else self.datasets[dataset].get("max_new_tokens", 32))

    def model_inputs(self, model: str) -> list[str]:
        """Files the workflow builds before the model can be loaded (none for hub or external checkpoints)."""
        return self._built(self.models[model])

    def judge_model_inputs(self) -> list[str]:
        return self._built(self.config.get("judge_model") or {})

    @staticmethod
    def _built(model: dict) -> list[str]:
        return [paths.fill(paths.MODEL_CONFIG, path=model["path"])] if is_built(model) else []

    # --- rehearsal stand-ins and mirrors -------------------------------------------------------
    def stand_ins(self) -> dict[str, dict]:
        """Checkpoint folder -> {like: hub id, judge: bool} of every stand-in the workflow builds."""
        out = {}
        for m in dict.fromkeys(m for m, _, _ in self.all_runs()):
            if self.models[m].get("stand_in"):
                out[self.models[m]["path"]] = {"like": self.models[m]["stand_in"], "judge": False}
        judge = self.config.get("judge_model") or {}
        if judge.get("stand_in") and self.judged_by("llm"):
            out[judge["path"]] = {"like": judge["stand_in"], "judge": True}
        return out

    def mirrors(self) -> dict[str, str]:
        """Mirror folder -> dataset, for every dataset with `mirror: true` (rehearsals)."""
        from moe_routing.rehearsal.mirrors import mirror_folder

        return {str(mirror_folder(d["source"], d["path"])): name for name, d in self.datasets.items() if d.get("mirror")}

    def steering_settings(self, model: str, benchmark: str) -> dict:
        """The model's steering block, overridden by the benchmark's routing.steering entry, then by the
        model's own per-benchmark settings; plus the benchmark's task."""
        s = dict(self.models[model]["steering"])
        per_benchmark = s.pop("benchmarks", {}).get(benchmark, {})
        entry = self.steering()[benchmark]
        s.update({k: v for k, v in entry.items() if k in ("tau", "mode", "strength")})
        s.update(per_benchmark)
        s["task"] = entry["task"]
        return s

    # --- final targets ---------------------------------------------------------------------
    def xici_models(self) -> list[str]:
        return list(self.xici.get("models", [])) if self.xici.get("datasets") else []

    def xici_targets(self) -> list[str]:
        out = []
        for m in self.xici_models():
            out += [
                paths.fill(p, model=m)
                for p in (paths.OUTCOME_TABLE, paths.ABLATION_TABLE, paths.OUTCOMES_FIGURE, paths.EXPERTS_FIGURE)
            ]
            if self.xici.get("cap_sweep"):
                out += [paths.fill(p, model=m) for p in (paths.CAP_SWEEP, paths.CAP_SWEEP_FIGURE)]
        return out

    def routing_outputs(self, model: str = "{model}") -> dict[str, str]:
        """Every table and figure ``analyze`` writes for this config, by name."""
        out = {name: paths.routing_table(name, model) for name in paths.ROUTING_TABLES}
        if not self.routing.get("accuracy"):
            del out["correlation"]
        for name in paths.ROUTING_FIGURES:
            out[f"{name}_figure"] = paths.routing_figure(name, model)
        if len(self.languages(self.routing["parallel"])) < 2 and not self.tasks():
            del out["delta_figure"]  # no comparison to show
        return out

    def routing_targets(self) -> list[str]:
        out = []
        for m in self.routing.get("models", []):
            out += list(self.routing_outputs(m).values())
            if m in self.steered_models():
                out.append(paths.fill(paths.STEERING_TABLE, model=m))
        return out

    def summary_targets(self) -> list[str]:
        models = dict.fromkeys(self.xici_models() + list(self.routing.get("models", [])))
        return [paths.fill(paths.SUMMARY, model=m) for m in models]

    def intermediate_targets(self) -> list[str]:
        """Every file between the inputs and the tables: listed in `all`, so that after any fault
        (a killed job, a deleted file) plain `snakemake` rebuilds exactly what is missing."""
        out = []
        for m, d, v in self.all_runs():
            out += self.generation_files(m, d, v)
            if self.datasets[d]["judge"] != "none":
                out += self.judgment_files(m, d, v)
        for m, d in self.xici_pairs():
            out += [paths.fill(p, model=m, dataset=d) for p in (paths.EXPERTS, paths.XICI_SUMMARY, paths.BLACKLIST)]
        for m, d, v in self.ablation_runs():
            condition, cap = v.removeprefix("ablation/").split("-cap")
            out += [
                paths.fill(p, model=m, dataset=d, condition=condition, cap=cap)
                for p in (paths.ABLATION_PLAN, paths.ABLATION_METRICS)
            ]
        for m, d, _ in self.steered_runs():
            out.append(paths.fill(paths.STEERING_PLAN, model=m, dataset=d))
        if self.routing.get("accuracy"):
            out += [paths.fill(paths.ACCURACY, model=m, dataset=self.routing["accuracy"]) for m in self.routing.get("models", [])]
        return list(dict.fromkeys(out))

    def all_targets(self) -> list[str]:
        return self.xici_targets() + self.routing_targets() + self.summary_targets() + self.intermediate_targets()
