"""vLLM backend vs transformers backend on tiny checkpoints (CPU, float32), in vLLM's worker processes.

Runs inside .venv-vllm (scripts/test_vllm.sh); skipped when vllm is not importable. Both backends
must produce the same greedy tokens and routing summaries (1e-4), with and without interventions,
and vLLM's own router must never select an expert deactivated for an item, while the other items of
the batch keep their routing. Engine starts dominate the run time (each starts an engine process and
one worker process per rank, all importing vLLM), so each module-scoped fixture starts one engine:

- ``qwen``: qwen3_moe on vLLM's default multiprocessing engine, one rank, a small token budget
  (chunked prefills share steps with other requests' decodes, requests queue);
- ``glm``: glm4_moe (sigmoid + bias: vLLM's selection is overridden on intervened rows) with
  ``tensor_parallel_size=2``, each rank bound to one core;
- ``gptoss``: gpt_oss (the adapter's template variables and final-channel answers), one rank.

Token scope "content", teacher-forced assistant turns and multiple-choice scoring by log-likelihood
(``score_choices``) are compared on the same engines. Choice scores are summed log-probabilities of a
float32 checkpoint computed by different kernels (vLLM's CPU attention and GEMMs vs torch's): they
differ by a few float32 ulps of values around 5-15 (~1e-6 measured), so LOGPROB_TOL is 1e-5.

The generate stage CLI and the other families run last on in-process engines
(VLLM_ENABLE_V1_MULTIPROCESSING=0: the same worker code, a start in half the time). In-process vLLM
caches its environment variables from then on, so they stay last.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
from conftest import mc_items

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm", reason="vllm is not installed (create .venv-vllm with scripts/setup_vllm.sh)")

from moe_routing.capture.backends import GenerationOptions, LoadOptions, load_backend  # noqa: E402
from moe_routing.capture.backends.vllm import (  # noqa: E402
    BIND_ENV,
    VERIFIED_VLLM_VERSION,
    check_vllm_version,
    cpu_thread_binding,
)
from moe_routing.core.contracts import parse_routing_metadata  # noqa: E402
from moe_routing.core.errors import ConfigError  # noqa: E402
from moe_routing.core.io import read_routing_metadata  # noqa: E402
from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint  # noqa: E402

ROUTING = ("weights", "softmax_mean", "freq", "entropy", "consistency", "topk_mean")
TOL = 1e-4
LOGPROB_TOL = 1e-5
SCHEMA = {"item_id": pl.Utf8, "layer": pl.Int64, "expert": pl.Int64, "mode": pl.Utf8, "strength": pl.Float64}

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
# teacher-forced answers (prefill only), one item without
ANSWERED = ITEMS.with_columns(assistant=pl.Series(["Paris.", None, "Berlin, natürlich.", "Bleu.", "4"]))
# multiple choice: plain-text continuations " A" are two tokens of the tiny tokenizer, chat ones "A" one
MC_ITEMS = mc_items()


def _checkpoint(tmp_path_factory, family: str):
    path = tmp_path_factory.mktemp("tiny") / family
    return build_tiny_checkpoint(family, path, hidden=64, layers=3, experts=8, top_k=2, seed=3)


def _pair(tmp_path_factory, family: str, **engine):
    """(hf, vllm) backends on one tiny checkpoint, both at the default dtype (the checkpoint's float32)."""
    import torch

    torch.set_num_threads(1)
    path = _checkpoint(tmp_path_factory, family)
    hf = load_backend("hf", str(path), LoadOptions(device="cpu"))
    vl = load_backend("vllm", str(path), LoadOptions(device="cpu", extra={"max_model_len": 512, **engine}))
    vl.record_selection = True  # engine_selected: what vLLM's own router chose
    return hf, vl


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    # small token budget: prefills are chunked and share steps with other requests' decodes
    hf, vl = _pair(tmp_path_factory, "qwen3_moe", max_num_seqs=3, max_num_batched_tokens=64)
    yield hf, vl
    vl.close()


@pytest.fixture(scope="module")
def gptoss(tmp_path_factory):
    hf, vl = _pair(tmp_path_factory, "gpt_oss")
    yield hf, vl
    vl.close()


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    hf, vl = _pair(tmp_path_factory, "glm4_moe", tensor_parallel_size=2)
    yield hf, vl
    vl.close()


def _assert_same(a, b, rows=None):
    a, b = a.to_pylist(), b.to_pylist()
    assert len(a) == len(b)
    for i, (ra, rb) in enumerate(zip(a, b)):
        if rows is not None and i not in rows:
            continue
        for key in ("item_id", "lang", "prompt_token_ids", "output_token_ids", "output"):
            assert ra[key] == rb[key], (ra["item_id"], key, ra[key], rb[key])
        for key in ROUTING:
            x, y = np.asarray(ra[key], dtype=np.float64), np.asarray(rb[key], dtype=np.float64)
            assert x.shape == y.shape, key
            assert np.allclose(x, y, atol=TOL, rtol=0, equal_nan=True), (ra["item_id"], key, np.abs(x - y).max())


def _assert_same_scores(hf, vl, items, interventions, opts):
    """Same chosen letters, contexts and context routing, and per-choice log-probabilities within LOGPROB_TOL;
    returns vLLM's choice log-probabilities."""
    _assert_same(hf.score_choices(items, interventions, opts), vl.score_choices(items, interventions, opts))
    a, b = hf.choice_logprobs(items, interventions, opts), vl.choice_logprobs(items, interventions, opts)
    assert [len(x) for x in a] == [len(x) for x in b] == [len(c) for c in items["choices"]]
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, x, atol=LOGPROB_TOL, rtol=0)
    return b


