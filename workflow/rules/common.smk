# Shared by all rules: the stage command, input functions (get_*), option strings (*_flags) and
# resources. Paths come from moe_routing.paths (P), job lists from the Plan (PLAN); option strings
# are quoted by moe_routing.commands, file paths by Snakemake's :q.

from snakemake.settings.types import DeploymentMethod

USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
ENGLISH = config["english"]


def python_for(backend="hf"):
    """The interpreter of a stage: the job's conda environment, or the configured interpreters."""
    if USE_CONDA:
        return "python"
    main = config["python"]["main"] or sys.executable
    return (config["python"]["vllm"] or main) if backend == "vllm" else main


def moe(backend="hf"):
    return stage_prefix(python_for(backend))


def conda_env(backend="hf"):
    return "../../envs/vllm.yaml" if backend == "vllm" else "../../envs/main.yaml"


def run_model(wildcards):
    """The config block of the model of a `{run}` wildcard."""
    return config["models"][P.parse_run(wildcards.run)[0]]


# --- inputs --------------------------------------------------------------------------------
def get_chunk_items(wildcards):
    dataset = P.parse_run(wildcards.run)[1]
    return [P.items(dataset, lang) for lang in P.chunk_languages(wildcards.chunk)]


def get_mirror(wildcards):
    """A rehearsal's mirror of the dataset (`mirror: true`), which prepare reads; nothing otherwise."""
    return [folder for folder, dataset in PLAN.mirrors().items() if dataset == wildcards.dataset]


def get_model_files(wildcards):
    return PLAN.model_inputs(P.parse_run(wildcards.run)[0])


def get_run_interventions(wildcards):
    """The interventions a run applies: none (base run), an ablation plan, or a steering plan."""
    model, dataset, variant = P.parse_run(wildcards.run)
    if variant.startswith("ablation/"):
        condition, cap = variant.removeprefix("ablation/").split("-cap")
        return [P.fill(P.ABLATION_PLAN, model=model, dataset=dataset, condition=condition, cap=cap)]
    if variant == "steered":
        return [P.fill(P.STEERING_PLAN, model=model, dataset=dataset)]
    return []


def get_base(kind, dataset=None):
    """Input function: every generations or judgments file of a base run (of `dataset`, or the wildcard's)."""
    files = PLAN.generation_files if kind == "generations" else PLAN.judgment_files
    return lambda wildcards: files(wildcards.model, dataset or wildcards.dataset)


def get_xici(what):
    """{dataset: files} of every XICI dataset: its base-run judgments, or the file of a per-dataset pattern."""

    def files(wildcards):
        if what == "judgments":
            return {d: PLAN.judgment_files(wildcards.model, d) for d in XICI_DATASETS}
        return {d: [P.fill(what, model=wildcards.model, dataset=d)] for d in XICI_DATASETS}

    return files


def get_ablation_judgments(wildcards):
    variant = P.ablation_variant(wildcards.condition, wildcards.cap)
    return PLAN.judgment_files(wildcards.model, wildcards.dataset, variant)


def get_steering_judgments(variant):
    """{benchmark: judgments files} of the base or steered runs of every steering benchmark."""
    return lambda wildcards: {b: PLAN.judgment_files(wildcards.model, b, variant) for b in STEERING}


def get_metrics(caps):
    """Ablation metrics of every XICI dataset x condition, at every cap swept or at the main cap."""

    def files(wildcards):
        chosen = PLAN.caps(wildcards.model) if caps == "all" else [PLAN.main_cap(wildcards.model)]
        return [
            P.fill(P.ABLATION_METRICS, model=wildcards.model, dataset=d, condition=c, cap=cap)
            for d in XICI_DATASETS
            for c in config["xici"]["conditions"]
            for cap in chosen
        ]

    return files


def get_accuracy(wildcards):
    accuracy = config["routing"].get("accuracy")
    return [P.fill(P.ACCURACY, model=wildcards.model, dataset=accuracy)] if accuracy else []


def get_task_generations(wildcards):
    return {task: PLAN.english_generations(wildcards.model, ds) for task, ds in PLAN.tasks().items()}


def flat(named_files):
    """An input function over the file lists of a {name: files} function."""
    return lambda wildcards: [f for files in named_files(wildcards).values() for f in ([files] if isinstance(files, str) else files)]


def as_named(named_files):
    """A params function: the same {name: files} as 'NAME=PATH ...', the one way stages take named files."""

    def words(wildcards):
        pairs = named_files(wildcards).items()
        return shlex.join(f"{name}={f}" for name, files in pairs for f in ([files] if isinstance(files, str) else files))

    return words


def get_summary_inputs(wildcards):
    """The tables a model's summary reads: those its studies produce."""
    m = wildcards.model
    out = {}
    if m in PLAN.xici_models():
        out["outcome_table"] = P.fill(P.OUTCOME_TABLE, model=m)
        out["ablation_table"] = P.fill(P.ABLATION_TABLE, model=m)
        out["judgments"] = flat(get_xici("judgments"))(wildcards)
        if config["xici"]["cap_sweep"]:
            out["cap_sweep"] = P.fill(P.CAP_SWEEP, model=m)
    if m in config["routing"]["models"]:
        out["divergence"] = P.routing_table("divergence", m)
        if m in PLAN.steered_models():
            out["steering_table"] = P.fill(P.STEERING_TABLE, model=m)
    out["model_dir"] = PLAN.model_inputs(m)
    return out


