# The CPU demo: a synthetic multilingual fact world and a tiny MoE constructed with planted experts
# (moe_routing.demo.model), whose planted truth the demo's results are scored against (demo_score).

DEMO_DATASETS = PLAN.datasets_of_source("demo")
DEMO_LANGUAGES = list(dict.fromkeys(l for d in DEMO_DATASETS for l in PLAN.languages(d)))
# demo-world --datasets: each configured demo dataset with its languages
DEMO_DATASET_LANGUAGES = [f"{d}={','.join(PLAN.languages(d))}" for d in DEMO_DATASETS]

if DEMO_DATASETS:

    rule demo_world:
        output:
            data=[P.items(d, l) for d in DEMO_DATASETS for l in PLAN.languages(d)],
            corpus=P.DEMO_CORPUS,
            world=P.DEMO_WORLD,
        log:
            P.log("demo_world"),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            flags=cli_flags(
                {
                    "seed": config["seed"],
                    "languages": ",".join(DEMO_LANGUAGES),
                    "datasets": DEMO_DATASET_LANGUAGES,
                    **config["demo"]["world"],
                }
            ),
            # the items root: resources/data of resources/data/{dataset}/{lang}.parquet
            items_root=lambda wc, output: os.path.dirname(os.path.dirname(output.data[0])),
        shell:
            "{params.moe} demo-world --out-dir {params.items_root:q} --corpus {output.corpus:q} {params.flags} > {log:q} 2>&1"


if config["demo"].get("model"):
    DEMO_MODEL = config["models"][config["demo"]["model"]]["path"]

    rule build_demo:
        input:
            # the world alone (the items are rebuilt from it): a damaged items file reruns its language only
            world=P.DEMO_WORLD,
        output:
            config=P.fill(P.MODEL_CONFIG, path=DEMO_MODEL),
            weights=P.fill(P.DEMO_WEIGHTS, path=DEMO_MODEL),
            truth=P.fill(P.DEMO_TRUTH, path=DEMO_MODEL),
        log:
            P.log("build_demo"),
        conda:
            JOBS.conda_env()
        # one thread: the self-check runs every demo prompt once
        threads: 1
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            out=lambda wc, output: os.path.dirname(output.config),
            flags=cli_flags({"seed": config["seed"], "english": config["english"], **config["demo"]["build"]}),
        shell:
            "{params.moe} build-demo --world {input.world:q} --out {params.out:q} " "{params.flags} > {log:q} 2>&1"


# The demo's results against the planted truth (moe_routing.demo.score): XICI precision and recall by
# cap, the planted experts' own ablation (the ceiling), the routing study's experts and divergence,
# the steering effect with its interval. summary.md quotes it.
DEMO_XICI = [d for d in config["xici"]["datasets"] if d in DEMO_DATASETS]
DEMO_SCORED = (
    config["demo"].get("model")
    and config["demo"]["model"] in PLAN.xici_models()
    and config["demo"]["model"] in PLAN.steered_models()
    and DEMO_XICI
)

if DEMO_SCORED:
    DEMO_M = config["demo"]["model"]
    DEMO_D = DEMO_XICI[0]
    DEMO_BENCH = next(iter(PLAN.steering()))
    DEMO_CAP = PLAN.main_cap(DEMO_M)

    rule demo_score:
        input:
            truth=P.fill(P.DEMO_TRUTH, path=DEMO_MODEL),
            weights=P.fill(P.DEMO_WEIGHTS, path=DEMO_MODEL),
            questions=[P.items(DEMO_D, l) for l in PLAN.languages(DEMO_D)],
            judgments=PLAN.judgment_files(DEMO_M, DEMO_D),
            experts=P.fill(P.EXPERTS, model=DEMO_M, dataset=DEMO_D),
            xici_summary=P.fill(P.XICI_SUMMARY, model=DEMO_M, dataset=DEMO_D),
            xici_plan=P.fill(P.ABLATION_PLAN, model=DEMO_M, dataset=DEMO_D, condition="xici", cap=DEMO_CAP),
            cap_sweep=P.fill(P.CAP_SWEEP, model=DEMO_M),
            language_experts=P.routing_table("language_experts", DEMO_M),
            task_experts=P.routing_table("task_experts", DEMO_M),
            divergence=P.routing_table("divergence", DEMO_M),
            steering_base=PLAN.judgment_files(DEMO_M, DEMO_BENCH),
            steering_steered=PLAN.judgment_files(DEMO_M, DEMO_BENCH, "steered"),
        output:
            report(P.fill(P.DEMO_SCORES, model=DEMO_M), category="Summary"),
        log:
            P.log("demo_score"),
        conda:
            JOBS.conda_env()
        threads: 1
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            model=lambda wc, input: os.path.dirname(input.weights),
            flags=cli_flags(
                {
                    "dataset": DEMO_D,
                    "caps": ",".join(str(c) for c in PLAN.caps(DEMO_M)),
                    "main_cap": DEMO_CAP,
                    "exclude_first": config["models"][DEMO_M]["xici"]["exclude_first"],
                    "exclude_last": config["models"][DEMO_M]["xici"]["exclude_last"],
                    "judge": config["datasets"][DEMO_D]["judge"],
                    "max_new_tokens": PLAN.max_new_tokens(DEMO_M, DEMO_D),
                    "tau": config["routing"]["tau"],
                    "english": config["english"],
                }
            ),
        shell:
            "{params.moe} demo-score --truth {input.truth:q} --model {params.model:q} --items {input.questions:q} "
            "--judgments {input.judgments:q} --experts {input.experts:q} --xici-summary {input.xici_summary:q} "
            "--xici-plan {input.xici_plan:q} --cap-sweep {input.cap_sweep:q} --language-experts {input.language_experts:q} "
            "--task-experts {input.task_experts:q} --divergence {input.divergence:q} "
            "--steering-base {input.steering_base:q} --steering-steered {input.steering_steered:q} "
            "{params.flags} --out {output:q} > {log:q} 2>&1"