def _scoring_case(hf, vl, chats=(False, True)):
    """score_choices as on transformers, with and without a chat template (plain text: two-token
    continuations, chat: one), token scope content, and interventions that change every choice's score."""
    for chat in chats:
        opts = GenerationOptions(batch_size=2, use_chat_template=chat)
        base = _assert_same_scores(hf, vl, MC_ITEMS, None, opts)  # the last one: the interventions' baseline
    content = vl.score_choices(MC_ITEMS, None, GenerationOptions(batch_size=2, token_scope="content"))
    _assert_same(hf.score_choices(MC_ITEMS, None, GenerationOptions(batch_size=2, token_scope="content")), content)
    # content: the item's text only, not the template around it
    assert all(r["tokens"] < len(r["prompt_token_ids"]) for r in content.to_pylist())
    layers = vl.moe_layers
    plan = pl.DataFrame(
        {
            "item_id": ["*", "*", "q2"],
            "layer": layers,
            "expert": [0, 3, 5],
            "mode": ["deactivate", "soft", "activate"],
            "strength": [None, 0.8, None],
        },
        schema=SCHEMA,
    )
    steered = _assert_same_scores(hf, vl, MC_ITEMS, plan, opts)
    # every choice's pass ran with the item's interventions
    assert all(np.abs(np.subtract(s, b)).min() > 1e-4 for s, b in zip(steered, base))


def _freq(table, layers, experts) -> np.ndarray:
    return np.asarray(table.column("freq").to_pylist()).reshape(table.num_rows, len(layers), experts)


