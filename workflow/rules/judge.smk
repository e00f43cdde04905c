# Judging every generation run: string/multiple-choice/number judges on CPU, the LLM judge on a GPU.


for _rule, _run in JUDGE_RUNS.items():

    rule:
        name:
            _rule
        input:
            item_file="resources/data/{dataset}/{lang}.parquet",
            generations=f"{_run}/generations/{{lang}}.parquet",
        output:
            f"{_run}/judged/{{lang}}.parquet",
        params:
            flags=judge_flags,
            moe=MOE,
        resources:
            gpu=judge_gpu,
        conda:
            CONDA_MAIN
        log:
            f"logs/{_rule}/{_run.removeprefix('results/')}/{{lang}}.log",
        shell:
            "{params.moe} judge --items {input.item_file} --generations {input.generations} --out {output} {params.flags} > {log} 2>&1"
