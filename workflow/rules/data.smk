# Datasets from the hub or a local copy -> the items contract, one file per language.

if LOADED_DATASETS:

    rule prepare:
        output:
            "resources/data/{dataset}/{lang}.parquet",
        wildcard_constraints:
            dataset="|".join(LOADED_DATASETS),
        params:
            source=lambda wc: config["datasets"][wc.dataset]["source"],
            path=lambda wc: config["datasets"][wc.dataset]["path"],
            flags=dataset_prepare_flags,
            moe=MOE,
        conda:
            CONDA_MAIN
        log:
            "logs/prepare/{dataset}/{lang}.log",
        shell:
            "{params.moe} prepare --source {params.source} --path '{params.path}' --lang {wildcards.lang} "
            "--out {output} {params.flags} > {log} 2>&1"
