"""Transformers backend and the `generate` stage: order, chat template, prefill-only, CLI errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from moe_routing.capture.backends import GenerationOptions
from moe_routing.cli import main
from moe_routing.core.errors import ModelError
from moe_routing.core.contracts import GENERATIONS
from moe_routing.core.io import read_routing_metadata, write_parquet

ITEMS = pl.DataFrame(
    {
        "item_id": ["i1", "i2", "i3", "i4", "i5"],
        "lang": ["en"] * 5,
        "prompt": ["One?", "A longer question about the town of Hallowmere?", "Two", "Medium length prompt here", "x"],
        "system": ["Be brief.", "Be brief.", None, "Be brief.", None],
        "answers": [["a"]] * 5,
        "choices": [None] * 5,
    },
    schema_overrides={"choices": pl.List(pl.Utf8)},
)


def test_outputs_in_input_order_and_equal_to_batch_one(hf_backend):
    backend = hf_backend("qwen3_moe")
    batched = backend.generate(ITEMS, None, GenerationOptions(batch_size=2, max_new_tokens=5))
    assert batched.schema.equals(GENERATIONS, check_metadata=False)
    rows = batched.to_pylist()
    assert [r["item_id"] for r in rows] == ITEMS["item_id"].to_list()
    for i, r in enumerate(rows):
        single = backend.generate(ITEMS[i : i + 1], None, GenerationOptions(batch_size=1, max_new_tokens=5)).to_pylist()[0]
        assert single["output_token_ids"] == r["output_token_ids"] and single["output"] == r["output"]
        assert 1 <= len(r["output_token_ids"]) <= 5
    meta = batched.schema.metadata
    assert json.loads(meta[b"moe_layers"]) == backend.moe_layers and int(meta[b"top_k"]) == backend.top_k


def test_chat_template_with_thinking_off_and_no_silent_plain_fallback(hf_backend):
    backend = hf_backend("qwen3_moe")
    tok = backend.tokenizer
    ids = backend.render("Hello?", "Be brief.", GenerationOptions())
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>") and text.endswith("<think>\n\n</think>\n\n")
    thinking = tok.decode(backend.render("Hello?", None, GenerationOptions(enable_thinking=True)))
    assert "<think>" not in thinking and "system" not in thinking
    plain = tok.decode(backend.render("Hello?", "Be brief.", GenerationOptions(use_chat_template=False)))
    assert plain == "Be brief.\n\nHello?"
    saved, tok.chat_template = tok.chat_template, None
    try:
        # no template: an error unless the dataset asks for the plain text (chat_template: false)
        with pytest.raises(ModelError, match="no chat template; .* chat_template: false"):
            backend.render("Hello?", None, GenerationOptions())
        assert tok.decode(backend.render("Hello?", None, GenerationOptions(use_chat_template=False))) == "Hello?"
        # a template that rejects the system role (Gemma-style): the system text joins the user turn
        tok.chat_template = (
            "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
            "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        )
        assert tok.decode(backend.render("Hello?", "Be brief.", GenerationOptions())) == "<user>Be brief.\n\nHello?"
    finally:
        tok.chat_template = saved


def test_prefill_only_routes_the_prompt(hf_backend):
    backend = hf_backend("mixtral")
    rows = backend.generate(ITEMS, None, GenerationOptions(batch_size=3, max_new_tokens=0)).to_pylist()
    E = backend.num_experts
    for r in rows:
        assert r["output_token_ids"] == [] and r["output"] == ""
        n = len(r["prompt_token_ids"])
        for layer in range(len(backend.moe_layers)):
            freq = r["freq"][layer * E : (layer + 1) * E]
            assert sum(freq) == pytest.approx(backend.top_k)
            assert all(abs(f * n - round(f * n)) < 1e-4 for f in freq)  # counts over exactly n tokens


def test_no_capture_has_no_routing_columns(hf_backend):
    table = hf_backend("olmoe").generate(ITEMS[:2], None, GenerationOptions(capture=False, max_new_tokens=3))
    assert table.column_names == ["item_id", "lang", "output", "prompt_token_ids", "output_token_ids"]


# ------------------------------------------------------------------ the generate stage


@pytest.fixture
def files(tmp_path, tiny_checkpoint):
    model = tiny_checkpoint("glm4_moe")  # layer 0 is dense: a non-MoE layer to refer to
    en, de = tmp_path / "en.parquet", tmp_path / "de.parquet"
    write_parquet(ITEMS, en)
    write_parquet(ITEMS.with_columns(pl.lit("de").alias("lang")), de)
    return model, en, de, tmp_path


def write_interventions(path, rows):
    df = pl.DataFrame(
        rows,
        schema={"item_id": pl.Utf8, "layer": pl.Int64, "expert": pl.Int64, "mode": pl.Utf8, "strength": pl.Float64},
        orient="row",
    )
    write_parquet(df, path)
    return path


def test_generate_stage_writes_a_chunk_of_languages_into_one_file(files):
    model, en, de, tmp = files
    out = tmp / "g" / "en+de.parquet"
    rc = main(
        [
            "generate",
            "--model",
            str(model),
            "--items",
            str(en),
            str(de),
            "--out",
            str(out),
            "--batch-size",
            "2",
            "--max-new-tokens",
            "3",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    meta = read_routing_metadata(out)
    assert meta["moe_layers"] == [1, 2] and meta["num_experts"] == 8 and meta["top_k"] == 2
    t = pq.read_table(out)
    assert t.num_rows == 10 and t["lang"].to_pylist() == ["en"] * 5 + ["de"] * 5 and len(t["weights"][0].as_py()) == 2 * 8
    # batching across languages gives each sequence the routing it has alone
    alone = tmp / "g" / "de.parquet"
    assert (
        main(
            [
                "generate",
                "--model",
                str(model),
                "--items",
                str(de),
                "--out",
                str(alone),
                "--batch-size",
                "2",
                "--max-new-tokens",
                "3",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    de_rows = pl.from_arrow(t).filter(pl.col("lang") == "de")
    np.testing.assert_allclose(
        np.array(de_rows["weights"].to_list()), np.array(pl.read_parquet(alone)["weights"].to_list()), atol=1e-5
    )


def test_generate_stage_only_intervened(files):
    model, en, _, tmp = files
    plan = write_interventions(tmp / "iv.parquet", [("i2", 1, 0, "deactivate", None), ("*", 2, 1, "soft", 0.5)])
    out = tmp / "abl.parquet"
    rc = main(
        [
            "generate",
            "--model",
            str(model),
            "--items",
            str(en),
            "--out",
            str(out),
            "--interventions",
            str(plan),
            "--only-intervened",
            "--max-new-tokens",
            "3",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    t = pq.read_table(out)
    assert t["item_id"].to_pylist() == ["i2"] and t["freq"][0].as_py()[0] == 0.0


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("i1", 0, 0, "deactivate", None)], "layer 0 is not an MoE layer"),
        ([("i1", 1, 8, "deactivate", None)], "expert 8 out of range"),
        ([("i1", 1, 2, "soft", None)], "needs a finite strength"),
        ([("i1", 1, 2, "boost", None)], "mode must be one of"),
        ([("i1", 1, 2, "activate", None), ("*", 1, 2, "deactivate", None)], "both for '\\*'"),
    ],
)
def test_generate_stage_bad_interventions_leave_no_output(files, capsys, rows, message):
    model, en, _, tmp = files
    plan = write_interventions(tmp / "bad.parquet", rows)
    out = tmp / "never.parquet"
    rc = main(
        [
            "generate",
            "--model",
            str(model),
            "--items",
            str(en),
            "--out",
            str(out),
            "--interventions",
            str(plan),
            "--device",
            "cpu",
            "--max-new-tokens",
            "2",
        ]
    )
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "bad.parquet" in err
    assert __import__("re").search(message, err), err


def test_generate_stage_items_missing_column_leaves_no_output(files, capsys):
    model, en, _, tmp = files
    broken = tmp / "broken.parquet"
    write_parquet(ITEMS.drop("prompt"), broken)
    out = tmp / "o.parquet"
    rc = main(
        ["generate", "--model", str(model), "--items", str(en), "--items", str(broken), "--out", str(out), "--device", "cpu"]
    )
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "broken.parquet" in err and "prompt" in err


def test_silent_router_hooks_are_an_error(hf_backend, monkeypatch):
    from moe_routing.core.errors import ModelError

    backend = hf_backend("olmoe")
    block = backend.sites[0].router
    # emulate a fused kernel that bypasses the router module
    monkeypatch.setattr(block, "_forward_hooks", {})
    with pytest.raises(ModelError, match="router hooks never ran"):
        backend.generate(ITEMS[:1], None, GenerationOptions(max_new_tokens=2))


def test_device_map_loading_gives_the_same_routing(tiny_checkpoint, hf_backend):
    """Engine arg device_map (multi-GPU placement) goes through the hooks' device round trip unchanged."""
    import numpy as np
    import polars as pl

    from moe_routing.capture.backends import GenerationOptions, LoadOptions, load_backend

    path = tiny_checkpoint("qwen3_moe")
    mapped = load_backend("hf", str(path), LoadOptions(device="cpu", dtype="float32", extra={"device_map": {"": "cpu"}}))
    items = pl.DataFrame(
        {
            "item_id": ["a", "b"],
            "lang": ["en", "en"],
            "prompt": ["hello there", "one two three four"],
            "system": [None, None],
            "answers": [[], []],
            "choices": [None, None],
        },
        schema_overrides={"choices": pl.List(pl.String)},
    )
    opts = GenerationOptions(batch_size=2, max_new_tokens=4)
    a = hf_backend("qwen3_moe").generate(items, options=opts)
    b = mapped.generate(items, options=opts)
    assert a.column("output").to_pylist() == b.column("output").to_pylist()
    np.testing.assert_allclose(np.array(a.column("weights").to_pylist()), np.array(b.column("weights").to_pylist()), atol=1e-6)


