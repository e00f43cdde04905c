# One page per model with the numbers of its tables (results/{model}/summary.md); the README
# quotes the demo's, which also holds the demo's scores against its planted truth (rule demo_score).


rule summary:
    input:
        unpack(JOBS.get_summary_inputs),
        truth_scores=lambda wc: [P.fill(P.DEMO_SCORES, model=wc.model)] if DEMO_SCORED and wc.model == DEMO_M else [],
    output:
        report(P.SUMMARY, category="Summary"),
    log:
        P.log("summary", P.SUMMARY),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
        flags=JOBS.summary_flags,
        truth=lambda wc, input: cli_flags({"truth_scores": input.truth_scores[0]}) if input.truth_scores else "",
    shell:
        "{params.moe} summary {params.flags} {params.truth} --out {output:q} > {log:q} 2>&1"


localrules:
    summary,
