# XICI identification: outcomes per question (Table 1) and the experts of each mixed question.


rule outcome_table:
    input:
        flat(JOBS.get_xici("judgments")),
    output:
        report(P.OUTCOME_TABLE, category="XICI", caption="../report/outcome_table.rst"),
    log:
        P.log("outcome_table", P.OUTCOME_TABLE),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
        judgments=as_named(JOBS.get_xici("judgments")),
        english=config["english"],
    shell:
        "{params.moe} outcome-table --judgments {params.judgments} --english {params.english:q} "
        "--out {output:q} > {log:q} 2>&1"


localrules:
    outcome_table,


rule xici:
    input:
        generations=JOBS.get_base("generations"),
        judgments=JOBS.get_base("judgments"),
    output:
        experts=P.EXPERTS,
        summary=P.XICI_SUMMARY,
        blacklist=P.BLACKLIST,
        sweep=report(P.XICI_SWEEP, category="XICI", caption="../report/xici_sweep.rst"),
    log:
        P.log("xici", P.EXPERTS),
    conda:
        JOBS.conda_env()
    threads: cluster.rule_threads(config, XICI_RESOURCES)
    resources:
        **cluster.rule_resources(config, XICI_RESOURCES),
    params:
        moe=JOBS.moe(),
        flags=JOBS.xici_flags,
    shell:
        "{params.moe} xici --generations {input.generations:q} --judgments {input.judgments:q} "
        "--out {output.experts:q} --summary {output.summary:q} --blacklist {output.blacklist:q} "
        "--sweep-out {output.sweep:q} {params.flags} --workers {threads} > {log:q} 2>&1"


rule xici_figures:
    input:
        experts=flat(JOBS.get_xici(P.EXPERTS)),
        outcomes=P.OUTCOME_TABLE,
    output:
        layers=report(P.EXPERTS_FIGURE, category="XICI", caption="../report/experts_per_layer.rst"),
        outcomes=report(P.OUTCOMES_FIGURE, category="XICI", caption="../report/outcomes.rst"),
    log:
        P.log("xici_figures", P.EXPERTS_FIGURE),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
        experts=as_named(JOBS.get_xici(P.EXPERTS)),
        cap=lambda wc: PLAN.main_cap(wc.model),
    shell:
        "({params.moe} figures experts-per-layer --experts {params.experts} --cap {params.cap} --out {output.layers:q} && "
        "{params.moe} figures outcomes --table {input.outcomes:q} --out {output.outcomes:q}) > {log:q} 2>&1"


localrules:
    xici_figures,