def _deactivation_case(hf, vl):
    """Deactivate q1's most used expert at the first MoE layer (q1 only), soften one of q3's, and an expert
    for every item ('*') at the last layer: vLLM's own router never selects a deactivated expert there,
    q2, q4, q5 keep their routing and tokens, and both backends agree on the intervened run."""
    opts = GenerationOptions(batch_size=3, max_new_tokens=6)
    base = vl.generate(ITEMS, options=opts)
    E, layers = vl.num_experts, vl.moe_layers
    freq = _freq(base, layers, E)
    top0 = int(np.argmax(freq[0, 0]))  # q1's most used expert at the first MoE layer
    per_item = pl.DataFrame(
        {
            "item_id": ["q1", "q3"],
            "layer": [layers[0], layers[1]],
            "expert": [top0, 5],
            "mode": ["deactivate", "soft"],
            "strength": [None, 0.5],
        },
        schema=SCHEMA,
    )
    b = vl.generate(ITEMS, per_item, opts)
    sel = vl.engine_selected.numpy()  # vLLM's own router's choices, [S, L, E]
    assert sel.shape == (ITEMS.height, len(layers), E)
    assert not sel[0, 0, top0], "vLLM selected an expert deactivated for q1"
    assert _freq(b, layers, E)[0, 0, top0] == 0
    assert sel[1:, 0, top0].any(), "the expert deactivated for q1 only should stay in use by other items"
    _assert_same(base, b, rows={1, 3, 4})  # q2, q4, q5: no intervention, same routing and tokens
    _assert_same(hf.generate(ITEMS, per_item, GenerationOptions(batch_size=5, max_new_tokens=6)), b)

    top_last = int(np.argmax(freq[:, -1].sum(axis=0)))
    every = pl.DataFrame(
        {"item_id": ["*"], "layer": [layers[-1]], "expert": [top_last], "mode": ["deactivate"], "strength": [None]}, schema=SCHEMA
    )
    c = vl.generate(ITEMS, every, opts)
    assert not vl.engine_selected.numpy()[:, -1, top_last].any(), "vLLM selected an expert deactivated for all"
    assert (_freq(c, layers, E)[:, -1, top_last] == 0).all()


def test_version_pin_is_a_clear_error():
    check_vllm_version(VERIFIED_VLLM_VERSION + "+cpu")
    with pytest.raises(ConfigError, match=f"verified on vLLM {VERIFIED_VLLM_VERSION}"):
        check_vllm_version("0.31.2")
    check_vllm_version("0.31.2", allow_unverified=True)
    assert vllm.__version__.split("+")[0] == VERIFIED_VLLM_VERSION


def test_same_outputs_and_routing_as_transformers(qwen):
    hf, vl = qwen
    # vLLM's default engine: routing runs in worker processes, not in this one
    assert os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "1"
    assert vl.worker_pids and os.getpid() not in vl.worker_pids
    assert vl.moe_layers == hf.moe_layers
    a = hf.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=8))
    vl.record_steps = True
    try:
        b = vl.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=8))
    finally:
        vl.record_steps = False
    steps = vl.steps
    # the engine really packed several requests per step, chunked prefills, and queued requests
    assert any(len(set(s)) > 1 for s in steps)
    assert any(len(s) == 64 for s in steps)
    assert len(set(steps[0])) < ITEMS.height
    assert sum(len(x) for x in b.column("output_token_ids").to_pylist()) > 5
    _assert_same(a, b)


def test_default_dtype_is_the_checkpoints_on_both_backends(qwen):
    """dtype auto: the float32 checkpoint runs in float32 on both (vLLM's own auto would pick bfloat16)."""
    hf, vl = qwen
    assert hf.dtype == vl.dtype == "float32"
    meta = parse_routing_metadata(vl.generate(ITEMS[:2], options=GenerationOptions(max_new_tokens=2)).schema.metadata)
    assert meta["dtype"] == "float32" and meta["backend"] == "vllm" and meta["device"] == "cpu"
    assert meta["load_seconds"] > 0 and meta["generate_seconds"] > 0


def test_batches_fit_the_kv_cache(qwen, monkeypatch):
    """A batch never needs more KV cache than the engine holds (vLLM would preempt and recompute a
    request, counting its routing twice): with a cache of 12 blocks the 10 items go in several batches."""
    hf, vl = qwen
    batches = []
    run_chunk = vl._run_chunk
    monkeypatch.setattr(vl, "kv_cache_blocks", lambda: (12, 16))
    monkeypatch.setattr(vl, "_run_chunk", lambda reqs, ids, *a: batches.append(ids) or run_chunk(reqs, ids, *a))
    opts = GenerationOptions(batch_size=64, max_new_tokens=8)
    _assert_same(hf.generate(ITEMS, options=opts), vl.generate(ITEMS, options=opts))
    assert len(batches) > 1 and sum(len(b) for b in batches) == ITEMS.height


