# One page per model with the numbers of its tables (results/{model}/summary.md); the README
# quotes the demo's.


rule summary:
    input:
        unpack(JOBS.get_summary_inputs),
    output:
        report(P.SUMMARY, category="Summary"),
    params:
        moe=JOBS.moe(),
        flags=JOBS.summary_flags,
    resources:
        **SMALL_JOB,
    conda:
        JOBS.conda_env()
    log:
        P.log("summary", P.SUMMARY),
    shell:
        "{params.moe} summary {params.flags} --out {output:q} > {log:q} 2>&1"


localrules:
    summary,
