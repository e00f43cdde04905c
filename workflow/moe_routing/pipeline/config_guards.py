"""Config checks that JSON Schema cannot express, run by ``config.validate`` before any job is planned.

- an unknown key is named with its nearest valid spelling (difflib), also where a block's keys become a
  stage's command-line flags (``demo.world``, ``demo.build``) or a loader's options (``datasets.*.options``):
  a typo must fail before Snakemake plans, and so removes, anything;
- every number is finite: a schema bound lets NaN through, since every comparison with NaN is false;
- the configured interpreters exist and import moe_routing: a wrong one would fail every job only after
  Snakemake removed their outputs;
- language codes are unique however they are capitalised (file names on a case-insensitive disk, and the
  loaders' lookups), and ``routing.low_resource`` names languages the steering benchmarks have.
"""

from __future__ import annotations

import ast
import importlib.util
import difflib
import errno
import math
import os
import subprocess
from functools import lru_cache
from pathlib import Path

from moe_routing.core.errors import ConfigError

# the stage modules are read as text (importing build_demo would load torch at every Snakemake parse)
STAGES = Path(importlib.util.find_spec("moe_routing.stages").submodule_search_locations[0])
# config blocks whose keys become a stage's flags (commands.cli_flags: key -> --key-with-dashes)
FLAG_BLOCKS = {("demo", "world"): "demo_world", ("demo", "build"): "build_demo"}
# flags the rules set themselves from other keys: a block that sets one too would give it twice
RULE_FLAGS = {
    "demo_world": {"out_dir", "corpus", "check_dataset", "check_out", "languages", "datasets", "seed"},
    "build_demo": {"world", "out", "english", "seed"},
}
IMPORT_TIMEOUT_S = 60
# interpreter keys left unchecked, comma-separated (e.g. "python.vllm"): for planning or dry-running a config on a
# machine without that environment (the tests without vLLM's CPU build); a job on such a machine would still fail
SKIP_INTERPRETERS_ENV = "MOE_ROUTING_SKIP_INTERPRETERS"


