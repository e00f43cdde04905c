# Judging every generation run, one job per chunk: string, multiple-choice and number judges as
# small CPU jobs (judge); datasets with `judge: llm` go to judge_llm, GPU jobs of their own, so
# cluster profiles give GPUs to them only.

LLM_JUDGED = PLAN.judged_by("llm")
JUDGE_MODEL = config.get("judge_model") or {}


rule judge:
    input:
        item_files=JOBS.get_chunk_items,
        generations=P.GENERATIONS,
    output:
        P.JUDGMENTS,
    log:
        P.log("judge", P.JUDGMENTS),
    wildcard_constraints:
        run=P.run_regex(),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
        flags=JOBS.judge_flags,
    shell:
        "{params.moe} judge --items {input.item_files:q} --generations {input.generations:q} --out {output:q} "
        "{params.flags} > {log:q} 2>&1"


localrules:
    judge,


if LLM_JUDGED:

    use rule judge as judge_llm with:
        input:
            item_files=JOBS.get_chunk_items,
            generations=P.GENERATIONS,
            model=PLAN.judge_model_inputs(),
        log:
            P.log("judge_llm", P.JUDGMENTS),
        wildcard_constraints:
            run=P.run_regex(LLM_JUDGED),
        conda:
            JOBS.conda_env(JUDGE_MODEL["backend"])
        threads: cluster.rule_threads(config, JUDGE_MODEL["resources"])
        resources:
            **cluster.rule_resources(config, JUDGE_MODEL["resources"]),
        params:
            moe=JOBS.moe(JUDGE_MODEL["backend"]),

    ruleorder: judge_llm > judge
