# Causal ablation: deactivate each question's experts (and two baselines), re-ask, measure (Table 2, Appendix F).


rule ablation_plan:
    input:
        experts="results/{model}/{dataset}/experts.parquet",
        generations=lambda wc: base_files("generations", wc.model, wc.dataset)[:1],
    output:
        "results/{model}/{dataset}/ablation/{condition}-cap{cap}/interventions.parquet",
    params:
        flags=lambda wc: layer_flags(wc.model),
        seed=config["seed"],
        moe=MOE,
    conda:
        CONDA_MAIN
    log:
        "logs/ablation_plan/{model}/{dataset}/{condition}-cap{cap}.log",
    shell:
        "{params.moe} ablation-plan --experts {input.experts} --generations {input.generations} "
        "--condition {wildcards.condition} --cap {wildcards.cap} --seed {params.seed} "
        "{params.flags} --out {output} > {log} 2>&1"


rule ablation_metrics:
    input:
        plan="results/{model}/{dataset}/ablation/{condition}-cap{cap}/interventions.parquet",
        original=lambda wc: base_files("judged", wc.model, wc.dataset),
        ablated=lambda wc: [
            f"results/{wc.model}/{wc.dataset}/ablation/{wc.condition}-cap{wc.cap}/judged/{l}.parquet"
            for l in PLAN.languages(wc.dataset)
        ],
    output:
        "results/{model}/{dataset}/ablation/{condition}-cap{cap}/metrics.parquet",
    params:
        moe=MOE,
    conda:
        CONDA_MAIN
    log:
        "logs/ablation_metrics/{model}/{dataset}/{condition}-cap{cap}.log",
    shell:
        "{params.moe} ablation-metrics --plan {input.plan} --original {input.original} --ablated {input.ablated} "
        "--condition {wildcards.condition} --cap {wildcards.cap} --dataset {wildcards.dataset} --out {output} > {log} 2>&1"


rule ablation_table:
    input:
        metrics=lambda wc: metrics_files(wc.model, [config["models"][wc.model]["xici"]["cap"]]),
        summaries=lambda wc: [f"results/{wc.model}/{d}/xici_summary.parquet" for d in XICI_DATASETS],
        blacklists=lambda wc: [f"results/{wc.model}/{d}/blacklist.parquet" for d in XICI_DATASETS],
    output:
        report("results/{model}/ablation_table.tsv", category="XICI", caption="../report/ablation_table.rst"),
    params:
        datasets=lambda wc: " ".join(
            f"--dataset {d} results/{wc.model}/{d}/xici_summary.parquet results/{wc.model}/{d}/blacklist.parquet"
            for d in XICI_DATASETS
        ),
        moe=MOE,
    conda:
        CONDA_MAIN
    log:
        "logs/ablation_table/{model}.log",
    shell:
        "{params.moe} ablation-table {params.datasets} --metrics {input.metrics} --out {output} > {log} 2>&1"


rule cap_sweep:
    input:
        metrics=lambda wc: metrics_files(wc.model, PLAN.caps(wc.model)),
    output:
        table="results/{model}/cap_sweep.tsv",
        figure=report("results/{model}/figures/cap_sweep.png", category="XICI", caption="../report/cap_sweep.rst"),
    params:
        moe=MOE,
    conda:
        CONDA_MAIN
    log:
        "logs/cap_sweep/{model}.log",
    shell:
        "{params.moe} figures cap-sweep --metrics {input.metrics} --table {output.table} --out {output.figure} > {log} 2>&1"


rule xici_figures:
    input:
        experts=lambda wc: [f"results/{wc.model}/{d}/experts.parquet" for d in XICI_DATASETS],
        outcomes="results/{model}/outcome_table.tsv",
    output:
        layers=report("results/{model}/figures/experts_per_layer.png", category="XICI", caption="../report/experts_per_layer.rst"),
        outcomes=report("results/{model}/figures/outcomes.png", category="XICI", caption="../report/outcomes.rst"),
    params:
        cap=lambda wc: config["models"][wc.model]["xici"]["cap"],
        moe=MOE,
    conda:
        CONDA_MAIN
    log:
        "logs/xici_figures/{model}.log",
    shell:
        "({params.moe} figures experts-per-layer --experts {input.experts} --cap {params.cap} --out {output.layers} && "
        "{params.moe} figures outcomes --table {input.outcomes} --out {output.outcomes}) > {log} 2>&1"
