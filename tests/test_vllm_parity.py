"""vLLM backend vs transformers backend on a tiny Qwen3-MoE checkpoint (CPU, float32).

Runs inside .venv-vllm (scripts/test_vllm.sh); skipped when vllm is not importable. Both
backends must produce the same greedy tokens and the same routing summaries (1e-4), with and
without interventions, and vLLM's own router must never select a deactivated expert.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm", reason="vllm is not installed (create .venv-vllm with scripts/setup_vllm.sh)")

from moe_routing.backends import GenerationOptions, LoadOptions, load_backend  # noqa: E402
from moe_routing.backends.vllm import (  # noqa: E402
    VERIFIED_VLLM_VERSION,
    check_vllm_version,
    rows_to_sequences,
)
from moe_routing.errors import ConfigError, ModelError  # noqa: E402
from moe_routing.tiny_models import build_tiny_checkpoint  # noqa: E402

ROUTING = ("weights", "softmax_mean", "freq", "entropy", "consistency", "topk_mean")
TOL = 1e-4

ITEMS = pl.DataFrame(
    {
        "item_id": ["q1", "q2", "q3", "q4", "q5"],
        "lang": ["en", "en", "de", "fr", "en"],
        "prompt": [
            "What is the capital of France?",
            "Name a prime number.",
            "Wie heisst die Hauptstadt von Deutschland?",
            "Quelle est la couleur du ciel ?",
            "2+2=",
        ],
        "system": ["In just a few words, answer in the language of the question."] * 4 + [None],
    }
)


def _pair(tmp_path_factory, family: str, **engine):
    import torch

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("tiny") / family
    build_tiny_checkpoint(family, path, hidden=64, layers=3, experts=8, top_k=2, seed=3)
    hf = load_backend("hf", str(path), LoadOptions(dtype="float32", device="cpu"))
    vl = load_backend("vllm", str(path), LoadOptions(dtype="float32", device="cpu",
                                                     extra={"max_model_len": 512,
                                                            "kv_cache_memory_bytes": 32 * 2**20, **engine}))
    return hf, vl


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    # small token budget: prefills are chunked and share steps with other requests' decodes
    return _pair(tmp_path_factory, "qwen3_moe", max_num_seqs=3, max_num_batched_tokens=64)


def _assert_same(a, b):
    a, b = a.to_pylist(), b.to_pylist()
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for key in ("item_id", "lang", "prompt_token_ids", "output_token_ids", "output"):
            assert ra[key] == rb[key], (ra["item_id"], key, ra[key], rb[key])
        for key in ROUTING:
            x, y = np.asarray(ra[key], dtype=np.float64), np.asarray(rb[key], dtype=np.float64)
            assert x.shape == y.shape, key
            assert np.allclose(x, y, atol=TOL, rtol=0, equal_nan=True), (ra["item_id"], key, np.abs(x - y).max())


def test_rows_to_sequences_maps_packed_rows_and_padding():
    import torch

    row_seq, valid = rows_to_sequences(torch.tensor([0, 3, 4, 6]), [2, 0, 1], num_rows=8)
    assert row_seq[:6].tolist() == [2, 2, 2, 0, 1, 1]
    assert valid.tolist() == [True] * 6 + [False] * 2
    with pytest.raises(ModelError, match="does not fit"):
        rows_to_sequences(torch.tensor([0, 5, 9]), [0, 1], num_rows=8)


def test_version_pin_is_a_clear_error():
    check_vllm_version(VERIFIED_VLLM_VERSION + "+cpu")
    with pytest.raises(ConfigError, match=f"verified on vLLM {VERIFIED_VLLM_VERSION}"):
        check_vllm_version("0.31.2")
    check_vllm_version("0.31.2", allow_unverified=True)
    assert vllm.__version__.split("+")[0] == VERIFIED_VLLM_VERSION


def test_same_outputs_and_routing_as_transformers(backends):
    hf, vl = backends
    assert vl.moe_layers == hf.moe_layers
    a = hf.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=8))
    vl.trace = []
    try:
        b = vl.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=8))
    finally:
        trace, vl.trace = vl.trace, None
    steps = [t for t in trace if t["pos"] == 0]
    # the engine really packed several requests per step, chunked prefills, and queued requests
    assert any(len(set(t["row_seq"][t["row_valid"]].tolist())) > 1 for t in steps)
    assert any(t["row_valid"].sum() == 64 for t in steps)
    first_step = {int(s) for s in steps[0]["row_seq"][steps[0]["row_valid"]].tolist()}
    assert len(first_step) < ITEMS.height
    assert a.schema.metadata[b"moe_layers"] == b.schema.metadata[b"moe_layers"]
    assert sum(len(x) for x in b.column("output_token_ids").to_pylist()) > 5
    _assert_same(a, b)


def test_prefill_only_matches(backends):
    hf, vl = backends
    a = hf.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=0))
    b = vl.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=0))
    assert all(len(x) == 0 for x in b.column("output_token_ids").to_pylist())
    _assert_same(a, b)


def _deactivation_case(hf, vl):
    base = vl.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=6))
    E, layers = vl.num_experts, vl.moe_layers
    freq = np.asarray(base.column("freq").to_pylist()[0]).reshape(len(layers), E)
    top0 = int(np.argmax(freq[0]))  # q1's most used expert at the first MoE layer
    top_last = int(np.argmax(freq[-1]))
    iv = pl.DataFrame(
        {
            "item_id": ["q1", "*", "q3"],
            "layer": [layers[0], layers[-1], layers[1]],
            "expert": [top0, top_last, 5],
            "mode": ["deactivate", "deactivate", "soft"],
            "strength": [None, None, 0.5],
        },
        schema={"item_id": pl.Utf8, "layer": pl.Int64, "expert": pl.Int64, "mode": pl.Utf8, "strength": pl.Float64},
    )
    opts = GenerationOptions(batch_size=3, max_new_tokens=6)
    b = vl.generate(ITEMS, iv, opts)
    sel = vl.engine_selected.numpy()  # vLLM's own router's choices, [S, L, E]
    assert sel.shape == (ITEMS.height, len(layers), E)
    assert not sel[0, 0, top0], "vLLM selected an expert deactivated for q1"
    assert not sel[:, -1, top_last].any(), "vLLM selected an expert deactivated for every item"
    # q1's deactivation is per request: other sequences of the same batch may still use the expert
    assert sel[0, 0].sum() >= vl.top_k
    freq_b = np.asarray(b.column("freq").to_pylist()).reshape(ITEMS.height, len(layers), E)
    assert freq_b[0, 0, top0] == 0 and (freq_b[:, -1, top_last] == 0).all()
    _assert_same(hf.generate(ITEMS, iv, GenerationOptions(batch_size=5, max_new_tokens=6)), b)


def test_interventions_per_request(backends):
    _deactivation_case(*backends)


def test_sigmoid_bias_family_interventions(tmp_path_factory):
    """GLM-4.5: vLLM selects on sigmoid(z) + bias; the backend overrides the router's choice on intervened rows."""
    hf, vl = _pair(tmp_path_factory, "glm4_moe")
    assert vl.sites[0].bias is not None and vl.sites[0].scale == 2.5
    _assert_same(hf.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=6)),
                 vl.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=6)))
    _deactivation_case(hf, vl)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["olmoe", "mixtral", "gpt_oss"])
