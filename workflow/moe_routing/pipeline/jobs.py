"""What each job of the workflow reads, and its command-line options, for one config.

The rules call these methods as input functions (``get_*``: wildcards -> files) and params
functions (``*_flags``: wildcards -> option words, quoted by ``commands.cli_flags``); Snakemake's
wildcards are read by attribute (``wildcards.model``), so any object with those attributes does
here, and everything is unit-tested without Snakemake. Paths come from ``paths``, job lists from
the ``Plan``.
"""

from __future__ import annotations

import os
import shlex
import sys

from moe_routing.core import paths as P
from moe_routing.pipeline.commands import StageCommand, cli_flags, key_values
from moe_routing.pipeline.plan import Plan


class Jobs:
    def __init__(self, config: dict, plan: Plan, use_conda: bool = False):
        self.config, self.plan, self.use_conda = config, plan, use_conda
        self.english = config["english"]
        self.xici_datasets = list(config["xici"]["datasets"])
        self.steering = plan.steering()

    # --- how a stage runs -----------------------------------------------------------------------
    def moe(self, backend: str = "hf") -> StageCommand:
        """``python -m moe_routing`` of a stage: the job's conda environment's, or the configured interpreter
        (``python.vllm`` for models served by vLLM)."""
        if self.use_conda:
            return StageCommand("python")
        main = self.config["python"]["main"] or sys.executable
        return StageCommand((self.config["python"]["vllm"] or main) if backend == "vllm" else main)

    @staticmethod
    def conda_env(backend: str = "hf") -> str:
        return "../../envs/vllm.yaml" if backend == "vllm" else "../../envs/main.yaml"

    def run_model(self, wildcards) -> dict:
        """The config block of the model of a ``{run}`` wildcard."""
        return self.config["models"][P.parse_run(wildcards.run)[0]]

    def run_resources(self, wildcards) -> dict:
        """The ``resources`` block of the model of a ``{run}`` wildcard (moe_routing.pipeline.cluster turns it into a request)."""
        return self.run_model(wildcards)["resources"]

    def batch_size(self, wildcards, attempt: int) -> int:
        # out of memory: each retry halves the batch (resources are re-evaluated per attempt)
        return max(1, self.run_model(wildcards)["batch_size"] // 2 ** (attempt - 1))

    # --- inputs ----------------------------------------------------------------------------------
    def get_chunk_items(self, wildcards) -> list[str]:
        dataset = P.parse_run(wildcards.run)[1]
        return [P.items(dataset, lang) for lang in P.chunk_languages(wildcards.chunk)]

    def get_mirror(self, wildcards) -> list[str]:
        """A rehearsal's mirror of the dataset (``mirror: true``), which prepare reads; nothing otherwise."""
        return [folder for folder, dataset in self.plan.mirrors().items() if dataset == wildcards.dataset]

    def get_model_files(self, wildcards) -> list[str]:
        return self.plan.model_inputs(P.parse_run(wildcards.run)[0])

    def get_run_interventions(self, wildcards) -> list[str]:
        """The interventions a run applies: none (base run), an ablation plan, or a steering plan."""
        model, dataset, variant = P.parse_run(wildcards.run)
        if variant.startswith("ablation/"):
            condition, cap = variant.removeprefix("ablation/").split("-cap")
            return [P.fill(P.ABLATION_PLAN, model=model, dataset=dataset, condition=condition, cap=cap)]
        if variant == "steered":
            return [P.fill(P.STEERING_PLAN, model=model, dataset=dataset)]
        return []

    def get_base(self, kind: str, dataset: str | None = None):
        """Input function: every generations or judgments file of a base run (of ``dataset``, or the wildcard's)."""
        files = self.plan.generation_files if kind == "generations" else self.plan.judgment_files
        return lambda wildcards: files(wildcards.model, dataset or wildcards.dataset)

    def get_xici(self, what: str):
        """{dataset: files} of every XICI dataset: its base-run judgments, or the file of a per-dataset pattern."""

        def files(wildcards) -> dict[str, list[str]]:
            if what == "judgments":
                return {d: self.plan.judgment_files(wildcards.model, d) for d in self.xici_datasets}
            return {d: [P.fill(what, model=wildcards.model, dataset=d)] for d in self.xici_datasets}

        return files

    def get_ablation_judgments(self, wildcards) -> list[str]:
        variant = P.ablation_variant(wildcards.condition, wildcards.cap)
        return self.plan.judgment_files(wildcards.model, wildcards.dataset, variant)

    def get_steering_judgments(self, variant: str):
        """{benchmark: judgments files} of the base or steered runs of every steering benchmark."""
        return lambda wildcards: {b: self.plan.judgment_files(wildcards.model, b, variant) for b in self.steering}

    def get_metrics(self, caps: str):
        """Ablation metrics of every XICI dataset x condition, at every cap swept (``all``) or the main cap."""

        def files(wildcards) -> list[str]:
            chosen = self.plan.caps(wildcards.model) if caps == "all" else [self.plan.main_cap(wildcards.model)]
            return [
                P.fill(P.ABLATION_METRICS, model=wildcards.model, dataset=d, condition=c, cap=cap)
                for d in self.xici_datasets
                for c in self.config["xici"]["conditions"]
                for cap in chosen
            ]

        return files

    def get_accuracy(self, wildcards) -> list[str]:
        accuracy = self.config["routing"].get("accuracy")
        return [P.fill(P.ACCURACY, model=wildcards.model, dataset=accuracy)] if accuracy else []

    def get_task_generations(self, wildcards) -> dict[str, str]:
        return {task: self.plan.english_generations(wildcards.model, ds) for task, ds in self.plan.tasks().items()}

    def get_summary_inputs(self, wildcards) -> dict[str, str | list[str]]:
        """The tables a model's summary reads: those its studies produce."""
        m, out = wildcards.model, {}
        if m in self.plan.xici_models():
            out["outcome_table"] = P.fill(P.OUTCOME_TABLE, model=m)
            out["ablation_table"] = P.fill(P.ABLATION_TABLE, model=m)
            out["judgments"] = flat(self.get_xici("judgments"))(wildcards)
            if self.config["xici"]["cap_sweep"]:
                out["cap_sweep"] = P.fill(P.CAP_SWEEP, model=m)
        if m in self.config["routing"]["models"]:
            out["divergence"] = P.routing_table("divergence", m)
            if m in self.plan.steered_models():
                out["steering_table"] = P.fill(P.STEERING_TABLE, model=m)
        out["model_dir"] = self.plan.model_inputs(m)
        return out

    # --- options ---------------------------------------------------------------------------------
    def generation_flags(self, wildcards) -> str:
        model, dataset, variant = P.parse_run(wildcards.run)
        m, d, routing = self.config["models"][model], self.config["datasets"][dataset], self.config["routing"]
        # the routing analysis' reading of the routed tokens, on the sets it analyses
        analysed = dataset in self.plan.analysed_datasets()
        prompt = routing["generation_prompt"] if analysed else "auto"
        interventions = self.get_run_interventions(wildcards)
        return cli_flags(
            {
                "model": m["path"],
                "run": wildcards.run,
                "backend": m["backend"],
                "dtype": m["dtype"],
                "device": m["device"],
                "max_new_tokens": self.plan.max_new_tokens(model, dataset),
                "seed": self.config["seed"],
                "trust_remote_code": m["trust_remote_code"],
                "adapter": m.get("adapter"),
                "engine_arg": key_values(m["engine_args"]),
                "interventions": interventions[0] if interventions else None,
                # ablation reruns re-ask only the questions with experts
                "only_intervened": variant.startswith("ablation/"),
                "scoring": d["scoring"],
                "no_chat_template": not d["chat_template"],
                "token_scope": routing["token_scope"] if analysed else None,
                "generation_prompt": prompt == "always",
                "no_generation_prompt": prompt == "never",
            },
            repeated=("engine_arg",),
        )

    def judge_backend(self) -> str:
        return (self.config.get("judge_model") or {}).get("backend", "hf")

    def judge_flags(self, wildcards) -> str:
        kind = self.config["datasets"][P.parse_run(wildcards.run)[1]]["judge"]
        options = {"judge": kind}
        if kind == "llm":
            j = self.config["judge_model"]
            options.update(
                judge_model=j["path"],
                judge_backend=j["backend"],
                batch_size=j["batch_size"],
                dtype=j["dtype"],
                device=j["device"],
            )
        return cli_flags(options)

    def xici_flags(self, wildcards) -> str:
        # experts are kept up to the largest cap swept: the rank order does not depend on the cap, and
        # each ablation plan takes rank <= its own cap; the threshold sweep covers every cap
        caps = self.plan.caps(wildcards.model)
        return cli_flags({**self.config["models"][wildcards.model]["xici"], "cap": max(caps), "caps": caps})

    def layer_flags(self, wildcards) -> str:
        x = self.config["models"][wildcards.model]["xici"]
        return cli_flags({"exclude_first": x["exclude_first"], "exclude_last": x["exclude_last"]})

    def prepare_flags(self, wildcards) -> str:
        d = self.config["datasets"][wildcards.dataset]
        return cli_flags(
            {"source": d["source"], "path": d["path"], "system": d.get("system"), "option": key_values(d["options"])},
            repeated=("option",),
        )

    def steering_flags(self, wildcards) -> str:
        s = self.plan.steering_settings(wildcards.model, wildcards.dataset)
        run = P.run_id(wildcards.model, wildcards.dataset, "steered")  # recorded in the plan; the steered rerun checks it
        return cli_flags(
            {"english": self.english, "run": run, **{k: s[k] for k in ("task", "layers", "tau", "mode", "strength")}}
        )

    def analyze_flags(self, wildcards) -> str:
        routing, model = self.config["routing"], wildcards.model
        steering = self.config["models"][model]["steering"]["layers"] if model in self.plan.steered_models() else None
        accuracy = self.get_accuracy(wildcards)
        return cli_flags(
            {
                "english": self.english,
                "accuracy": accuracy[0] if accuracy else None,
                "tau": routing["tau"],
                "importance": routing["importance"],
                "entropy": routing["entropy"],
                "target_layers": steering,
                "task": named_words(self.get_task_generations(wildcards)),
            }
        )

    def summary_flags(self, wildcards) -> str:
        inputs = self.get_summary_inputs(wildcards)
        options = {"model": wildcards.model, "english": self.english}
        for key in ("outcome_table", "ablation_table", "cap_sweep", "divergence", "steering_table"):
            options[key] = inputs.get(key)
        if inputs["model_dir"]:
            options["model_dir"] = os.path.dirname(inputs["model_dir"][0])
        if "judgments" in inputs:
            options["judgments"] = named_words(self.get_xici("judgments")(wildcards))
            options["cap"] = self.plan.main_cap(wildcards.model)
        return cli_flags(options)

    def steering_table_flags(self) -> str:
        return cli_flags({"english": self.english, "low_resource": self.config["routing"]["low_resource"]})

    def stand_in_flags(self, wildcards, root: str = "") -> str:
        """Options of the stand-in at ``{path}`` (``root`` '/': the wildcard of a rule matching ``/{path}``)."""
        s = self.plan.stand_ins()[root + wildcards.path]
        return cli_flags({"like": s["like"], "judge": s["judge"]})

    def mirror_flags(self, wildcards, root: str = "") -> str:
        dataset = self.plan.mirrors()[root + wildcards.folder]
        d = self.config["datasets"][dataset]
        return cli_flags(
            {
                "source": d["source"],
                "languages": ",".join(self.plan.languages(dataset)),
                "seed": self.config["seed"],
                "option": key_values(d["options"]),
            },
            repeated=("option",),
        )


def _files(files: str | list[str]) -> list[str]:
    return [files] if isinstance(files, str) else list(files)


def named_words(named: dict[str, str | list[str]]) -> list[str]:
    """{name: files} -> ['NAME=PATH', ...]: the one way stages are told which dataset a file belongs to."""
    return [f"{name}={f}" for name, files in named.items() for f in _files(files)]


def flat(named_files):
    """An input function over the file lists of a {name: files} input function."""
    return lambda wildcards: [f for files in named_files(wildcards).values() for f in _files(files)]


def as_named(named_files):
    """A params function giving the same {name: files} as quoted 'NAME=PATH' words."""
    return lambda wildcards: shlex.join(named_words(named_files(wildcards)))
