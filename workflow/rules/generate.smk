# Generation with router capture, one job per chunk of languages (one language unless the model
# sets languages_per_job / rerun_languages_per_job): the model loads once and writes one file.
# `run` is a run folder: the base run results/{model}/{dataset}, an ablation rerun
# .../ablation/{condition}-cap{cap} (re-asks only the questions with experts) or .../steered.


rule generate:
    input:
        item_files=JOBS.get_chunk_items,
        model=JOBS.get_model_files,
        interventions=JOBS.get_run_interventions,
    output:
        P.GENERATIONS,
    log:
        P.log("generate", P.GENERATIONS),
    benchmark:
        P.benchmark("generate", P.GENERATIONS)
    wildcard_constraints:
        run=P.run_regex(),
    conda:
        lambda wc: JOBS.conda_env(JOBS.run_model(wc)["backend"])
    threads: cluster.rule_threads(config, JOBS.run_resources)
    resources:
        **cluster.rule_resources(config, JOBS.run_resources),
        batch_size=JOBS.batch_size,
    params:
        moe=lambda wc: JOBS.moe(JOBS.run_model(wc)["backend"]),
        flags=JOBS.generation_flags,
    shell:
        "{params.moe} generate {params.flags} --items {input.item_files:q} --out {output:q} "
        "--batch-size {resources.batch_size} > {log:q} 2>&1"