def test_a_preempted_batch_runs_again_in_halves(qwen, monkeypatch):
    """Where the KV cache holds less than estimated, vLLM preempts and recomputes a request, whose routing
    would count twice (the rehearsal saw it with GPT-OSS's sliding-window layers): such a batch is
    discarded and run again in halves, and the results are exact. The engine here says "preempted" for
    any batch of more than 2 items."""
    from moe_routing.capture.backends.vllm import Preempted

    hf, vl = qwen
    tries, run_chunk = [], vl._run_chunk

    def small_cache(reqs, ids, *args):
        tries.append(len(ids))
        if len(ids) > 2:
            raise Preempted("vLLM routed more tokens than it was fed")
        return run_chunk(reqs, ids, *args)

    monkeypatch.setattr(vl, "_run_chunk", small_cache)
    opts = GenerationOptions(batch_size=64, max_new_tokens=8)
    _assert_same(hf.generate(ITEMS, options=opts), vl.generate(ITEMS, options=opts))
    assert tries[0] == ITEMS.height and max(tries[1:]) <= ITEMS.height // 2 + 1
    assert sum(n for n in tries if n <= 2) == ITEMS.height


def test_prefill_only_matches(qwen):
    hf, vl = qwen
    a = hf.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=0))
    b = vl.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=0))
    assert all(len(x) == 0 for x in b.column("output_token_ids").to_pylist())
    _assert_same(a, b)


def test_interventions_per_request(qwen):
    _deactivation_case(*qwen)


def test_content_scope_and_assistant_turns(qwen):
    """Token scope content counts the same tokens with the same routing as on transformers, also where
    chunked prefill splits a prompt over steps; teacher-forced assistant turns route as on transformers."""
    hf, vl = qwen
    vl.record_steps = True
    try:
        for items, opts in (
            (ANSWERED, GenerationOptions(batch_size=5, max_new_tokens=0, token_scope="content")),
            (ITEMS, GenerationOptions(batch_size=5, max_new_tokens=6, token_scope="content")),
            (ANSWERED, GenerationOptions(batch_size=5, max_new_tokens=0)),
        ):
            vl.steps = []
            b = vl.generate(items, options=opts)
            _assert_same(hf.generate(items, options=opts), b)
            if opts.token_scope == "content":
                rows = b.to_pylist()
                generated = [max(len(r["output_token_ids"]) - 1, 0) for r in rows]
                assert all(r["tokens"] < len(r["prompt_token_ids"]) + g for r, g in zip(rows, generated))
            if opts.max_new_tokens == 0:
                # prefill only: a sequence in several steps had its prompt split by chunked prefill
                assert any(sum(seq in set(step) for step in vl.steps) > 1 for seq in range(items.height))
    finally:
        vl.record_steps = False
    forced = hf.generate(ANSWERED, options=GenerationOptions(batch_size=5, max_new_tokens=0)).to_pylist()
    plain = hf.generate(ITEMS, options=GenerationOptions(batch_size=5, max_new_tokens=0)).to_pylist()
    assert [len(f["prompt_token_ids"]) > len(p["prompt_token_ids"]) for f, p in zip(forced, plain)] == [
        a is not None for a in ANSWERED["assistant"]
    ]


def test_score_choices_match(qwen):
    _scoring_case(*qwen)


def test_gpt_oss_generates_and_scores_as_transformers(gptoss):
    hf, vl = gptoss
    assert len(vl.worker_pids) == 1 and os.getpid() not in vl.worker_pids
    opts = GenerationOptions(batch_size=5, max_new_tokens=6)
    _assert_same(hf.generate(ITEMS, options=opts), vl.generate(ITEMS, options=opts))
    opts = GenerationOptions(batch_size=5, max_new_tokens=0, token_scope="content")
    _assert_same(hf.generate(ANSWERED, options=opts), vl.generate(ANSWERED, options=opts))
    _scoring_case(hf, vl)


def test_unknown_layer_in_interventions_is_a_clear_error(qwen):
    _, vl = qwen
    iv = pl.DataFrame(
        {"item_id": ["q1"], "layer": [99], "expert": [0], "mode": ["deactivate"], "strength": [None]}, schema=SCHEMA
    )
    with pytest.raises(Exception, match="not an MoE layer"):
        vl.generate(ITEMS, iv, GenerationOptions(max_new_tokens=2))