def key_path(parts) -> str:
    """('models', 'qwen3', 'xici', 'cap') -> 'models.qwen3.xici.cap'; list indices as [i]."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def unknown_key(where: str, key: str, known) -> ConfigError:
    """'WHERE.KEY: unknown key; did you mean 'NEAR'? (known: ...)' — one line."""
    known = sorted(known)
    near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(known) or 'none'}"
    path = f"{where}.{key}" if where else str(key)
    return ConfigError(f"{path}: unknown key; {hint}")


def unknown_keys_of(error) -> ConfigError | None:
    """The first unexpected key of a jsonschema ``additionalProperties: false`` error, with its nearest spelling."""
    if error.validator != "additionalProperties" or error.validator_value is not False:
        return None

    known = set(error.schema.get("properties", {}))
    extra = [k for k in error.instance if k not in known]
    if not extra:
        return None
    where = key_path(error.absolute_path)
    return unknown_key("" if where == "(top level)" else where, extra[0], known)


@lru_cache(maxsize=None)
def stage_flags(module: str) -> frozenset[str]:
    """The ``--flags`` a stage's parser declares, as config keys (dashes -> _), read from its source
    without importing it (train-demo's parser would import torch into every Snakemake parse)."""
    tree = ast.parse((STAGES / f"{module}.py").read_text())
    flags = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--"):
                    flags.add(arg.value[2:].replace("-", "_"))
    return frozenset(flags)


def check_stage_flags(config: dict) -> None:
    """Keys of demo.world / demo.build are flags of their stage; keys of datasets.*.options are options of the loader."""
    for (section, block), module in FLAG_BLOCKS.items():
        values = config.get(section, {}).get(block, {})
        usable = stage_flags(module) - RULE_FLAGS[module]
        for key in values:
            if key in RULE_FLAGS[module]:
                raise ConfigError(f"{section}.{block}.{key}: set by the workflow itself; remove it here")
            if key not in usable:
                raise unknown_key(f"{section}.{block}", key, usable)
    from moe_routing.data.sources import SOURCES, option_types

    for name, d in config["datasets"].items():
        if d.get("options") and d["source"] in SOURCES:
            known = option_types(d["source"])
            for key in d["options"]:
                if key not in known:
                    raise unknown_key(f"datasets.{name}.options", key, known)


def check_finite(value, where: str = "") -> None:
    """Every float in the config is finite (NaN and infinity pass any JSON-schema bound)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where or '(top level)'}: {value} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")


@lru_cache(maxsize=None)
def _imports_moe_routing(python: str) -> str | None:
    """None if ``python -c 'import moe_routing'`` works, else why not (one line)."""
    try:
        proc = subprocess.run(
            [python, "-c", "import moe_routing"], capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, env=os.environ.copy()
        )
    except OSError as exc:
        return exc.strerror or str(exc)
    except subprocess.TimeoutExpired:
        return f"importing moe_routing took over {IMPORT_TIMEOUT_S} s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return f"cannot import moe_routing ({last})"
    return None


def check_interpreters(config: dict) -> None:
    """python.main (and python.vllm where a model or the judge uses vLLM) runs and imports moe_routing."""
    python = config.get("python", {})
    wanted = [("python.main", python.get("main", ""))]
    models = [*config["models"].values(), config.get("judge_model") or {}]
    if any(m.get("backend") == "vllm" for m in models):
        wanted.append(("python.vllm", python.get("vllm", "")))
    skipped = {k.strip() for k in os.environ.get(SKIP_INTERPRETERS_ENV, "").split(",")}
    for key, path in wanted:
        if not path or key in skipped:
            continue  # the interpreter running Snakemake, or one this machine is told it lacks
        if not Path(path).is_file() or not os.access(path, os.X_OK):
            raise ConfigError(f"{key}: {path!r} is not an executable file")
        why = _imports_moe_routing(path)
        if why:
            raise ConfigError(f"{key}: {path!r} {why}")


def check_languages(config: dict) -> None:
    """Language lists unique ignoring case; routing.low_resource among the steering benchmarks' languages."""
    for name, d in config["datasets"].items():
        seen: dict[str, str] = {}
        for lang in d["languages"]:
            if lang.lower() in seen:
                raise ConfigError(
                    f"datasets.{name}.languages: duplicate language code {lang!r} (as {seen[lang.lower()]!r}; case is ignored)"
                )
            seen[lang.lower()] = lang
    routing = config.get("routing", {})
    low = routing.get("low_resource", [])
    if not low:
        return
    benchmarks = [s["benchmark"] for s in routing.get("steering", [])]
    if not benchmarks:
        return  # no steering table: the list is not read
    langs = {lang for b in benchmarks for lang in config["datasets"][b]["languages"]}
    missing = [lang for lang in low if lang not in langs]
    if missing:
        raise ConfigError(
            f"routing.low_resource: {missing} not among the steering benchmarks' languages ({sorted(langs)}); the low-resource row would leave them out"
        )


# the folders the workflow writes (moe_routing.core.paths), relative to the working directory
WRITTEN_FOLDERS = ("results", "logs", "resources")


def check_workdir(root: str | os.PathLike = ".") -> None:
    """Before the DAG is built: every folder the workflow writes into can be written, and no symlink there loops.
    Snakemake would otherwise stop on either with a traceback (a loop when it stats its files, a read-only
    folder when a job's output folder is made), after it may have removed other outputs."""
    root = Path(root)
    for top in WRITTEN_FOLDERS:
        start = root / top
        if not start.is_dir():
            continue
        for folder, dirs, files in os.walk(start):
            here = Path(folder)
            if not os.access(here, os.W_OK | os.X_OK):
                raise ConfigError(f"{here.relative_to(root)}/: cannot write into it (permission denied); fix its permissions")
            for name in [*dirs, *files]:
                path = here / name
                if path.is_symlink():
                    try:
                        os.stat(path)
                    except OSError as exc:
                        if exc.errno == errno.ELOOP:
                            raise ConfigError(f"{path.relative_to(root)}: a symbolic link that loops; remove it") from None
