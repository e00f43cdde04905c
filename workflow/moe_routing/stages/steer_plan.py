"""Stage `steer-plan`: task experts (Δ > τ, English domain set vs English baseline) in target layers → interventions."""

from __future__ import annotations

import argparse
import logging

HELP = "choose task experts by Δ > τ in target layers and write a steering interventions file (item_id '*')"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task-generations", "--domain-generations", dest="task_generations", nargs="+", action="extend", required=True, metavar="T.parquet", help="generations with routing of the English domain set (several files are pooled)")
    p.add_argument("--baseline-generations", nargs="+", action="extend", required=True, metavar="B.parquet", help="generations with routing of the English parallel baseline (e.g. FLORES en)")
    p.add_argument("--layers", nargs="+", required=True, help="target layers as model layer indices, e.g. '7-34', '4,5,8-10' or '7 8 9'")
    p.add_argument("--tau", type=float, required=True, help="Δ threshold: experts with Δ > τ are steered")
    p.add_argument("--mode", choices=["soft", "activate", "hard"], default="soft", help="soft: z += λ·std(z); activate (= hard): force-activation z = max(z)+ε (default soft)")
    p.add_argument("--strength", type=float, default=0.5, help="λ for soft steering (default 0.5)")
    p.add_argument("--out", required=True, metavar="I.parquet", help="interventions file to write")
    p.add_argument("--delta-out", metavar="D.tsv", help="also write Δ of every expert (layer, expert, delta)")
    p.add_argument("--lang", help="use only rows of this language (files may hold several); required when they do")


def _freq(paths, lang: str | None):
    import numpy as np
    import polars as pl

    from moe_routing import analysis as an
    from moe_routing.errors import ConfigError
    from moe_routing.io import read_frame, read_routing_metadata

    shapes, arrays = {}, []
    for path in paths:
        frame = read_frame(path, "generations", ["freq"])  # first: it names a missing file clearly
        shapes[path] = an.shape_from_metadata(read_routing_metadata(path))
        if lang is not None:
            frame = frame.filter(pl.col("lang") == lang)
        elif frame["lang"].n_unique() > 1:
            raise ConfigError(f"{path}: rows of several languages {sorted(frame['lang'].unique())}; pass --lang")
        arrays.append(an.routing_array(frame, "freq", shapes[path], True, path))
    freq = np.concatenate(arrays, axis=0)
    if freq.shape[0] == 0:
        raise ConfigError(f"{', '.join(map(str, paths))}: no rows" + (f" of language {lang!r}" if lang else ""))
    return shapes, freq


def run(args: argparse.Namespace) -> int:
    from moe_routing import analysis as an
    from moe_routing.io import write_parquet, write_tsv
    from moe_routing.steering import parse_layers, plan_steering

    task_shapes, task = _freq(args.task_generations, args.lang)
    base_shapes, base = _freq(args.baseline_generations, args.lang)
    shape = an.check_same_shape({**task_shapes, **base_shapes})
    delta = an.specialisation_delta(task, base)
    plan = plan_steering(delta, shape.moe_layers, parse_layers(args.layers), args.tau, args.mode, args.strength)
    write_parquet(plan, args.out)
    if args.delta_out:
        write_tsv(an.delta_table({"task-vs-baseline": delta}, shape.moe_layers).drop("comparison"), args.delta_out)
    log.info("%d steering intervention(s) -> %s", plan.height, args.out)
    return 0
