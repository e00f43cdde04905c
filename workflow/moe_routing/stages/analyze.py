"""Stage `analyze`: multilingual routing analysis tables and figures from captured generations."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from moe_routing.stages._args import add_named, single_named

HELP = "routing divergence from English, entropy, consistency, correlation with accuracy, language/task experts"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generations", nargs="+", action="extend", required=True, metavar="G.parquet", help="generations with routing of a parallel corpus, one file per language")
    p.add_argument("--english", default="en", help="language the others are compared with (default en)")
    p.add_argument("--out-dir", required=True, help="directory for the TSV tables (names: moe_routing.paths.ROUTING_TABLES)")
    p.add_argument("--accuracy", metavar="A.tsv", help="per-language accuracy (columns lang, accuracy) for the correlation and the Fig. 2 colours")
    add_named(p, "--task", "generations of an English task set (task experts)", required=False)
    p.add_argument("--tau", nargs="+", type=float, default=[0.3], help="Δ thresholds for expert identification (default 0.3)")
    p.add_argument("--figures-dir", help="directory for the PNG figures (none when left out)")
    p.add_argument("--delta-layer", type=int, help="model layer shown in the Δ figure (default: the layer with the largest Δ)")
    p.add_argument("--target-layers", nargs="+", help="steering target layers marked in the experts-per-layer figure, e.g. '7-34' or '7 8 9' (model layer indices)")


def run(args: argparse.Namespace) -> int:
    from moe_routing import analysis as an
    from moe_routing.errors import ConfigError
    from moe_routing.io import read_frame, read_routing_metadata, read_tsv, write_tsv
    from moe_routing.paths import ROUTING_TABLES
    from moe_routing.steering import parse_layers

    needed = ["softmax_mean", "freq", "entropy", "consistency"]
    shapes, languages = {}, {}
    for path in args.generations:
        frame = read_frame(path, "generations", needed)  # first: it names a missing file clearly
        shape = an.shape_from_metadata(read_routing_metadata(path))
        shapes[path] = shape
        lr = an.language_routing(frame, shape, path)
        if lr.lang in languages:
            raise ConfigError(f"{path}: language {lr.lang!r} given twice in --generations")
        languages[lr.lang] = lr
    tasks = {}
    for name, path in single_named(args.task, "--task").items():
        frame = read_frame(path, "generations", needed)
        shapes[path] = an.shape_from_metadata(read_routing_metadata(path))
        tasks[name] = an.language_routing(frame, shapes[path], path)
    shape = an.check_same_shape(shapes)

    accuracy = None
    if args.accuracy:
        import polars as pl

        accuracy = read_tsv(args.accuracy)
        missing = {"lang", "accuracy"} - set(accuracy.columns)
        if missing:
            raise ConfigError(f"{args.accuracy}: missing column(s) {sorted(missing)}; has {accuracy.columns}")
        try:
            accuracy = accuracy.with_columns(pl.col("lang").cast(pl.String), pl.col("accuracy").cast(pl.Float64, strict=True))
        except Exception as exc:
            raise ConfigError(f"{args.accuracy}: column 'accuracy' must be numeric ({exc})") from exc

    res = an.analyze(languages, shape, args.english, accuracy=accuracy, tasks=tasks, taus=args.tau)
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
    out = Path(args.out_dir)
    for name in ROUTING_TABLES:
        if tables[name] is not None:
            write_tsv(tables[name], out / f"{name}.tsv")
    log.info("analysis of %d languages, %d task set(s) -> %s", len(languages), len(tasks), out)

    if args.figures_dir:
        from moe_routing import figures_routing as fr

        figs = Path(args.figures_dir)
        # file names: moe_routing.paths.ROUTING_FIGURES
        fr.plot_divergence(res.divergence, figs / "divergence.png", accuracy, args.english)
        fr.plot_layer_metric(res.entropy, figs / "entropy.png", "mean routing entropy (nats)", "Routing entropy per layer", args.english)
        fr.plot_layer_metric(res.consistency, figs / "consistency.png", "token-pair top-k Jaccard", "Token routing consistency per layer", args.english)
        lang_cmp = [k for k in res.deltas if not any(k == f"{t}-vs-{args.english}" for t in tasks)]
        comparison = lang_cmp[0] if lang_cmp else next(iter(res.deltas), None)
        if comparison is not None:
            if args.delta_layer is not None and args.delta_layer not in shape.moe_layers:
                raise ConfigError(f"--delta-layer {args.delta_layer} is not an MoE layer ({shape.moe_layers})")
            fr.plot_delta(res.deltas[comparison], shape.moe_layers, figs / "delta.png", comparison, tau=args.tau[0], layer=args.delta_layer)
        tau = float(args.tau[0])
        counts = {"language experts": an.experts_per_layer(res.language_experts[tau], shape.moe_layers)}
        for name, df in res.task_experts[tau].items():
            counts[f"{name} experts"] = an.experts_per_layer(df, shape.moe_layers)
        targets = parse_layers(args.target_layers) if args.target_layers else None
        fr.plot_expert_counts(counts, shape.moe_layers, figs / "experts_per_layer.png", tau, targets)
        log.info("figures -> %s", figs)
    return 0
