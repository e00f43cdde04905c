# XICI identification: outcomes per question (Table 1) and the experts of each mixed question.


rule outcome_table:
    input:
        judged=lambda wc: [f for d in XICI_DATASETS for f in base_files("judged", wc.model, d)],
    output:
        report("results/{model}/outcome_table.tsv", category="XICI", caption="../report/outcome_table.rst"),
    params:
        groups=lambda wc: " ".join(f"--dataset {d} " + " ".join(base_files("judged", wc.model, d)) for d in XICI_DATASETS),
        english=ENGLISH,
        moe=MOE,
    conda:
        CONDA_MAIN
    log:
        "logs/outcome_table/{model}.log",
    shell:
        "{params.moe} outcome-table {params.groups} --english {params.english} --out {output} > {log} 2>&1"


rule xici:
    input:
        generations=lambda wc: base_files("generations", wc.model, wc.dataset),
        judged=lambda wc: base_files("judged", wc.model, wc.dataset),
    output:
        experts="results/{model}/{dataset}/experts.parquet",
        summary="results/{model}/{dataset}/xici_summary.parquet",
        blacklist="results/{model}/{dataset}/blacklist.parquet",
    params:
        flags=lambda wc: xici_flags(wc.model),
        # rank order does not depend on the cap: keep experts up to the largest cap swept,
        # each ablation plan takes rank <= its own cap
        cap=lambda wc: max(PLAN.caps(wc.model)),
        moe=MOE,
    threads: 2
    conda:
        CONDA_MAIN
    log:
        "logs/xici/{model}/{dataset}.log",
    shell:
        "{params.moe} xici --generations {input.generations} --judgments {input.judged} "
        "--out {output.experts} --summary {output.summary} --blacklist {output.blacklist} "
        "{params.flags} --cap {params.cap} --workers {threads} > {log} 2>&1"
