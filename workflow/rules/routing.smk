# Multilingual routing analysis: divergence from English, entropy, consistency, correlation with
# accuracy, language and task experts.

ROUTING = config["routing"]

if ROUTING.get("accuracy"):

    rule accuracy:
        input:
            judgments=JOBS.get_base("judgments"),
        output:
            P.ACCURACY,
        log:
            P.log("accuracy", P.ACCURACY),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
        shell:
            "{params.moe} accuracy --judgments {input.judgments:q} --out {output:q} > {log:q} 2>&1"

    localrules:
        accuracy,


if ROUTING.get("parallel"):

    rule analyze:
        input:
            generations=JOBS.get_base("generations", ROUTING["parallel"]),
            accuracy=JOBS.get_accuracy,
            tasks=flat(JOBS.get_task_generations),
        output:
            **{name: report(path, category="Routing") for name, path in PLAN.routing_outputs().items()},
        log:
            P.log("analyze", P.ROUTING_DIR),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            flags=JOBS.analyze_flags,
            tables=lambda wc: P.fill(P.ROUTING_DIR, model=wc.model),
            figures=lambda wc: P.fill(P.ROUTING_FIGURES_DIR, model=wc.model),
        shell:
            "{params.moe} analyze --generations {input.generations:q} {params.flags} "
            "--out-dir {params.tables:q} --figures-dir {params.figures:q} > {log:q} 2>&1"
