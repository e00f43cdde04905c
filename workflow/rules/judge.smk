# Judging every generation run: string/multiple-choice/number judges as small CPU jobs, the LLM
# judge (datasets with judge: llm) as GPU jobs in rules of their own (judge_llm, ...).


for _rule, _run in JUDGE_RUNS.items():
    for _suffix, _datasets in (("", STRING_JUDGED), ("_llm", LLM_JUDGED)):

        rule:
            name:
                f"{_rule}{_suffix}"
            input:
                item_file="resources/data/{dataset}/{lang}.parquet",
                generations=f"{_run}/generations/{{lang}}.parquet",
            output:
                f"{_run}/judged/{{lang}}.parquet",
            wildcard_constraints:
                dataset="|".join(_datasets),
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
