"""Shared fixtures. Tiny checkpoints are built once per session (see moe_routing.rehearsal.tiny_models)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# without vLLM's CPU build (scripts/test.sh with SKIP_VLLM=1), the paper configs' python.vllm is absent: their
# validation and dry-runs then leave that interpreter unchecked (moe_routing.pipeline.config_guards)
if not (Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python").exists():
    os.environ.setdefault("MOE_ROUTING_SKIP_INTERPRETERS", "python.vllm")


from moe_routing.capture.adapters.families import FAMILIES

# every row of the family table (adapters/families.py)
ALL_FAMILIES = tuple(FAMILIES)


def mc_items():
    """Multiple-choice items (items contract, with choices) for scoring by log-likelihood on both backends."""
    import polars as pl

    return pl.DataFrame(
        {
            "item_id": ["q1", "q2", "q3"],
            "lang": ["en"] * 3,
            "prompt": [
                "Which river runs through Quellmark?\nA. Quell\nB. Rhine\nC. Oder\nD. Po\nAnswer:",
                "2 + 2 =\nA. 3\nB. 4\nAnswer:",
                "Pick one.\nA. x\nB. y\nC. z\nAnswer:",
            ],
            "system": [None, None, "Be brief."],
            "answers": [["A"], ["B"], ["C"]],
            "choices": [["Quell", "Rhine", "Oder", "Po"], ["3", "4"], ["x", "y", "z"]],
        }
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """tiny_checkpoint(family, **kwargs) -> Path: a saved tiny random checkpoint, built once per argument set."""
    from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny_models")
    built: dict = {}

    def make(family: str, **kwargs):
        opts = {"layers": 3, **kwargs}
        key = (family, tuple(sorted(opts.items())))
        if key not in built:
            name = family + "".join(f"_{k}{v}" for k, v in sorted(opts.items()))
            built[key] = build_tiny_checkpoint(family, root / name, **opts)
        return built[key]

    return make


@pytest.fixture(scope="session")
def load_hf():
    """load_hf(path) -> an HFBackend on a checkpoint folder (CPU, float32), loaded once per session."""
    import torch

    from moe_routing.capture.backends import LoadOptions, load_backend

    torch.set_num_threads(1)
    loaded: dict = {}

    def make(path):
        if path not in loaded:
            loaded[path] = load_backend("hf", str(path), LoadOptions(device="cpu", dtype="float32"))
        return loaded[path]

    return make


@pytest.fixture(scope="session")
def hf_backend(tiny_checkpoint, load_hf):
    """hf_backend(family, **kwargs) -> a loaded HFBackend on a tiny checkpoint, cached per session."""
    return lambda family, **kwargs: load_hf(tiny_checkpoint(family, **kwargs))