def summary_flags(wildcards, input):
    m = wildcards.model
    options = {"model": m, "english": ENGLISH}
    for key in ("outcome_table", "ablation_table", "cap_sweep", "divergence", "steering_table"):
        options[key] = input.get(key)
    if input.get("model_dir"):
        options["model_dir"] = os.path.dirname(input.model_dir[0])
    if "judgments" in input.keys():
        options["judgments"] = shlex.split(as_named(get_xici("judgments"))(wildcards))
        options["cap"] = PLAN.main_cap(m)
    return cli_flags(options)


# --- options -------------------------------------------------------------------------------
def generation_flags(wildcards, input):
    model, dataset, variant = P.parse_run(wildcards.run)
    m, d = config["models"][model], config["datasets"][dataset]
    # the routing analysis' reading of the routed tokens, on the sets it analyses
    analysed = dataset in PLAN.analysed_datasets()
    prompt = config["routing"]["generation_prompt"] if analysed else "auto"
    return cli_flags(
        {
            "model": m["path"],
            "backend": m["backend"],
            "dtype": m["dtype"],
            "device": m["device"],
            "max_new_tokens": PLAN.max_new_tokens(model, dataset),
            "seed": config["seed"],
            "trust_remote_code": m["trust_remote_code"],
            "engine_arg": key_values(m["engine_args"]),
            "interventions": input.interventions[0] if input.interventions else None,
            # ablation reruns re-ask only the questions with experts
            "only_intervened": variant.startswith("ablation/"),
            "scoring": d["scoring"],
            "no_chat_template": not d["chat_template"],
            "token_scope": config["routing"]["token_scope"] if analysed else None,
            "generation_prompt": prompt == "always",
            "no_generation_prompt": prompt == "never",
        },
        repeated=("engine_arg",),
    )


def judge_flags(wildcards):
    kind = PLAN.datasets[P.parse_run(wildcards.run)[1]]["judge"]
    options = {"judge": kind}
    if kind == "llm":
        j = config["judge_model"]
        options.update(judge_model=j["path"], judge_backend=j["backend"], batch_size=j["batch_size"], dtype=j["dtype"],
                       device=j["device"])
    return cli_flags(options)


def xici_flags(wildcards):
    # experts are kept up to the largest cap swept: the rank order does not depend on the cap, and
    # each ablation plan takes rank <= its own cap
    caps = PLAN.caps(wildcards.model)
    return cli_flags({**config["models"][wildcards.model]["xici"], "cap": max(caps), "caps": caps})


def layer_flags(wildcards):
    x = config["models"][wildcards.model]["xici"]
    return cli_flags({"exclude_first": x["exclude_first"], "exclude_last": x["exclude_last"]})


def prepare_flags(wildcards):
    d = config["datasets"][wildcards.dataset]
    return cli_flags({"system": d.get("system"), "option": key_values(d["options"])}, repeated=("option",))


def steering_flags(wildcards):
    s = PLAN.steering_settings(wildcards.model, wildcards.dataset)
    keys = ("task", "layers", "tau", "mode", "strength")
    return cli_flags({"english": ENGLISH, **{k: s[k] for k in keys}})


def analyze_flags(wildcards, input):
    steering = config["models"][wildcards.model]["steering"]["layers"] if wildcards.model in PLAN.steered_models() else None
    return cli_flags(
        {
            "english": ENGLISH,
            "accuracy": input.accuracy[0] if input.accuracy else None,
            "tau": config["routing"]["tau"],
            "importance": config["routing"]["importance"],
            "entropy": config["routing"]["entropy"],
            "target_layers": steering,
            "task": [f"{name}={path}" for name, path in get_task_generations(wildcards).items()],
        }
    )


# --- resources -----------------------------------------------------------------------------
def run_resources(wildcards):
    """The `resources` block of the model of a `{run}` wildcard (GPUs, memory, runtime: moe_routing.cluster)."""
    return run_model(wildcards)["resources"]


# every job's CPUs, GPUs, memory, runtime and partition come from moe_routing.cluster: a model's (or the
# judge's) `resources` for GPU jobs, `cluster.small_job` for the rest. The tables, figures, string judges
# and prepare are `localrules` (declared beside each rule): on SLURM each would pay a round trip of
# seconds for a second of work, and prepare downloads datasets, which compute nodes often cannot.
SMALL_JOB = cluster.rule_resources(config)
# xici runs its per-question tests on two threads
XICI_RESOURCES = {"cpus": 2}


def batch_size(wildcards, attempt):
    # out of memory: each retry halves the batch (resources are re-evaluated per attempt)
    return max(1, run_model(wildcards)["batch_size"] // 2 ** (attempt - 1))