def test_tensor_parallel_sigmoid_bias_family(glm):
    """GLM-4.5 on two ranks: vLLM selects on sigmoid(z) + bias and the backend overrides the router's choice
    on intervened rows, identically on both ranks (the backend checks their digests every batch)."""
    hf, vl = glm
    assert len(vl.worker_pids) == 2 and os.getpid() not in vl.worker_pids
    assert os.environ[BIND_ENV] == cpu_thread_binding(2, sorted(os.sched_getaffinity(0)))
    assert vl.sites[0]["bias"] and vl.sites[0]["scale"] == 2.5
    opts = GenerationOptions(batch_size=5, max_new_tokens=6)
    _assert_same(hf.generate(ITEMS, options=opts), vl.generate(ITEMS, options=opts))
    _deactivation_case(hf, vl)
    # multiple choice on two ranks (the ranks' digests cover the scoring requests' routing too)
    _assert_same_scores(hf, vl, MC_ITEMS, None, GenerationOptions(batch_size=3, use_chat_template=False))


def test_generate_stage_with_vllm_backend(tmp_path, tmp_path_factory, monkeypatch):
    """`python -m moe_routing generate --backend vllm` writes the hf backend's file (token scope content), and
    says how it was made."""
    import pyarrow.parquet as pq

    from moe_routing.cli import main
    from moe_routing.core.io import write_parquet

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    model = _checkpoint(tmp_path_factory, "qwen3_moe")
    # an items file holds one language, the one its name says
    items = ITEMS.with_columns(
        lang=pl.lit("en"), answers=pl.lit([], dtype=pl.List(pl.Utf8)), choices=pl.lit(None, dtype=pl.List(pl.Utf8))
    )
    write_parquet(items.to_arrow(), tmp_path / "en.parquet")
    outs = {}
    for name, extra in (("hf", []), ("vllm", ["--engine-arg", "max_model_len=512"])):
        outs[name] = tmp_path / f"{name}.parquet"
        rc = main(
            [
                "generate",
                "--backend",
                name,
                "--model",
                str(model),
                "--device",
                "cpu",
                "--items",
                str(tmp_path / "en.parquet"),
                "--out",
                str(outs[name]),
                "--max-new-tokens",
                "4",
                "--batch-size",
                "2",
                "--token-scope",
                "content",
                *extra,
            ]
        )
        assert rc == 0
    a, b = pq.read_table(outs["hf"]), pq.read_table(outs["vllm"])
    ma, mb = read_routing_metadata(outs["hf"]), read_routing_metadata(outs["vllm"])
    for key in ("model", "moe_layers", "num_experts", "top_k", "dtype"):
        assert ma[key] == mb[key], key
    assert (ma["backend"], mb["backend"], mb["dtype"]) == ("hf", "vllm", "float32")
    _assert_same(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["olmoe", "mixtral", "qwen2_moe", "granitemoe", "granitemoeshared", "granitemoehybrid"])
def test_other_families_match(tmp_path_factory, monkeypatch, family):
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    hf, vl = _pair(tmp_path_factory, family)
    try:
        assert vl.worker_pids == [os.getpid()]
        opts = GenerationOptions(batch_size=5, max_new_tokens=6)
        _assert_same(hf.generate(ITEMS, options=opts), vl.generate(ITEMS, options=opts))
    finally:
        vl.close()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ernie4_5_moe", "minimax_m2"])
def test_families_vllms_cpu_router_cannot_select(tmp_path_factory, monkeypatch, family):
    """vLLM 0.32's CPU router cannot select as these families do: it drops ERNIE-4.5's selection bias
    (softmax + e_score_correction_bias) and fails on MiniMax-M2's sigmoid without groups. The worker gives
    every row the adapter's selection instead; the tokens, the routing and per-item deactivations (vLLM's
    router, replaced, never selects a deactivated expert) then match transformers."""
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    hf, vl = _pair(tmp_path_factory, family)
    try:
        assert all(s["bias"] and s["replace_all"] for s in vl.sites)
        opts = GenerationOptions(batch_size=5, max_new_tokens=6)
        _assert_same(hf.generate(ITEMS, options=opts), vl.generate(ITEMS, options=opts))
        _deactivation_case(hf, vl)
    finally:
        vl.close()
