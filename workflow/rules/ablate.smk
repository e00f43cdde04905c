# Causal ablation: deactivate each question's experts (and two baselines), re-ask (rule generate on
# the ablation run), measure (Table 2, Appendix F).


rule ablation_plan:
    input:
        experts=P.EXPERTS,
        generations=lambda wc: PLAN.generation_files(wc.model, wc.dataset)[:1],
    output:
        P.ABLATION_PLAN,
    log:
        P.log("ablation_plan", P.ABLATION_PLAN),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
        flags=JOBS.layer_flags,
        seed=config["seed"],
    shell:
        "{params.moe} ablation-plan --experts {input.experts:q} --generations {input.generations:q} "
        "--condition {wildcards.condition} --cap {wildcards.cap} --seed {params.seed} "
        "{params.flags} --out {output:q} > {log:q} 2>&1"


rule ablation_metrics:
    input:
        plan=P.ABLATION_PLAN,
        original=JOBS.get_base("judgments"),
        ablated=JOBS.get_ablation_judgments,
    output:
        P.ABLATION_METRICS,
    log:
        P.log("ablation_metrics", P.ABLATION_METRICS),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
    shell:
        "{params.moe} ablation-metrics --plan {input.plan:q} --original {input.original:q} --ablated {input.ablated:q} "
        "--condition {wildcards.condition} --cap {wildcards.cap} --dataset {wildcards.dataset} --out {output:q} > {log:q} 2>&1"


rule ablation_table:
    input:
        summaries=flat(JOBS.get_xici(P.XICI_SUMMARY)),
        blacklists=flat(JOBS.get_xici(P.BLACKLIST)),
        metrics=JOBS.get_metrics("main"),
    output:
        report(P.ABLATION_TABLE, category="XICI", caption="../report/ablation_table.rst"),
    log:
        P.log("ablation_table", P.ABLATION_TABLE),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
        summaries=as_named(JOBS.get_xici(P.XICI_SUMMARY)),
        blacklists=as_named(JOBS.get_xici(P.BLACKLIST)),
    shell:
        "{params.moe} ablation-table --summary {params.summaries} --blacklist {params.blacklists} "
        "--metrics {input.metrics:q} --out {output:q} > {log:q} 2>&1"


localrules:
    ablation_table,


rule cap_sweep:
    input:
        metrics=JOBS.get_metrics("all"),
    output:
        table=report(P.CAP_SWEEP, category="XICI", caption="../report/cap_sweep.rst"),
        figure=report(P.CAP_SWEEP_FIGURE, category="XICI", caption="../report/cap_sweep.rst"),
    log:
        P.log("cap_sweep", P.CAP_SWEEP),
    conda:
        JOBS.conda_env()
    resources:
        **SMALL_JOB,
    params:
        moe=JOBS.moe(),
    shell:
        "{params.moe} figures cap-sweep --metrics {input.metrics:q} --table {output.table:q} --out {output.figure:q} > {log:q} 2>&1"


localrules:
    cap_sweep,