def test_unknown_engine_option_is_a_clear_error(tiny_checkpoint):
    from moe_routing.capture.backends import LoadOptions, load_backend
    from moe_routing.core.errors import ConfigError

    with pytest.raises(ConfigError, match="tensor_parallel_size"):
        load_backend("hf", str(tiny_checkpoint("qwen3_moe")), LoadOptions(device="cpu", extra={"tensor_parallel_size": 2}))


def test_only_intervened_with_nothing_to_reask_writes_an_empty_file(tiny_checkpoint, tmp_path):
    """An ablation plan with no question (ablation-plan records so) still yields a valid (empty) generations file."""
    import polars as pl

    from moe_routing.core.contracts import GENERATIONS, INTERVENTIONS
    from moe_routing.core.provenance import EXPERTS_QUESTIONS

    items = pl.DataFrame(
        {"item_id": ["a"], "lang": ["en"], "prompt": ["hello"], "system": [None], "answers": [["x"]], "choices": [None]},
        schema_overrides={"choices": pl.List(pl.String)},
    )
    write_parquet(items, tmp_path / "en.parquet")
    write_parquet(INTERVENTIONS.empty_table(), tmp_path / "plan.parquet", metadata={EXPERTS_QUESTIONS: b"0"})
    rc = main(
        [
            "generate",
            "--model",
            str(tiny_checkpoint("qwen3_moe")),
            "--items",
            str(tmp_path / "en.parquet"),
            "--out",
            str(tmp_path / "out.parquet"),
            "--interventions",
            str(tmp_path / "plan.parquet"),
            "--only-intervened",
            "--device",
            "cpu",
            "--max-new-tokens",
            "2",
        ]
    )
    assert rc == 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 0
    assert set(GENERATIONS.names) <= set(table.column_names)
    assert read_routing_metadata(tmp_path / "out.parquet")["num_experts"] > 0


def test_a_prompt_longer_than_the_model_positions_names_the_item(hf_backend):
    backend = hf_backend("qwen3_moe")
    limit = backend.model.config.max_position_embeddings
    items = pl.DataFrame(
        {
            "item_id": ["short", "long"],
            "lang": ["en", "en"],
            "prompt": ["Hello?", "word " * (2 * limit)],
            "system": [None, None],
            "answers": [["x"], ["x"]],
            "choices": [None, None],
        },
        schema_overrides={"choices": pl.List(pl.String)},
    )
    with pytest.raises(ModelError, match=rf"item 'long' \(en\): its prompt is \d+ tokens, .* the model's {limit} positions"):
        backend.generate(items, None, GenerationOptions(max_new_tokens=2))


def test_cpu_allocation_failure_is_exit_75(monkeypatch, tmp_path, capsys):
    from moe_routing.core.errors import EXIT_OUT_OF_MEMORY
    from moe_routing.stages import judge

    def fail(args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried")

    monkeypatch.setattr(judge, "run", fail)
    assert main(["judge", "--items", "x", "--generations", "g", "--out", "o", "--judge", "exact"]) == EXIT_OUT_OF_MEMORY
    assert capsys.readouterr().err.count("\n") == 1
