"""The stand-ins the paper configs serve with vLLM load and generate in plain `vllm.LLM` (CPU build, .venv-vllm)."""

from __future__ import annotations

import gc

import pytest

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm", reason="vllm is not installed (create .venv-vllm with scripts/setup_vllm.sh)")

from moe_routing.capture.adapters import get_adapter  # noqa: E402
from moe_routing.capture.backends import GenerationOptions, render_prompt  # noqa: E402
from moe_routing.rehearsal.stand_ins import build_stand_in, judge_prompt_ids  # noqa: E402

SYSTEM = "In just a few words, answer in the language of the question."
# (hub id, judge?): the models and the judge the paper configs run with backend: vllm (the judge covers
# routing-paper's Qwen3-30B-A3B: same family and template)
SERVED = [
    ("Qwen/Qwen3-30B-A3B-Instruct-2507", False),
    ("Qwen/Qwen3-30B-A3B", True),
    ("openai/gpt-oss-20b", False),
    ("allenai/OLMoE-1B-7B-0125-Instruct", False),
    ("zai-org/GLM-4.5-Air", False),
]


@pytest.mark.parametrize("hub_id, judge", SERVED, ids=[f"{h}{'-judge' if j else ''}" for h, j in SERVED])
def test_stand_in_generates_in_vllm(tmp_path, monkeypatch, hub_id, judge):
    # in-process engines (half the start time); set per test, not at import: collecting this module
    # must not switch test_vllm_parity.py's multiprocessing engines to in-process
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from transformers import AutoConfig, AutoTokenizer

    path = build_stand_in(hub_id, tmp_path / "model", judge=judge)
    tok = AutoTokenizer.from_pretrained(path)
    adapter = get_adapter(AutoConfig.from_pretrained(path))
    if judge:
        prompts = [judge_prompt_ids(tok, seed=i) for i in range(6)]
    else:
        prompts = [render_prompt(tok, f"Wer baute Haus {i}?", SYSTEM, GenerationOptions(), adapter=adapter) for i in range(3)]
    llm = vllm.LLM(
        model=str(path), dtype="float32", max_model_len=1024, kv_cache_memory_bytes=64 * 2**20, enforce_eager=True, seed=0
    )
    try:
        outs = llm.generate(
            [{"prompt_token_ids": p} for p in prompts], vllm.SamplingParams(temperature=0.0, max_tokens=4), use_tqdm=False
        )
    finally:
        del llm
        gc.collect()
    assert len(outs) == len(prompts)
    if judge:
        verdicts = [tok.decode(o.outputs[0].token_ids, skip_special_tokens=True) for o in outs]
        assert set(verdicts) == {"YES", "NO"} and all(o.outputs[0].finish_reason == "stop" for o in outs)
    else:
        assert all(1 <= len(o.outputs[0].token_ids) <= 4 for o in outs)
