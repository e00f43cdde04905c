# Router steering toward English task experts in the middle layers (rule generate on the steered
# run), evaluated per language.

if STEERING:

    rule steer_plan:
        input:
            specialisation=P.routing_table("specialisation"),
        output:
            P.STEERING_PLAN,
        params:
            moe=moe(),
            flags=steering_flags,
        resources:
            **SMALL_JOB,
        conda:
            conda_env()
        log:
            P.log("steer_plan", P.STEERING_PLAN),
        shell:
            "{params.moe} steer-plan --specialisation {input.specialisation:q} {params.flags} --out {output:q} > {log:q} 2>&1"

    rule steering_table:
        input:
            base=flat(get_steering_judgments("")),
            steered=flat(get_steering_judgments("steered")),
        output:
            report(P.STEERING_TABLE, category="Routing"),
        params:
            moe=moe(),
            base=as_named(get_steering_judgments("")),
            steered=as_named(get_steering_judgments("steered")),
            flags=cli_flags({"english": ENGLISH, "low_resource": config["routing"]["low_resource"]}),
        resources:
            **SMALL_JOB,
        conda:
            conda_env()
        log:
            P.log("steering_table", P.STEERING_TABLE),
        shell:
            "{params.moe} steering-table --base {params.base} --steered {params.steered} {params.flags} "
            "--out {output:q} > {log:q} 2>&1"


    localrules:
        steering_table,