def test_other_families_match(tmp_path_factory, family):
    hf, vl = _pair(tmp_path_factory, family)
    opts = GenerationOptions(batch_size=5, max_new_tokens=6)
    _assert_same(hf.generate(ITEMS, options=opts), vl.generate(ITEMS, options=opts))


def test_unknown_layer_in_interventions_is_a_clear_error(backends):
    _, vl = backends
    iv = pl.DataFrame({"item_id": ["q1"], "layer": [99], "expert": [0], "mode": ["deactivate"], "strength": [None]},
                      schema={"item_id": pl.Utf8, "layer": pl.Int64, "expert": pl.Int64, "mode": pl.Utf8,
                              "strength": pl.Float64})
    with pytest.raises(Exception, match="not an MoE layer"):
        vl.generate(ITEMS, iv, GenerationOptions(max_new_tokens=2))


def test_load_and_generate_seconds_recorded(backends):
    _, vl = backends
    assert vl.load_seconds > 0 and vl.generate_seconds > 0
    assert os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"


def test_generate_stage_with_vllm_backend(tmp_path, backends):
    """`python -m moe_routing generate --backend vllm` writes the same file as the hf backend."""
    from moe_routing.cli import main
    from moe_routing.io import write_parquet

    hf, _ = backends
    # an items file holds one language, the one its name says
    items = ITEMS.with_columns(lang=pl.lit("en"), answers=pl.lit([], dtype=pl.List(pl.Utf8)), choices=pl.lit(None, dtype=pl.List(pl.Utf8)))
    write_parquet(items.to_arrow(), tmp_path / "en.parquet")
    outs = {}
    for name in ("hf", "vllm"):
        outs[name] = tmp_path / f"{name}.parquet"
        rc = main(["generate", "--backend", name, "--model", hf.model_path, "--device", "cpu", "--dtype", "float32",
                   "--items", str(tmp_path / "en.parquet"), "--out", str(outs[name]),
                   "--max-new-tokens", "4", "--batch-size", "2"])
        assert rc == 0
    import pyarrow.parquet as pq

    a, b = pq.read_table(outs["hf"]), pq.read_table(outs["vllm"])
    assert a.schema.metadata == b.schema.metadata
    _assert_same(a, b)
