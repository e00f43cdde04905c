# One page per model with the numbers of its tables (results/{model}/summary.md); the README
# quotes the demo's.


rule summary:
    input:
        unpack(JOBS.get_summary_inputs),
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
    shell:
        "{params.moe} summary {params.flags} --out {output:q} > {log:q} 2>&1"


localrules:
    summary,
