# The CPU demo: a synthetic multilingual fact world and a tiny MoE trained on it.

DEMO_DATASETS = PLAN.datasets_of_source("demo")
DEMO_LANGUAGES = list(dict.fromkeys(l for d in DEMO_DATASETS for l in PLAN.languages(d)))
# demo-world --datasets: each configured demo dataset with its languages
DEMO_DATASET_LANGUAGES = [f"{d}={','.join(PLAN.languages(d))}" for d in DEMO_DATASETS]
# the demo model keeps the training checkpoint with the most mixed facts on this dataset
DEMO_CHECK_DATASET = next((d for d in config["xici"]["datasets"] if d in DEMO_DATASETS), None)
DEMO_CHECK = [P.fill(P.DEMO_CHECK, lang=l) for l in PLAN.languages(DEMO_CHECK_DATASET)] if DEMO_CHECK_DATASET else []

if DEMO_DATASETS:

    rule demo_world:
        output:
            data=[P.items(d, l) for d in DEMO_DATASETS for l in PLAN.languages(d)],
            corpus=P.DEMO_CORPUS,
            world=P.DEMO_WORLD,
            check=DEMO_CHECK,
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
            check_dataset=DEMO_CHECK_DATASET or "",
        shell:
            "{params.moe} demo-world --out-dir {params.items_root:q} --corpus {output.corpus:q} {params.flags} "
            "--check-dataset {params.check_dataset:q} --check-out {output.check:q} > {log:q} 2>&1"


if config["demo"].get("model"):

    rule train_demo:
        input:
            corpus=P.DEMO_CORPUS,
            check=DEMO_CHECK,
        output:
            P.fill(P.MODEL_CONFIG, path=config["models"][config["demo"]["model"]]["path"]),
        log:
            P.log("train_demo"),
        conda:
            JOBS.conda_env()
        # one thread: bitwise-identical weights on rerun (and faster than two on a loaded machine)
        threads: 1
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            out=lambda wc, output: os.path.dirname(output[0]),
            flags=cli_flags({"seed": config["seed"], **config["demo"]["train"]}),
        shell:
            "{params.moe} train-demo --corpus {input.corpus:q} --check-items {input.check:q} --out {params.out:q} "
            "--threads 1 {params.flags} > {log:q} 2>&1"
