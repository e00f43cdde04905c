"""`python -m moe_routing <stage> ...`: the one entry point every Snakemake rule calls.

Each stage lives in ``moe_routing/stages/<module>.py`` and exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int | None``.
Stages are imported lazily so that `--help` and light stages do not import torch.

Every failure the user can act on is one line on stderr, without a traceback, and an exit code
that says what kind it is (``moe_routing.core.errors``): 2 bad input, 74 a file the operating system
cannot read or write (disk full included), 75 out of GPU memory (retry with a smaller batch).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from moe_routing.core import faults, progress
from moe_routing.core.errors import MoeRoutingError
from moe_routing.stages._args import StageParser, check_values

# stage name on the command line -> module under moe_routing.stages
STAGES: dict[str, str] = {
    "prepare": "prepare",
    "demo-world": "demo_world",
    "build-demo": "build_demo",
    "demo-score": "demo_score",
    "stand-in": "stand_in",
    "mirror": "mirror",
    "generate": "generate",
    "judge": "judge",
    "outcome-table": "outcome_table",
    "xici": "xici",
    "ablation-plan": "ablation_plan",
    "ablation-metrics": "ablation_metrics",
    "ablation-table": "ablation_table",
    "analyze": "analyze",
    "accuracy": "accuracy",
    "steer-plan": "steer_plan",
    "steering-table": "steering_table",
    "figures": "figures",
    "summary": "summary",
}


def _load(stage: str):
    return importlib.import_module(f"moe_routing.stages.{STAGES[stage]}")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = StageParser(prog="python -m moe_routing", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    # only import the module of the stage being run, plus one-line help for the rest
    wanted = next((a for a in argv if a in STAGES), None)
    for name in STAGES:
        if wanted is None or name == wanted:
            try:
                module = _load(name)
            except ModuleNotFoundError as exc:
                if not exc.name or not exc.name.startswith("moe_routing"):
                    raise
                sub.add_parser(name, help="(not available in this build)")
                continue
            p = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(p)
        else:
            sub.add_parser(name, add_help=False)
    return parser


def _terminated(signum, frame):
    # SIGTERM (Snakemake cancelling a job, a cluster's time limit) unwinds like Ctrl-C: moe_routing.core.io's atomic
    # writer removes its temporary file on the way out; exit 128 + 15 as if killed by the signal
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    progress.quiet_library_bars()
    module = _load(args.stage)
    try:
        try:
            check_values(args)
            rc = module.run(args)
        except MoeRoutingError:
            raise
        except Exception as exc:
            if faults.is_out_of_memory(exc):
                raise faults.out_of_memory(args.stage, getattr(args, "batch_size", None)) from exc
            # a file-system fault outside moe_routing.core.io (loading or saving a model)
            raise faults.os_fault(exc) or exc
    except MoeRoutingError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return exc.exit_code
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
