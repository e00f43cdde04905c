# Generation with router capture: base runs, ablation reruns and steered runs.
# One job per language by default; a model with languages_per_job > 1 (rerun_languages_per_job
# for ablation and steering reruns) gets one job per chunk of languages (rules defined below per
# chunk), which loads the model once but still writes one file per language.


for _rule, (_run, _iv, _only) in GEN_VARIANTS.items():

    rule:
        name:
            _rule
        input:
            item_file="resources/data/{dataset}/{lang}.parquet",
            model=lambda wc: PLAN.model_inputs(wc.model),
            interventions=[_iv] if _iv else [],
        output:
            f"{_run}/generations/{{lang}}.parquet",
        wildcard_constraints:
            model="|".join(SINGLE_LANG_MODELS if _rule == "generate" else SINGLE_LANG_RERUN_MODELS),
        params:
            flags=lambda wc: generation_flags(wc.model, wc.dataset),
            iv=intervention_flags(_only) if _iv else "",
            moe=lambda wc: moe(wc.model),
        resources:
            gpu=model_resource("gpu", 0),
            mem_mb=model_resource("mem_mb", 8000, per_attempt=True),
            runtime=model_resource("runtime", 60, per_attempt=True),
            batch_size=batch_size(),
        conda:
            lambda wc: conda_env(wc.model)
        log:
            f"logs/{_rule}/{_run.removeprefix('results/')}/{{lang}}.log",
        shell:
            "{params.moe} generate {params.flags} --items {input.item_file} --out {output} {params.iv} "
            "--batch-size {resources.batch_size} > {log} 2>&1"


for _name, _kind, _model, _dataset, _variant, _langs in PLAN.chunk_jobs():
    _run = run_dir(_model, _dataset, _variant)
    _iv = None
    if _kind == "ablate_generate":
        _iv = f"{_run}/interventions.parquet"
    elif _kind == "steer_generate":
        _iv = f"results/{_model}/steering/{_dataset}/interventions.parquet"

    rule:
        name:
            _name
        input:
            item_files=[f"resources/data/{_dataset}/{l}.parquet" for l in _langs],
            model=PLAN.model_inputs(_model),
            interventions=[_iv] if _iv else [],
        output:
            [f"{_run}/generations/{l}.parquet" for l in _langs],
        params:
            flags=generation_flags(_model, _dataset),
            pairs=" ".join(f"--items resources/data/{_dataset}/{l}.parquet --out {_run}/generations/{l}.parquet" for l in _langs),
            iv=(f"--interventions {_iv}" + (" --only-intervened" if _kind == "ablate_generate" else "")) if _iv else "",
            moe=moe(_model),
        resources:
            **gpu_resources(config["models"][_model]),
            batch_size=batch_size(_model),
        conda:
            conda_env(_model)
        log:
            f"logs/{_kind}/{_run.removeprefix('results/')}/{_langs[0]}-{_langs[-1]}.log",
        shell:
            "{params.moe} generate {params.flags} {params.pairs} {params.iv} --batch-size {resources.batch_size} > {log} 2>&1"
