# Shared helpers of the rules: wildcard constraints, the stage command and per-model settings.


def moe(model=None):
    """The stage command; models served by vLLM run in the vLLM environment's interpreter."""
    py = config["python"]["main"] or sys.executable
    if model is not None and config["models"][model]["backend"] == "vllm":
        py = config["python"]["vllm"] or py
    return f"{py} -m moe_routing"


MOE = moe()
CONDA_MAIN = "../../envs/main.yaml"
DEMO_DATASETS = [d for d, s in config["datasets"].items() if s["source"] == "demo"]
DEMO_CORPUS = "resources/demo/corpus.jsonl"
DEMO_LANGUAGES = list(dict.fromkeys(l for d in DEMO_DATASETS for l in PLAN.languages(d)))
# the demo model keeps the training checkpoint with the most mixed facts on this dataset
DEMO_CHECK_DATASET = next((d for d in config["xici"]["datasets"] if d in DEMO_DATASETS), None)
DEMO_CHECK_LANGUAGES = PLAN.languages(DEMO_CHECK_DATASET) if DEMO_CHECK_DATASET else []
LOADED_DATASETS = [d for d, s in config["datasets"].items() if s["source"] not in ("demo", "items")]
GEN_VARIANTS = {
    # each generation rule -> (run folder pattern, interventions pattern or None, re-ask only intervened items)
    "generate": ("results/{model}/{dataset}", None, False),
    "ablate_generate": (
        "results/{model}/{dataset}/ablation/{condition}-cap{cap}",
        "results/{model}/{dataset}/ablation/{condition}-cap{cap}/interventions.parquet",
        True,
    ),
    "steer_generate": ("results/{model}/{dataset}/steered", "results/{model}/steering/{dataset}/interventions.parquet", False),
}
# models whose jobs go one language at a time (the wildcard rules); "(?!x)x" matches nothing
SINGLE_LANG_MODELS = PLAN.single_language_models(reruns=False) or ["(?!x)x"]
SINGLE_LANG_RERUN_MODELS = PLAN.single_language_models(reruns=True) or ["(?!x)x"]
JUDGE_RUNS = {
    "judge": "results/{model}/{dataset}",
    "ablate_judge": "results/{model}/{dataset}/ablation/{condition}-cap{cap}",
    "steer_judge": "results/{model}/{dataset}/steered",
}
STRING_JUDGED = [d for d, s in config["datasets"].items() if s["judge"] != "llm"] or ["(?!x)x"]
LLM_JUDGED = [d for d, s in config["datasets"].items() if s["judge"] == "llm"] or ["(?!x)x"]
XICI_DATASETS = config["xici"]["datasets"]
ROUTING = config["routing"]
ENGLISH = config["english"]
STEERING = {s["benchmark"]: s for s in ROUTING.get("steering", [])}
DEMO_MODEL_DIR = config["models"][config["demo"]["model"]]["path"] if config["demo"].get("model") else None


def gpu_resources(settings):
    """Snakemake resources for a GPU job from a model's (or the judge's) `resources` block."""
    res = dict(settings.get("resources", {}))
    out = {"gpu": res.get("gpu", 0)}
    for key in ("gpu_model", "cpus_per_gpu", "slurm_partition", "slurm_extra"):
        if key in res:
            out[key] = res[key]
    for key in ("mem_mb", "runtime"):
        if key in res:
            out[key] = (lambda base: lambda wc, attempt: base * attempt)(res[key])
    return out


def layer_flags(model):
    x = config["models"][model]["xici"]
    return f"--exclude-first {x['exclude_first']} --exclude-last {x['exclude_last']}"


def xici_flags(model):
    x = config["models"][model]["xici"]
    return (
        f"--exclude-first {x['exclude_first']} --exclude-last {x['exclude_last']} "
        f"--alpha {x['alpha']} --tau {x['tau']} "
        f"--blacklist-top {x['blacklist_top']} --blacklist-share {x['blacklist_share']}"
    )


def generation_flags(model, dataset):
    m = config["models"][model]
    flags = {
        "backend": m["backend"],
        "dtype": m["dtype"],
        "device": m["device"],
        "max_new_tokens": PLAN.max_new_tokens(model, dataset),
        "seed": config["seed"],
        "trust_remote_code": m["trust_remote_code"],
        "engine_arg": [f"{k}={v}" for k, v in m.get("engine_args", {}).items()],
    }
    return f"--model '{m['path']}' {cli_flags(flags)}"


def batch_size(model=None):
    # out of memory: each retry halves the batch (resources are re-evaluated per attempt)
    def size(wc, attempt):
        base = config["models"][model or wc.model]["batch_size"]
        return max(1, base // 2 ** (attempt - 1))

    return size


def intervention_flags(only_intervened):
    # a factory, not a lambda in the loop below: loop variables would bind late
    only = " --only-intervened" if only_intervened else ""
    return lambda wc, input: f"--interventions {input.interventions}{only}"


def model_resource(key, default=None, per_attempt=False):
    # memory and runtime grow with each retry (out of memory, time limit)
    def value(wc, attempt):
        v = config["models"][wc.model]["resources"].get(key, default)
        return v * attempt if per_attempt else v

    return value


def judge_flags(wc):
    return judge_flags_for(wc.dataset)


def judge_flags_for(dataset):
    kind = config["datasets"][dataset]["judge"]
    flags = f"--judge {kind}"
    if kind == "llm":
        j = config["judge_model"]
        more = cli_flags({"judge_model": j["path"], "judge_backend": j["backend"], "batch_size": j["batch_size"]})
        flags = f"{flags} {more}"
    return flags


def judge_gpu(wc):
    return judge_gpu_for(wc.dataset)


def judge_gpu_for(dataset):
    if config["datasets"][dataset]["judge"] != "llm":
        return 0
    return config["judge_model"].get("resources", {}).get("gpu", 0)


def base_files(kind, model, dataset):
    """All languages' generations or judgments of a base run."""
    return [f"results/{model}/{dataset}/{kind}/{l}.parquet" for l in PLAN.languages(dataset)]


def metrics_files(model, caps):
    return [
        f"results/{model}/{d}/ablation/{c}-cap{cap}/metrics.parquet"
        for d in XICI_DATASETS
        for c in config["xici"]["conditions"]
        for cap in caps
    ]


def domain_generations(model):
    return {dom: f"results/{model}/{ds}/generations/{ENGLISH}.parquet" for dom, ds in ROUTING["domains"].items()}


def steering_settings(model, benchmark):
    """The model's steering block, overridden by the benchmark's own tau/mode/strength."""
    s = dict(config["models"][model]["steering"])
    s.update({k: v for k, v in STEERING[benchmark].items() if k in ("tau", "mode", "strength")})
    s.update(s.pop("benchmarks", {}).get(benchmark, {}))
    return s


def conda_env(model):
    """With --sdm conda: vLLM-served models generate in envs/vllm.yaml, everything else in envs/main.yaml."""
    return "../../envs/vllm.yaml" if config["models"][model]["backend"] == "vllm" else CONDA_MAIN


def dataset_prepare_flags(wc):
    d = config["datasets"][wc.dataset]
    return prepare_flags(d.get("options", {}), d.get("system"))


def steered_files(model, benchmark):
    return [f"results/{model}/{benchmark}/steered/judged/{l}.parquet" for l in PLAN.languages(benchmark)]
