# Router steering toward English task experts in the middle layers (rule generate on the steered
# run), evaluated per language.

if PLAN.steering():

    rule steer_plan:
        input:
            specialisation=P.routing_table("specialisation"),
        output:
            P.STEERING_PLAN,
        log:
            P.log("steer_plan", P.STEERING_PLAN),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            flags=JOBS.steering_flags,
        shell:
            "{params.moe} steer-plan --specialisation {input.specialisation:q} {params.flags} --out {output:q} > {log:q} 2>&1"

    rule steering_table:
        input:
            base=flat(JOBS.get_steering_judgments("")),
            steered=flat(JOBS.get_steering_judgments("steered")),
        output:
            report(P.STEERING_TABLE, category="Routing"),
        log:
            P.log("steering_table", P.STEERING_TABLE),
        conda:
            JOBS.conda_env()
        resources:
            **SMALL_JOB,
        params:
            moe=JOBS.moe(),
            base=as_named(JOBS.get_steering_judgments("")),
            steered=as_named(JOBS.get_steering_judgments("steered")),
            flags=JOBS.steering_table_flags(),
        shell:
            "{params.moe} steering-table --base {params.base} --steered {params.steered} {params.flags} "
            "--out {output:q} > {log:q} 2>&1"

    localrules:
        steering_table,
