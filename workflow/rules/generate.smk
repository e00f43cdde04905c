# Generation with router capture, one job per chunk of languages (one language unless the model
# sets languages_per_job / rerun_languages_per_job): the model loads once and writes one file.
# `run` is a run folder: the base run results/{model}/{dataset}, an ablation rerun
# .../ablation/{condition}-cap{cap} (re-asks only the questions with experts) or .../steered.


rule generate:
    input:
        item_files=get_chunk_items,
        model=get_model_files,
        interventions=get_run_interventions,
    output:
        P.GENERATIONS,
    wildcard_constraints:
        run=P.run_regex(),
    params:
        moe=lambda wc: moe(run_model(wc)["backend"]),
        flags=generation_flags,
    threads: cluster.rule_threads(config, run_resources)
    resources:
        **cluster.rule_resources(config, run_resources),
        batch_size=batch_size,
    conda:
        lambda wc: conda_env(run_model(wc)["backend"])
    log:
        P.log("generate", P.GENERATIONS),
    benchmark:
        P.benchmark("generate", P.GENERATIONS)
    shell:
        "{params.moe} generate {params.flags} --items {input.item_files:q} --out {output:q} "
        "--batch-size {resources.batch_size} > {log:q} 2>&1"
