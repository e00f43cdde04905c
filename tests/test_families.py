"""Every family of the table (adapters/families.py): captured routing equals the model's own, the load-time
probe refuses a router kind that replays it wrongly, and the table is what the schema and stand-ins use.

Per-item deactivation on every family: test_adapters.test_interventions_act_per_sequence (parametrised on
the same ALL_FAMILIES)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from conftest import ALL_FAMILIES
from moe_routing.capture.adapters import FAMILIES, KINDS, forced_adapter, get_adapter
from moe_routing.capture.backends import GenerationOptions, LoadOptions, load_backend
from moe_routing.capture.backends.probe import probe
from moe_routing.core.errors import ModelError
from test_adapters import ITEMS, Received

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def own_router_logits(backend, ids: list[int]) -> list[torch.Tensor]:
    """The model's router logits per MoE layer for one sequence, as transformers reports them (output_router_logits)."""
    with torch.inference_mode():
        out = backend.model(input_ids=torch.tensor([ids]), use_cache=False, output_router_logits=True)
    logits = getattr(out, "router_logits", None)
    if logits is None:  # the family's causal-LM output has no router_logits: read the router modules' outputs
        seen: list = []
        handles = [s.router.register_forward_hook(lambda m, a, o: seen.append(o)) for s in backend.sites]
        try:
            with torch.inference_mode():
                backend.model(input_ids=torch.tensor([ids]), use_cache=False)
        finally:
            for h in handles:
                h.remove()
        logits = [backend.adapter.hf_read(o)[0] for o in seen]
    assert len(logits) == len(backend.sites)
    return [z.reshape(-1, z.shape[-1]) for z in logits]


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_captured_routing_equals_what_the_experts_received(hf_backend, family):
    backend = hf_backend(family)
    L, E = len(backend.sites), backend.num_experts
    for i in range(len(ITEMS)):
        received = Received(backend)
        try:
            row = backend.generate(ITEMS[i : i + 1], None, GenerationOptions(batch_size=1, max_new_tokens=0)).to_pylist()[0]
        finally:
            received.close()
        ids = row["prompt_token_ids"]
        weights, freq, softmax_mean = (
            torch.tensor(row[k], dtype=torch.float64).reshape(L, E) for k in ("weights", "freq", "softmax_mean")
        )
        for pos, z in enumerate(own_router_logits(backend, ids)):
            [(idx, w)] = received.calls[pos]
            assert idx.shape[0] == len(ids) == row["tokens"]
            dense = torch.zeros(len(ids), E, dtype=torch.float64).scatter(1, idx.long(), w.double())
            hits = torch.zeros(len(ids), E, dtype=torch.float64).scatter(1, idx.long(), 1.0)
            torch.testing.assert_close(weights[pos], dense.mean(0), atol=1e-5, rtol=0, msg=f"{family} weights")
            torch.testing.assert_close(freq[pos], hits.mean(0), atol=1e-5, rtol=0, msg=f"{family} freq")
            own = torch.softmax(z.double(), dim=-1).mean(0)
            torch.testing.assert_close(softmax_mean[pos], own, atol=1e-5, rtol=0, msg=f"{family} softmax_mean")


def test_probe_refuses_ernie_forced_onto_softmax_topk(tiny_checkpoint):
    # ERNIE-4.5 selects on softmax + e_score_correction_bias: plain softmax -> top-k replays it wrongly
    path = str(tiny_checkpoint("ernie4_5_moe"))
    with pytest.raises(ModelError, match=r"^ernie4_5_moe: router kind 'softmax_topk' .* at layer 1 \(the first MoE layer"):
        load_backend("hf", path, LoadOptions(device="cpu", dtype="float32", adapter="softmax_topk"))
    # its own kind, forced, passes
    backend = load_backend("hf", path, LoadOptions(device="cpu", dtype="float32", adapter="softmax_bias_topk"))
    assert backend.adapter.kind == "softmax_bias_topk" and backend.moe_layers == [1, 2]


