# The CPU demo: a synthetic multilingual fact world and a tiny MoE trained on it.

if DEMO_DATASETS:

    rule demo_world:
        output:
            data=[f"resources/data/{d}/{l}.parquet" for d in DEMO_DATASETS for l in PLAN.languages(d)],
            corpus=DEMO_CORPUS,
            world=DEMO_CORPUS.replace(".jsonl", ".world.json"),
            # the training checkpoint check reads its own copy of the fact questions, so that touching
            # one language's items file reruns that language, not the training
            check=[f"resources/demo/check/{l}.parquet" for l in DEMO_CHECK_LANGUAGES],
        params:
            flags=cli_flags({"seed": config["seed"], "languages": ",".join(DEMO_LANGUAGES), **config["demo"].get("world", {})}),
            check=DEMO_CHECK_DATASET,
            moe=MOE,
        conda:
            CONDA_MAIN
        log:
            "logs/demo_world.log",
        shell:
            "({params.moe} demo-world --out-dir resources/data --corpus {output.corpus} {params.flags} && "
            "for f in {output.check}; do cp resources/data/{params.check}/$(basename $f) $f; done) > {log} 2>&1"


if config["demo"].get("model"):

    rule train_demo:
        input:
            corpus=DEMO_CORPUS,
            check=[f"resources/demo/check/{l}.parquet" for l in DEMO_CHECK_LANGUAGES],
        output:
            f"{DEMO_MODEL_DIR}/config.json",
        params:
            out=lambda wc, output: os.path.dirname(output[0]),
            check=lambda wc, input: os.path.dirname(input.check[0]),
            flags=cli_flags({"seed": config["seed"], **config["demo"].get("train", {})}),
            moe=MOE,
        # one thread: bitwise-identical weights on rerun (and faster than two on a loaded machine)
        threads: 1
        conda:
            CONDA_MAIN
        log:
            "logs/train_demo.log",
        shell:
            "{params.moe} train-demo --corpus {input.corpus} --check-items {params.check} --out {params.out} "
            "--threads 1 {params.flags} > {log} 2>&1"
