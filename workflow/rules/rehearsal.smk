# Rehearsals (config/rehearsal/*.yaml): tiny stand-ins of the paper's models and small synthetic
# mirrors of its datasets in their published layouts, built here, so every rule of a paper DAG runs
# for real on CPU before any GPU-hour.
# Snakemake fills a log pattern as it is, so logs/stand_in/{path}/... would hold `//` for a folder at an
# absolute path: those match rules of their own (*_absolute) whose patterns start with the `/` and whose
# wildcard is the path without it (P.at_root, P.under_root).

STAND_INS = PLAN.stand_ins()
MIRRORS = PLAN.mirrors()

if STAND_INS:

    rule stand_in:
        output:
            P.MODEL_CONFIG,
        log:
            P.log("stand_in", P.MODEL_CONFIG),
        wildcard_constraints:
            path=P.alternatives(p for p in STAND_INS if not P.under_root(p)),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            flags=JOBS.stand_in_flags,
            # the model folder (an output's, so not part of the job's recorded params)
            out=lambda wc, output: os.path.dirname(output[0]),
        shell:
            "{params.moe} stand-in {params.flags} --out {params.out:q} > {log:q} 2>&1"


if any(P.under_root(p) for p in STAND_INS):

    use rule stand_in as stand_in_absolute with:
        output:
            P.at_root(P.MODEL_CONFIG),
        log:
            P.log("stand_in", P.MODEL_CONFIG),
        wildcard_constraints:
            path=P.alternatives(P.under_root(p) for p in STAND_INS if P.under_root(p)),
        params:
            flags=lambda wc: JOBS.stand_in_flags(wc, root="/"),


if MIRRORS:

    rule mirror:
        output:
            directory("{folder}"),
        log:
            P.log("mirror", "{folder}.dir"),
        wildcard_constraints:
            folder=P.alternatives(f for f in MIRRORS if not P.under_root(f)),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            flags=JOBS.mirror_flags,
        shell:
            "{params.moe} mirror {params.flags} --out {output:q} > {log:q} 2>&1"

    localrules:
        mirror,


if any(P.under_root(f) for f in MIRRORS):

    use rule mirror as mirror_absolute with:
        output:
            directory(P.at_root("{folder}")),
        log:
            P.log("mirror", "{folder}.dir"),
        wildcard_constraints:
            folder=P.alternatives(P.under_root(f) for f in MIRRORS if P.under_root(f)),
        params:
            flags=lambda wc: JOBS.mirror_flags(wc, root="/"),

    localrules:
        mirror_absolute,
