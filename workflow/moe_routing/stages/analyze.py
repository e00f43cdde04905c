"""Stage `analyze`: multilingual routing analysis tables and figures from captured generations."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "routing divergence from a pivot language, entropy, consistency, correlation with accuracy, language/task experts"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generations", nargs="+", action="extend", required=True, metavar="G.parquet", help="generations with routing of a parallel corpus, one file per language")
    p.add_argument("--pivot", default="en", help="language the others are compared with (default en)")
    p.add_argument("--out-dir", required=True, help="directory for the TSV tables")
    p.add_argument("--accuracy", metavar="A.tsv", help="per-language accuracy (columns lang, accuracy) for the correlation and the Fig. 2 colours")
    p.add_argument("--task-generations", "--task", dest="task_generations", nargs="+", action="extend", default=[], metavar="[NAME=]T.parquet",
                   help="generations of a domain set in the pivot language (task experts); NAME defaults to the dataset directory")
    p.add_argument("--tau", nargs="+", type=float, default=[0.3], help="Δ thresholds for expert identification (default 0.3)")
    p.add_argument("--figures-dir", help="directory for the PNG figures (none when left out)")
    p.add_argument("--delta-comparison", help="comparison shown in the Δ figure, e.g. 'sw-vs-en' (default: the first non-pivot language)")
    p.add_argument("--delta-layer", type=int, help="model layer shown in the Δ figure (default: the layer with the largest Δ)")
    p.add_argument("--target-layers", nargs="+", help="steering target layers marked in the experts-per-layer figure, e.g. '7-34' or '7 8 9' (model layer indices)")


def task_name(spec: str) -> tuple[str, str]:
    if "=" in spec:
        name, path = spec.split("=", 1)
        return name, path
    p = Path(spec)
    # results/{model}/{dataset}/generations/{lang}.parquet -> dataset
    return (p.parent.parent.name if p.parent.name == "generations" else p.stem), spec


def run(args: argparse.Namespace) -> int:
    from moe_routing import analysis as an
    from moe_routing.errors import ConfigError
    from moe_routing.io import read_frame, read_routing_metadata, read_tsv, write_tsv
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
    for spec in args.task_generations:
        name, path = task_name(spec)
        if name in tasks:
            raise ConfigError(f"{spec}: task set name {name!r} given twice; use NAME=PATH")
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

    res = an.analyze(languages, shape, args.pivot, accuracy=accuracy, tasks=tasks, taus=args.tau)
    out = Path(args.out_dir)
    write_tsv(res.divergence, out / "divergence.tsv")
    write_tsv(res.entropy, out / "entropy.tsv")
    write_tsv(res.consistency, out / "consistency.tsv")
    if res.correlation is not None:
        write_tsv(res.correlation, out / "correlation.tsv")
    write_tsv(an.delta_table(res.deltas, shape.moe_layers), out / "specialisation.tsv")
    write_tsv(an.experts_long(res.language_experts, "language"), out / "language_experts.tsv")
    write_tsv(an.experts_long(res.task_experts, "task"), out / "task_experts.tsv")
    write_tsv(res.overlap, out / "overlap.tsv")
    log.info("analysis of %d languages, %d task set(s) -> %s", len(languages), len(tasks), out)

    if args.figures_dir:
        from moe_routing import figures_routing as fr

        figs = Path(args.figures_dir)
        fr.plot_divergence(res.divergence, figs / "divergence.png", accuracy, args.pivot)
        fr.plot_layer_metric(res.entropy, figs / "entropy.png", "mean routing entropy (nats)", "Routing entropy per layer", args.pivot)
        fr.plot_layer_metric(res.consistency, figs / "consistency.png", "token-pair top-k Jaccard", "Token routing consistency per layer", args.pivot)
        lang_cmp = [k for k in res.deltas if not any(k == f"{t}-vs-{args.pivot}" for t in tasks)]
        comparison = args.delta_comparison or (lang_cmp[0] if lang_cmp else next(iter(res.deltas), None))
        if comparison is not None:
            if comparison not in res.deltas:
                raise ConfigError(f"--delta-comparison {comparison!r} is not one of {sorted(res.deltas)}")
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
