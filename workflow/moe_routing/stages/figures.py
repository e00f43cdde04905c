"""Stage `figures`: the XICI study's figures (the routing study's come from `analyze`)."""

from __future__ import annotations

import argparse

from moe_routing.stages._args import add_named, single_named

HELP = "XICI figures: experts-per-layer (Appendix H), outcomes (Table 1 bars), cap-sweep (Appendix F)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    layers = sub.add_parser("experts-per-layer", help="identified experts per model layer, per dataset")
    add_named(layers, "--experts", "the experts file of each dataset")
    layers.add_argument("--cap", type=int, default=None, help="count only experts with rank <= CAP")
    layers.add_argument("--out", required=True, help="PNG/PDF path")
    outcomes = sub.add_parser("outcomes", help="all correct / mixed / all incorrect questions per dataset")
    outcomes.add_argument("--table", required=True, help="outcome_table.tsv")
    outcomes.add_argument("--out", required=True)
    sweep = sub.add_parser("cap-sweep", help="ablation metrics against the cap, pooled over datasets")
    sweep.add_argument("--metrics", nargs="+", required=True, help="ablation metrics files of every condition x cap")
    sweep.add_argument("--table", required=True, help="TSV of the pooled metrics per condition x cap")
    sweep.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    from moe_routing.xici import figures as figures_xici

    if args.figure == "experts-per-layer":
        figures_xici.experts_per_layer(single_named(args.experts, "--experts"), args.out, cap=args.cap)
    elif args.figure == "outcomes":
        figures_xici.outcomes(args.table, args.out)
    else:
        figures_xici.cap_sweep(args.metrics, args.table, args.out)
    return 0
