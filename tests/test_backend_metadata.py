"""dtype ``auto`` resolved once for both backends, and what a generations file records about its run."""

from __future__ import annotations

import types

import polars as pl
import pytest

from moe_routing.capture.backends import GenerationOptions, resolve_dtype
from moe_routing.core.contracts import parse_routing_metadata
from moe_routing.core.errors import ConfigError

ITEMS = pl.DataFrame({"item_id": ["i1", "i2"], "lang": ["en"] * 2, "prompt": ["One?", "Two?"], "system": [None] * 2})


@pytest.mark.parametrize(
    ("config", "device", "expected"),
    [
        ({"dtype": "bfloat16"}, "cpu", "bfloat16"),
        ({"torch_dtype": "float16"}, "cuda", "float16"),  # config.json of older checkpoints
        ({"dtype": None}, "cpu", "float32"),
        ({}, "cuda", "bfloat16"),
        ({"dtype": "float8_e4m3fn"}, "cpu", "float32"),
        ({"text_config": types.SimpleNamespace(dtype="bfloat16")}, "cpu", "bfloat16"),
    ],
)
def test_auto_dtype_is_the_checkpoints_else_a_device_default(config, device, expected):
    assert resolve_dtype("auto", types.SimpleNamespace(**config), device) == expected


def test_explicit_dtype_wins_and_bad_names_are_clear_errors():
    assert resolve_dtype("float16", types.SimpleNamespace(dtype="float32"), "cpu") == "float16"
    with pytest.raises(ConfigError, match="dtype must be auto or one of"):
        resolve_dtype("fp8", types.SimpleNamespace(), "cpu")


def test_generations_record_dtype_backend_device_and_times(hf_backend):
    backend = hf_backend("qwen3_moe")
    assert backend.dtype == "float32"  # the tiny checkpoint is saved in float32
    meta = parse_routing_metadata(backend.generate(ITEMS, None, GenerationOptions(max_new_tokens=2)).schema.metadata)
    assert (meta["dtype"], meta["backend"], meta["device"]) == ("float32", "hf", "cpu")
    assert meta["load_seconds"] > 0 and meta["generate_seconds"] > 0 and meta["moe_layers"] == backend.moe_layers
    # without capture: how the file was made, but no routing keys
    plain = parse_routing_metadata(
        backend.generate(ITEMS, None, GenerationOptions(max_new_tokens=2, capture=False)).schema.metadata
    )
    assert plain["backend"] == "hf" and plain["dtype"] == "float32" and "moe_layers" not in plain
