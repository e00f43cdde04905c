# The CPU demo: a synthetic multilingual fact world and a tiny MoE trained on it.

if DEMO_DATASETS:

    rule demo_world:
        output:
            data=[f"resources/data/{d}/{l}.parquet" for d in DEMO_DATASETS for l in PLAN.languages(d)],
            corpus=DEMO_CORPUS,
        params:
            flags=cli_flags({"seed": config["seed"], **config["demo"].get("world", {})}),
            moe=MOE,
        conda:
            CONDA_MAIN
        log:
            "logs/demo_world.log",
        shell:
            "{params.moe} demo-world --out-dir resources/data --corpus {output.corpus} {params.flags} > {log} 2>&1"


if config["demo"].get("model"):

    rule train_demo:
        input:
            corpus=DEMO_CORPUS,
        output:
            f"{DEMO_MODEL_DIR}/config.json",
        params:
            out=lambda wc, output: os.path.dirname(output[0]),
            flags=cli_flags({"seed": config["seed"], **config["demo"].get("train", {})}),
            moe=MOE,
        threads: workflow.cores
        conda:
            CONDA_MAIN
        log:
            "logs/train_demo.log",
        shell:
            "{params.moe} train-demo --corpus {input.corpus} --out {params.out} {params.flags} > {log} 2>&1"
