# Datasets from the hub or a local copy -> the items contract, one file per language.

LOADED_DATASETS = PLAN.datasets_of_source("demo", "items", exclude=True)

if LOADED_DATASETS:

    rule prepare:
        input:
            JOBS.get_mirror,
        output:
            P.ITEMS,
        log:
            P.log("prepare", P.ITEMS),
        wildcard_constraints:
            dataset="|".join(LOADED_DATASETS),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            flags=JOBS.prepare_flags,
        shell:
            "{params.moe} prepare {params.flags} --lang {wildcards.lang:q} --out {output:q} > {log:q} 2>&1"

    localrules:
        prepare,
