# Multilingual routing analysis: divergence from the pivot language, entropy, consistency,
# correlation with accuracy, language and task experts.

if ROUTING.get("accuracy"):

    rule accuracy:
        input:
            judged=lambda wc: base_files("judged", wc.model, wc.dataset),
        output:
            "results/{model}/{dataset}/accuracy.tsv",
        params:
            moe=MOE,
        conda:
            CONDA_MAIN
        log:
            "logs/accuracy/{model}/{dataset}.log",
        shell:
            "{params.moe} accuracy --judgments {input.judged} --out {output} > {log} 2>&1"


if ROUTING.get("parallel"):

    rule analyze:
        input:
            generations=lambda wc: base_files("generations", wc.model, ROUTING["parallel"]),
            accuracy=lambda wc: [f"results/{wc.model}/{ROUTING['accuracy']}/accuracy.tsv"] if ROUTING.get("accuracy") else [],
            domains=lambda wc: list(domain_generations(wc.model).values()),
        output:
            divergence=report("results/{model}/routing/divergence.tsv", category="Routing"),
            entropy=report("results/{model}/routing/entropy.tsv", category="Routing"),
            consistency=report("results/{model}/routing/consistency.tsv", category="Routing"),
        params:
            accuracy=lambda wc, input: f"--accuracy {input.accuracy}" if input.accuracy else "",
            domains=lambda wc: " ".join(f"--task {dom}={path}" for dom, path in domain_generations(wc.model).items()),
            out_dir=lambda wc: f"results/{wc.model}/routing",
            english=ENGLISH,
            tau=ROUTING["tau"],
            moe=MOE,
        conda:
            CONDA_MAIN
        log:
            "logs/analyze/{model}.log",
        shell:
            "{params.moe} analyze --generations {input.generations} --pivot {params.english} {params.accuracy} "
            "{params.domains} --tau {params.tau} --out-dir {params.out_dir} --figures-dir {params.out_dir}/figures "
            "> {log} 2>&1"
