"""Stage `analyze`: multilingual routing analysis tables and figures from captured generations."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from moe_routing.stages._args import add_named, group_named, number

HELP = "routing divergence from English, entropy, consistency, correlation with accuracy, language/task experts"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--generations",
        nargs="+",
        action="extend",
        required=True,
        metavar="G.parquet",
        help="generations with routing of a parallel corpus; rows are grouped by their lang column (a file may hold several languages)",
    )
    p.add_argument("--english", default="en", help="language the others are compared with (default en)")
    p.add_argument("--out-dir", required=True, help="directory for the TSV tables (names: moe_routing.core.paths.ROUTING_TABLES)")
    p.add_argument(
        "--accuracy",
        metavar="A.tsv",
        help="per-language accuracy (columns lang, accuracy) for the correlation and the Fig. 2 colours",
    )
    add_named(
        p, "--task", "generations of an English task set (task experts; its English rows, or its only language)", required=False
    )
    p.add_argument(
        "--importance",
        choices=["softmax", "topk"],
        default="softmax",
        help="expert importance compared by the divergence: softmax = the paper's Eq. 1 (mean softmax over all experts, "
        "default); topk = the public code's (per token top-k of the softmax renormalised, then averaged; needs topk_mean)",
    )
    p.add_argument(
        "--entropy",
        choices=["token", "sequence"],
        default="token",
        help="routing entropy: token = the paper's mean over tokens of H(softmax) (default); sequence = the public "
        "notebook's H of each sequence's importance distribution, averaged over sequences",
    )
    p.add_argument("--tau", nargs="+", type=number(), default=[0.3], help="Δ thresholds for expert identification (default 0.3)")
    p.add_argument(
        "--figures-dir",
        help="directory for the PNG figures (names: moe_routing.core.paths.ROUTING_FIGURES; none when left out)",
    )
    p.add_argument("--delta-layer", type=int, help="model layer shown in the Δ figure (default: the layer with the largest Δ)")
    p.add_argument(
        "--target-layers",
        nargs="+",
        help="steering target layers marked in the experts-per-layer figure, e.g. '7-34' or '7 8 9' (model layer indices)",
    )


def read_routing(paths: list[str], importance: str):
    """The rows of several generations files as one frame (``tokens`` filled in for files without
    it), and each file's routing layout."""
    import polars as pl

    from moe_routing.multilingual import analysis as an
    from moe_routing.core.io import read_frame, read_routing_metadata

    needed = an.needed_columns(importance)
    frames, shapes = [], {}
    for path in paths:
        frame = read_frame(path, "generations", needed)  # first: it names a missing file clearly
        shapes[path] = an.shape_from_metadata(read_routing_metadata(path))
        if frame.height == 0:
            raise an.AnalysisError(f"{path}: no rows")
        # every row is validated against its own file's layout before files are merged
        an.routing_array(frame, needed[0], shapes[path], True, path)
        tokens = pl.Series("tokens", an.token_counts(frame)).cast(pl.Int64)
        frames.append(frame.select("item_id", "lang", *needed).with_columns(tokens))
    return pl.concat(frames), shapes


def _task_rows(frame, name: str, english: str):
    import polars as pl

    from moe_routing.core.errors import ConfigError

    langs = sorted(set(frame["lang"].to_list()))
    if english in langs:
        return frame.filter(pl.col("lang") == english)
    if len(langs) == 1:
        return frame
    raise ConfigError(f"task set {name!r}: rows of {langs} but none of {english!r}")


def read_accuracy(path: str):
    import polars as pl

    from moe_routing.core.errors import ConfigError
    from moe_routing.core.io import read_tsv

    accuracy = read_tsv(path, required=["lang", "accuracy"])
    try:
        return accuracy.with_columns(pl.col("lang").cast(pl.String), pl.col("accuracy").cast(pl.Float64, strict=True))
    except Exception as exc:
        raise ConfigError(f"{path}: column 'accuracy' must be numeric ({exc})") from exc


def run(args: argparse.Namespace) -> int:
    from moe_routing.multilingual import analysis as an

    languages, tasks, shape, accuracy = read_inputs(args)
    res = an.analyze(languages, shape, args.english, accuracy=accuracy, tasks=tasks, taus=args.tau, entropy=args.entropy)
    write_tables(res, shape, Path(args.out_dir))
    log.info("analysis of %d languages, %d task set(s) -> %s", len(languages), len(tasks), args.out_dir)
    if args.figures_dir:
        from moe_routing.multilingual import figures as fr
        from moe_routing.multilingual.steering import parse_layers

        targets = parse_layers(args.target_layers) if args.target_layers else None
        fr.plot_analysis(
            res,
            shape,
            Path(args.figures_dir),
            english=args.english,
            accuracy=accuracy,
            entropy=args.entropy,
            taus=args.tau,
            tasks=list(tasks),
            delta_layer=args.delta_layer,
            target_layers=targets,
        )
        log.info("figures -> %s", args.figures_dir)
    return 0


def read_inputs(args: argparse.Namespace):
    """The languages of --generations, the task sets of --task, their common routing shape and the accuracy table."""
    from moe_routing.multilingual import analysis as an

    frame, shapes = read_routing(args.generations, args.importance)
    shape = an.check_same_shape(shapes)
    languages = an.split_languages(frame, shape, "--generations", args.importance)
    tasks = {}
    for name, paths in group_named(args.task).items():
        task_frame, task_shapes = read_routing(paths, args.importance)
        shapes.update(task_shapes)
        rows = _task_rows(task_frame, name, args.english)
        tasks[name] = an.language_routing(rows, an.check_same_shape(task_shapes), f"task set {name!r}", args.importance)
    shape = an.check_same_shape(shapes)
    accuracy = read_accuracy(args.accuracy) if args.accuracy else None
    return languages, tasks, shape, accuracy


def write_tables(res, shape, out: Path) -> None:
    """The tables of moe_routing.core.paths.ROUTING_TABLES an analysis has (the correlation needs the accuracy)."""
    from moe_routing.multilingual import analysis as an
    from moe_routing.core.io import write_tsv
    from moe_routing.core.paths import ROUTING_TABLES

    tables = {
        "divergence": res.divergence,
        "entropy": res.entropy,
        "consistency": res.consistency,
        "correlation": res.correlation,
        "specialisation": an.delta_table(res.deltas, shape.moe_layers),
        "language_experts": an.experts_long(res.language_experts, "language"),
        "task_experts": an.experts_long(res.task_experts, "task"),
        "overlap": res.overlap,
    }
    for name in ROUTING_TABLES:
        if tables[name] is not None:
            write_tsv(tables[name], out / f"{name}.tsv")
