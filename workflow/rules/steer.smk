# Router steering toward English task experts in the middle layers, evaluated per language.

if STEERING:

    rule steer_plan:
        input:
            domain=lambda wc: domain_generations(wc.model)[STEERING[wc.dataset]["domain"]],
            baseline=lambda wc: f"results/{wc.model}/{ROUTING['parallel']}/generations/{ENGLISH}.parquet",
        output:
            "results/{model}/steering/{dataset}/interventions.parquet",
        params:
            flags=lambda wc: cli_flags(
                {k: v for k, v in steering_settings(wc.model, wc.dataset).items() if k in ("layers", "tau", "mode", "strength")}
            ),
            moe=MOE,
        conda:
            CONDA_MAIN
        log:
            "logs/steer_plan/{model}/{dataset}.log",
        shell:
            "{params.moe} steer-plan --domain-generations {input.domain} --baseline-generations {input.baseline} "
            "{params.flags} --out {output} > {log} 2>&1"

    rule steering_table:
        input:
            base=lambda wc: [f for b in STEERING for f in base_files("judged", wc.model, b)],
            steered=lambda wc: [f for b in STEERING for f in steered_files(wc.model, b)],
        output:
            report("results/{model}/steering_table.tsv", category="Routing"),
        params:
            groups=lambda wc: " ".join(
                f"--benchmark {b} --base {' '.join(base_files('judged', wc.model, b))} "
                f"--steered {' '.join(steered_files(wc.model, b))}"
                for b in STEERING
            ),
            low=" ".join(ROUTING.get("low_resource", [])),
            english=ENGLISH,
            moe=MOE,
        conda:
            CONDA_MAIN
        log:
            "logs/steering_table/{model}.log",
        shell:
            "{params.moe} steering-table {params.groups} --pivot {params.english} --low-resource {params.low} "
            "--out {output} > {log} 2>&1"