def test_a_kind_forced_on_a_family_the_table_does_not_list_is_probed(hf_backend):
    # a model_type missing from the table finds its router by name and infers its outputs; the probe decides
    backend = hf_backend("qwen2_moe")
    for kind, fits in (("softmax_topk", True), ("topk_softmax", False), ("sigmoid_groups", False)):
        adapter = forced_adapter("my_new_moe", kind)
        sites = adapter.locate_hf(backend.model)
        assert [s.layer for s in sites] == backend.moe_layers
        spec = adapter.spec_from_config(backend.model.config)
        if fits:
            probe(backend.model, adapter, spec, sites, "cpu")
        else:
            with pytest.raises(ModelError, match=f"my_new_moe: router kind '{kind}'"):
                probe(backend.model, adapter, spec, sites, "cpu")


def test_unknown_family_names_the_supported_ones_and_the_adapter_key():
    class Cfg:
        model_type = "llama"

    with pytest.raises(ModelError) as err:
        get_adapter(Cfg())
    message = str(err.value)
    assert "\n" not in message and "`adapter:`" in message
    assert all(family in message for family in FAMILIES)


def test_schema_and_stand_ins_read_the_table():
    from moe_routing.rehearsal.stand_ins import STAND_INS

    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["$defs"]["model"]["properties"]["adapter"]["enum"] == list(KINDS)
    assert {s.family for s in STAND_INS.values()} <= set(FAMILIES)
    assert {f.kind for f in FAMILIES.values()} == set(KINDS)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_tiny_routers_are_spread(hf_backend, family):
    # every router weight (gate, router, wg, layer, ...) is found through the table and made peaky
    for site in hf_backend(family).sites:
        weight = next(p for n, p in site.router.named_parameters() if n.endswith("weight") and p.dim() == 2)
        assert float(weight.detach().std()) > 0.1, family


def test_the_adapter_key_reaches_the_layer_checks(tiny_checkpoint):
    from moe_routing.pipeline import config as cfg
    from moe_routing.core.errors import ConfigError
    from test_config_checks import tiny_config

    config = tiny_config(tiny_checkpoint("qwen2_moe", layers=4))
    config["models"]["demo"]["adapter"] = "softmax_topk"
    cfg.validate(config)
    config["models"]["demo"]["adapter"] = "softmax"
    with pytest.raises(ConfigError, match="adapter"):
        cfg.validate(config)


def test_readme_support_table_is_the_family_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Supported model families", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0] != "family (`model_type`)":
            rows[cells[0].strip("`")] = cells
    assert list(rows) == list(FAMILIES)
    for model_type, (_, example, kind, hf, vllm) in rows.items():
        family = FAMILIES[model_type]
        assert (example, kind, hf) == (f"`{family.example}`", f"`{family.kind}`", "✓"), model_type
        assert vllm.startswith("✓") == family.vllm_verified, model_type


# one family per router kind and router output shape
ONE_PER_KIND = tuple({(f.kind, f.outputs): f.model_type for f in reversed(FAMILIES.values())}.values())


@pytest.fixture(scope="module")
def tokenizer():
    from moe_routing.rehearsal.tiny_models import build_tokenizer

    return build_tokenizer()


@pytest.mark.parametrize("family", ONE_PER_KIND)
def test_probe_passes_in_bfloat16(tokenizer, family):
    # the replay stays within a bfloat16 weight's rounding of what the experts receive (CPU here; the same code on a GPU)
    from moe_routing.rehearsal.tiny_models import build_tiny_model

    model = build_tiny_model(family, tokenizer, layers=3, dtype="bfloat16")
    adapter = get_adapter(model)
    probe(model, adapter, adapter.spec_from_config(model.config), adapter.locate_hf(model), "cpu")


def test_generate_stage_stops_on_a_wrong_forced_kind_with_one_line(tiny_checkpoint, tmp_path, capsys):
    from moe_routing.cli import main
    from moe_routing.core.io import write_parquet
    from test_hf_backend import ITEMS as STAGE_ITEMS

    model = str(tiny_checkpoint("ernie4_5_moe"))
    capsys.readouterr()  # the checkpoint build's progress bars
    items, out = tmp_path / "en.parquet", tmp_path / "never.parquet"
    write_parquet(STAGE_ITEMS, items)
    args = ["generate", "--model", model, "--items", str(items), "--out", str(out), "--device", "cpu"]
    rc = main([*args, "--max-new-tokens", "2", "--adapter", "softmax_topk"])
    err = [line for line in capsys.readouterr().err.splitlines() if "ernie4_5_moe" in line]
    assert rc == 2 and not out.exists()
    assert len(err) == 1 and "router kind 'softmax_topk' does not replay" in err[0] and "at layer 1" in err[0], err
