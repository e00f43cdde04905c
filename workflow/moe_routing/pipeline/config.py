"""Loading and checking the workflow config before any job runs.

The schema (workflow/schemas/config.schema.yaml) checks keys, types, ranges and safe names and
fills defaults; ``check_references`` checks that names used in one section exist in another;
``check_runs`` that what the studies need is configured (judgments, conditions, English, items
files); ``check_models`` that each model is a checkpoint the adapters can route, with its layer
settings in range (config.json only, see moe_routing.pipeline.model_layout). Every error is one line
naming the key: ``invalid config: models.qwen3.xici.exclude_first: -1 is less than the minimum of 0``.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

from moe_routing.pipeline.config_guards import (
    check_finite,
    check_interpreters,
    check_languages,
    check_stage_flags,
    key_path,
    unknown_keys_of,
)
from moe_routing.core.errors import ConfigError, MoeRoutingError
from moe_routing.pipeline.model_layout import Layout, find_config_json, layer_ranges, read_layout
from moe_routing.core.paths import items as items_path
from moe_routing.pipeline.plan import Plan, is_built
from moe_routing.core import paths
from moe_routing.core.paths import repository_file

SCHEMA = repository_file(paths.SCHEMA)
PREFIX = "invalid config: "


def validate(config: dict) -> dict:
    """Validate, fill defaults in place and check; ConfigError('invalid config: KEY: problem') on the first error."""
    try:
        check_finite(config)
        check_schema(config)
        fill_nested_defaults(config)
        check_stage_flags(config)
        check_languages(config)
        check_references(config)
        check_runs(config)
        check_interpreters(config)
        check_models(config)
    except ConfigError as exc:
        raise ConfigError(PREFIX + str(exc)) from None
    return config


# what a safe-name or path pattern means, for the message
PATTERN_HINTS = {
    "name_pattern": "names that become paths, wildcards or flags are a letter, then letters, digits and _",
    "path_pattern": "an interpreter path of letters, digits and . _ + - / (no spaces or shell characters)",
}


def check_schema(config: dict) -> None:
    """jsonschema validation (draft 2020-12) that fills defaults, as Snakemake's validate does;
    the most relevant error (jsonschema's best_match) as one line naming its key path."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import best_match

    validate_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    validator_cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    error = best_match(validator_cls(_schema()).iter_errors(config))
    if error is not None:
        raise ConfigError(schema_message(error))


def schema_message(error) -> str:
    """'KEY: problem' for one jsonschema ValidationError, on one line and of bounded length."""
    unknown = unknown_keys_of(error)
    if unknown is not None:
        return str(unknown)
    shown = repr(error.instance)
    message = error.message
    if error.validator == "pattern":
        hint = next(
            (h for name, h in PATTERN_HINTS.items() if _schema()["$defs"][name]["pattern"] == error.validator_value), None
        )
        message = f"{shown} is not allowed" + (f": {hint}" if hint else f" (pattern {error.validator_value})")
    if len(shown) > 80 and message.startswith(shown):
        message = shown[:77] + "..." + message[len(shown) :]
    if "propertyNames" in error.absolute_schema_path:
        message = "key " + message  # the error is about a key of the object at the path
    return f"{key_path(error.absolute_path)}: {' '.join(message.split())}"


@lru_cache(maxsize=1)
def _schema() -> dict:
    """The parsed schema (read once; defaults taken from it are deep-copied into configs)."""
    return yaml.safe_load(SCHEMA.read_text())


def _defaults(definition: dict) -> dict:
    return {k: copy.deepcopy(v["default"]) for k, v in definition.get("properties", {}).items() if "default" in v}


def fill_nested_defaults(config: dict) -> None:
    """Defaults inside $ref'd blocks, which the validator does not fill (models.*.xici/steering/resources)."""
    defs = _schema()["$defs"]
    for model in config["models"].values():
        for key, ref in (("xici", "xici_settings"), ("steering", "steering_settings"), ("resources", "resources")):
            block = model.setdefault(key, {})
            for k, v in _defaults(defs[ref]).items():
                block.setdefault(k, v)
    judge = config.setdefault("judge_model", {})
    if judge:
        for k, v in _defaults(_schema()["properties"]["judge_model"]).items():
            judge.setdefault(k, v)


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    try:
        return validate(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _need(names, pool: dict, key: str) -> None:
    for name in names:
        if name not in pool:
            raise ConfigError(f"{key}: {name!r} is not defined (known: {sorted(pool)})")


def check_references(config: dict) -> None:
    models, datasets = config["models"], config["datasets"]
    xici = config.get("xici", {})
    _need(xici.get("models", []), models, "xici.models")
    _need(xici.get("datasets", []), datasets, "xici.datasets")
    routing = config.get("routing", {})
    _need(routing.get("models", []), models, "routing.models")
    for key in ("parallel", "accuracy"):
        if routing.get(key) is not None:
            _need([routing[key]], datasets, f"routing.{key}")
    for task, ds in routing.get("tasks", {}).items():
        _need([ds], datasets, f"routing.tasks.{task}")
    for i, spec in enumerate(routing.get("steering", [])):
        _need([spec["benchmark"]], datasets, f"routing.steering[{i}].benchmark")
        if spec["task"] not in routing.get("tasks", {}):
            raise ConfigError(f"routing.steering[{i}].task: {spec['task']!r} is not a key of routing.tasks")
        if not routing.get("parallel"):
            raise ConfigError(f"routing.steering[{i}]: steering needs routing.parallel (the English baseline set)")
    if routing.get("models") and not routing.get("parallel"):
        raise ConfigError("routing.models is set but routing.parallel (the parallel corpus) is not")
    benchmarks = sorted({s["benchmark"] for s in routing.get("steering", [])})
    for name, m in models.items():
        for b in m.get("steering", {}).get("benchmarks", {}):
            if b not in benchmarks:
                raise ConfigError(f"models.{name}.steering.benchmarks.{b}: not a benchmark of routing.steering ({benchmarks})")
    demo = config.get("demo", {})
    if demo.get("model") is not None:
        _need([demo["model"]], models, "demo.model")
    for name, m in models.items():
        if m.get("build") == "demo" and demo.get("model") != name:
            raise ConfigError(f"models.{name}.build: 'demo' but demo.model is {demo.get('model')!r}")
    needs_judge_model = any(d.get("judge") == "llm" for d in datasets.values())
    if needs_judge_model and not config.get("judge_model", {}).get("path"):
        raise ConfigError("datasets use judge 'llm' but judge_model.path is not set")
    for name, d in datasets.items():
        if d["source"] not in ("demo", "items") and not d.get("path"):
            raise ConfigError(f"datasets.{name}.path: required for source {d['source']!r} (hub id or local path)")
        if len(set(d["languages"])) != len(d["languages"]):
            raise ConfigError(f"datasets.{name}.languages: duplicate language codes")


def check_runs(config: dict) -> None:
    """What the configured studies need: judgments, ablation conditions, English, items files."""
    datasets, xici, routing = config["datasets"], config["xici"], config["routing"]
    judged = [(d, "xici.datasets") for d in xici["datasets"]]
    if routing.get("accuracy"):
        judged.append((routing["accuracy"], "routing.accuracy"))
    judged += [(s["benchmark"], f"routing.steering[{i}].benchmark") for i, s in enumerate(routing["steering"])]
    for d, key in judged:
        if datasets[d]["judge"] == "none":
            raise ConfigError(
                f"datasets.{d}.judge: 'none', but {key} needs its judgments (use exact, contains, mc, number or llm)"
            )
    if xici["models"] and xici["datasets"] and not xici["conditions"]:
        raise ConfigError(
            "xici.conditions: empty, but xici.models and xici.datasets are set; give at least one of xici, shuffled, random"
        )
    # English is read by name only where it is the reference: what the parallel set is compared with and the baseline and
    # the English task sets. XICI datasets (Table 3's paraphrase set has none), the accuracy set and
    # the steering benchmarks report English where present and work without it.
    english = config["english"]
    needs_english = (
        [(routing["parallel"], "routing.parallel (what divergence compares with and the baseline of expert specialisation)")]
        if routing.get("parallel")
        else []
    )
    needs_english += [
        (d, f"routing.tasks.{task} (task experts come from its English generations)") for task, d in routing["tasks"].items()
    ]
    for d, why in needs_english:
        if english not in datasets[d]["languages"]:
            raise ConfigError(f"datasets.{d}.languages: lacks {english!r} (the `english` key), which {why} needs")
    for d in dict.fromkeys(d for _, d in Plan(config).base_runs()):
        if datasets[d]["source"] != "items":
            continue
        missing = [items_path(d, lang) for lang in datasets[d]["languages"] if not Path(items_path(d, lang)).is_file()]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise ConfigError(
                f"datasets.{d}: source 'items' but {', '.join(missing[:3])}{more} missing (write the items files first)"
            )


def check_models(config: dict) -> None:
    """Each model a job will load: a local path exists; where its config.json can be read without the
    network (a local checkpoint, or a hub id already in the Hugging Face cache), its family has a router
    adapter and MoE layers, and its xici/steering layer settings fit them. Each config.json is read once."""
    layouts: dict[tuple[Path, str | None], Layout] = {}
    for name in dict.fromkeys(m for m, _ in Plan(config).base_runs()):
        m = config["models"][name]
        if is_built(m):
            continue  # built by the workflow itself: nothing to read before the run
        try:
            config_json = find_config_json(m["path"])
            if config_json is None:
                continue  # a hub id not in the local cache: layer checks skipped
            key = (config_json, m.get("adapter"))
            if key not in layouts:
                layouts[key] = read_layout(*key)
        except MoeRoutingError as exc:
            raise ConfigError(f"models.{name}.path: {exc}") from None
        check_layers(name, m, layouts[key])
    judge = config.get("judge_model", {})
    if judge.get("path") and not is_built(judge) and any(d["judge"] == "llm" for d in config["datasets"].values()):
        try:
            find_config_json(judge["path"])
        except MoeRoutingError as exc:
            raise ConfigError(f"judge_model.path: {exc}") from None


def check_layers(name: str, model: dict, layout: Layout) -> None:
    """XICI layer exclusion and steering layers of one model against its layout."""
    path, n_moe = model["path"], len(layout.moe_layers)
    first, last = model["xici"]["exclude_first"], model["xici"]["exclude_last"]
    if first + last >= n_moe:
        raise ConfigError(
            f"models.{name}.xici: exclude_first + exclude_last = {first} + {last} leaves none of the {n_moe} MoE layers of {path}"
        )
    layers = model["steering"]["layers"]
    outside = [x for x in layers if x >= layout.num_layers]
    if outside:
        raise ConfigError(
            f"models.{name}.steering.layers: {outside} out of range: {path} has {layout.num_layers} decoder layers (0-based: 0-{layout.num_layers - 1})"
        )
    dense = [x for x in layers if x not in layout.moe_layers]
    if dense:
        raise ConfigError(
            f"models.{name}.steering.layers: {dense} not MoE layers of {path} (its MoE layers: {layer_ranges(layout.moe_layers)})"
        )
