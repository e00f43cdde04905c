# Rehearsals (config/rehearsal/*.yaml): tiny stand-ins of the paper's models and small synthetic
# mirrors of its datasets in their published layouts, built here, so every rule of a paper DAG runs
# for real on CPU before any GPU-hour.

STAND_INS = PLAN.stand_ins()
MIRRORS = PLAN.mirrors()

if STAND_INS:

    rule stand_in:
        output:
            P.MODEL_CONFIG,
        log:
            P.log("stand_in", P.MODEL_CONFIG),
        wildcard_constraints:
            path="|".join(re.escape(p) for p in STAND_INS),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            flags=JOBS.stand_in_flags,
        shell:
            "{MOE} stand-in {params.flags} --out {wildcards.path:q} > {log:q} 2>&1"


if MIRRORS:

    rule mirror:
        output:
            directory("{folder}"),
        log:
            P.log("mirror", "{folder}.dir"),
        wildcard_constraints:
            folder="|".join(re.escape(f) for f in MIRRORS),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            flags=JOBS.mirror_flags,
        shell:
            "{MOE} mirror {params.flags} --out {output:q} > {log:q} 2>&1"

    localrules:
        mirror,
