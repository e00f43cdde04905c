"""A model's layer layout from its config.json alone (no weights), for checks before any job runs.

A model path is a local checkpoint directory or a hub id. A local directory must exist and hold
a config.json. A hub id is looked up in the local Hugging Face cache only, never on the network:
its layout is known when its config.json was downloaded before
(``hf download ORG/NAME config.json``), else it is None and the layer checks are skipped.
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass
from pathlib import Path

from moe_routing.core.errors import ConfigError, ModelError

# one part of a hub id (huggingface_hub's validate_repo_id, simplified)
HUB_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Layout:
    config_json: str  # the file read
    model_type: str
    num_layers: int  # decoder layers
    moe_layers: tuple[int, ...]  # decoder layers with an MoE router (0-based)


def is_local(path: str) -> bool:
    """Whether ``path`` names a local directory (existing or not) rather than a hub id.

    A hub id is ``name`` or ``org/name``; ``dir/name`` counts as local when ``dir`` exists here
    (``resources/models/x``, ``models/x``), as does anything absolute, relative (``./``) or deeper.
    """
    if Path(path).exists() or path.startswith(("/", ".", "~")):
        return True
    parts = path.split("/")
    if len(parts) > 2 or not all(HUB_PART.fullmatch(p) and ".." not in p and "--" not in p for p in parts):
        return True
    return len(parts) == 2 and Path(parts[0]).is_dir()


def find_config_json(path: str) -> Path | None:
    """config.json of a local checkpoint (ConfigError when it is missing) or of a hub id in the cache (else None)."""
    if is_local(path):
        local = Path(path)
        if not local.is_dir():
            raise ConfigError(
                f"local checkpoint {path!r} does not exist" if not local.exists() else f"{path!r} is not a directory"
            )
        if not (local / "config.json").is_file():
            raise ConfigError(f"{path!r} has no config.json: not a transformers checkpoint")
        return local / "config.json"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(path, "config.json")
    except ValueError:  # an id the hub would reject: let the loader report it
        return None
    return Path(cached) if isinstance(cached, str) else None


# config.json keys the adapters read to find the MoE layers, with the largest value a real model has (with margin):
# a wrong type or an absurd size is one line here, not a traceback or a 10**9-element list in an adapter
LAYOUT_INTEGERS = {
    "num_hidden_layers": 10_000,
    "n_layers": 10_000,
    "num_experts": 1_000_000,
    "num_local_experts": 1_000_000,
    "n_routed_experts": 1_000_000,
    "num_experts_per_tok": 1_000_000,
    "decoder_sparse_step": 10_000,
    "first_k_dense_replace": 10_000,
    "moe_layer_freq": 10_000,
}
LAYOUT_INTEGER_LISTS = ("mlp_only_layers",)


def check_layout_values(raw: dict, config_json) -> None:
    """The layout keys of a config.json have integer values in range (bools and floats like 1e9 refused)."""
    if "num_hidden_layers" not in raw and "n_layers" not in raw:  # DBRX calls its layer count n_layers
        raise ConfigError(f"{config_json}: no num_hidden_layers")
    for key, most in LAYOUT_INTEGERS.items():
        if key not in raw or (raw[key] is None and key not in ("num_hidden_layers", "n_layers")):
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{config_json}: {key} must be an integer, is {value!r}")
        if not 0 <= value <= most:
            raise ConfigError(f"{config_json}: {key} {value} is out of range [0, {most}]")
    for key in LAYOUT_INTEGER_LISTS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ConfigError(f"{config_json}: {key} must be a list of layer indices, is {value!r}")


def read_layout(config_json: Path, adapter_kind: str | None = None) -> Layout:
    """Family and MoE layers of one config.json; ModelError for a family with no adapter or no MoE layer.

    ``adapter_kind`` is the model's ``adapter:`` key (a router kind forced on the family)."""
    from moe_routing.capture.adapters import get_adapter  # imports torch: only when a config.json is there to read

    try:
        raw = json.loads(Path(config_json).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{config_json}: cannot read ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_json}: not a JSON object")
    check_layout_values(raw, config_json)
    config = types.SimpleNamespace(**raw)
    try:
        adapter = get_adapter(config, adapter_kind)
        moe_layers = adapter.moe_layer_indices(config)
        if not moe_layers:
            raise ModelError(f"{config.model_type} with no MoE layer (every decoder layer is dense): no router to capture")
    except ModelError as exc:
        raise ModelError(f"{config_json}: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # a value of a key not checked above, of a type the family's adapter cannot read
        raise ModelError(f"{config_json}: cannot read its layer layout ({' '.join(str(exc).split())})") from None
    return Layout(str(config_json), config.model_type, adapter.family.num_layers(config), tuple(moe_layers))


def layer_ranges(layers) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    out: list[str] = []
    layers = sorted(layers)
    start = prev = None
    for x in [*layers, None]:
        if prev is not None and x == prev + 1:
            prev = x
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = x
    return ", ".join(out)
