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
                model="|".join(SINGLE_LANG_MODELS if _rule == "judge" else SINGLE_LANG_RERUN_MODELS),
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


# grouped models (languages_per_job > 1): one judge job per generation chunk, loading an LLM judge once
for _name, _kind, _model, _dataset, _variant, _langs in PLAN.chunk_jobs():
    _run = run_dir(_model, _dataset, _variant)
    _judge_kind = _kind.replace("generate", "judge") + ("_llm" if _dataset in LLM_JUDGED else "")

    rule:
        name:
            _name.replace(_kind, _judge_kind, 1)
        input:
            item_files=[f"resources/data/{_dataset}/{l}.parquet" for l in _langs],
            generations=[f"{_run}/generations/{l}.parquet" for l in _langs],
        output:
            [f"{_run}/judged/{l}.parquet" for l in _langs],
        params:
            flags=judge_flags_for(_dataset),
            pairs=" ".join(
                f"--items resources/data/{_dataset}/{l}.parquet --generations {_run}/generations/{l}.parquet "
                f"--out {_run}/judged/{l}.parquet"
                for l in _langs
            ),
            moe=MOE,
        resources:
            gpu=judge_gpu_for(_dataset),
        conda:
            CONDA_MAIN
        log:
            f"logs/{_judge_kind}/{_run.removeprefix('results/')}/{_langs[0]}-{_langs[-1]}.log",
        shell:
            "{params.moe} judge {params.pairs} {params.flags} > {log} 2>&1"
