# Datasets from the hub or a local copy -> the items contract, one file per language.

LOADED_DATASETS = PLAN.datasets_of_source("demo", "items", exclude=True)

if LOADED_DATASETS:

    rule prepare:
        input:
            get_mirror,
        output:
            P.ITEMS,
        wildcard_constraints:
            dataset="|".join(LOADED_DATASETS),
        params:
            moe=moe(),
            source=lambda wc: config["datasets"][wc.dataset]["source"],
            path=lambda wc: config["datasets"][wc.dataset]["path"],
            flags=prepare_flags,
        resources:
            **SMALL_JOB,
        conda:
            conda_env()
        log:
            P.log("prepare", P.ITEMS),
        shell:
            "{params.moe} prepare --source {params.source:q} --path {params.path:q} --lang {wildcards.lang:q} "
            "--out {output:q} {params.flags} > {log:q} 2>&1"


    localrules:
        prepare,
