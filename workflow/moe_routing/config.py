"""Loading and checking the workflow config beyond what the JSON schema can say.

The schema (workflow/schemas/config.schema.yaml) checks keys, types and ranges and
fills defaults; ``check_references`` checks that names used in one section exist
in another, naming the offending key.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from moe_routing.errors import ConfigError

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


def validate(config: dict) -> dict:
    """Validate against the schema and fill defaults in place (the same call Snakemake's Snakefile makes)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as sm_validate

    try:
        sm_validate(config, str(SCHEMA), set_default=True)
    except WorkflowError as exc:
        raise ConfigError(f"invalid config: {exc}") from None
    fill_nested_defaults(config)
    check_references(config)
    return config


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _defaults(definition: dict) -> dict:
    return {k: v["default"] for k, v in definition.get("properties", {}).items() if "default" in v}


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
