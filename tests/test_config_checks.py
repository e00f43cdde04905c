"""Config-time checks: every bad config fails at validation with one line naming the key, before any job runs."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from moe_routing.pipeline import config as cfg
from moe_routing.core.errors import ConfigError
from workflow_helpers import REPO, load_config

NAME_HINT = "a letter, then letters, digits and _"


def fails(config: dict, key: str, needle: str = "") -> str:
    """Validation fails with one line 'invalid config: KEY: ...' (containing needle); returns the message."""
    with pytest.raises(ConfigError) as info:
        cfg.validate(config)
    message = str(info.value)
    assert "\n" not in message and message.count("invalid config") == 1, message
    assert message.startswith(f"invalid config: {key}: "), message
    assert needle in message, message
    return message


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """A Hugging Face cache with nothing in it (hub models: shape checks skipped)."""
    import huggingface_hub.constants

    cache = tmp_path / "hub_cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


# the published config.json values that decide the layer layout of the paper models
PAPER_MODELS = {
    "Qwen/Qwen3-30B-A3B-Instruct-2507": {
        "model_type": "qwen3_moe",
        "num_hidden_layers": 48,
        "num_experts": 128,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    },
    "Qwen/Qwen3-30B-A3B": {
        "model_type": "qwen3_moe",
        "num_hidden_layers": 48,
        "num_experts": 128,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    },
    "zai-org/GLM-4.5-Air": {"model_type": "glm4_moe", "num_hidden_layers": 46, "first_k_dense_replace": 1},
    "microsoft/Phi-3.5-MoE-instruct": {"model_type": "phimoe", "num_hidden_layers": 32},
    "openai/gpt-oss-20b": {"model_type": "gpt_oss", "num_hidden_layers": 24},
    "allenai/OLMoE-1B-7B-0125-Instruct": {"model_type": "olmoe", "num_hidden_layers": 16},
}


def cache_config_json(cache, repo_id: str, config_json: dict) -> None:
    """Put a config.json into a Hugging Face cache as `hf download REPO config.json` does."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "snapshots" / "rev0").mkdir(parents=True)
    (repo / "snapshots" / "rev0" / "config.json").write_text(json.dumps(config_json))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("rev0")


# --- schema: one line naming the key path, safe names ----------------------------------------------

INJECTION = "x; touch pwned"


@pytest.mark.parametrize(
    "mutate, key, needle",
    [
        (
            lambda c: c["models"]["demo"]["xici"].update(exclude_first=-1),
            "models.demo.xici.exclude_first",
            "-1 is less than the minimum of 0",
        ),
        (lambda c: c["models"]["demo"].update(batchsize=3), "models.demo.batchsize", "did you mean 'batch_size'?"),
        (
            lambda c: c["datasets"]["demo_facts"].update(languages=["en", INJECTION]),
            "datasets.demo_facts.languages[1]",
            NAME_HINT,
        ),
        (lambda c: c["datasets"]["demo_facts"].update(languages=["en", "-rf"]), "datasets.demo_facts.languages[1]", NAME_HINT),
        (lambda c: c["models"].update({INJECTION: c["models"]["demo"]}), "models", f"key {INJECTION!r}"),
        (lambda c: c["datasets"].update({"a/b": c["datasets"]["demo_facts"]}), "datasets", "key 'a/b'"),
        (lambda c: c.update(english=INJECTION), "english", NAME_HINT),
        (lambda c: c["routing"].update(low_resource=["pl", "$(id)"]), "routing.low_resource[1]", NAME_HINT),
        (lambda c: c["routing"]["tasks"].update({INJECTION: "demo_task"}), "routing.tasks", "key"),
        (lambda c: c["routing"]["tasks"].update(math=INJECTION), "routing.tasks.math", NAME_HINT),
        (lambda c: c["routing"].update(parallel="../x"), "routing.parallel", NAME_HINT),
        (lambda c: c["routing"].update(accuracy="a b"), "routing.accuracy", NAME_HINT),
        (lambda c: c["routing"]["steering"][0].update(benchmark="`id`"), "routing.steering[0].benchmark", NAME_HINT),
        (lambda c: c["routing"]["steering"][0].update(task="t;x"), "routing.steering[0].task", NAME_HINT),
        (lambda c: c["xici"].update(models=["demo", "d'x"]), "xici.models[1]", NAME_HINT),
        (lambda c: c["xici"].update(datasets=["x>y"]), "xici.datasets[0]", NAME_HINT),
        (lambda c: c["routing"].update(models=["de mo"]), "routing.models[0]", NAME_HINT),
        (lambda c: c["demo"].update(model="demo;x"), "demo.model", NAME_HINT),
        (lambda c: c["demo"]["world"].update({"n-entities; id": 3}), "demo.world", "key"),
        (lambda c: c["demo"]["build"].update({"--layers": 3}), "demo.build", "key"),
        (lambda c: c["datasets"]["demo_facts"].update(options={"limit 5": 1}), "datasets.demo_facts.options", "key"),
        (lambda c: c["models"]["demo"].update(engine_args={"a=b": 1}), "models.demo.engine_args", "key"),
        (lambda c: c["models"]["demo"]["steering"].update(benchmarks={"x y": {}}), "models.demo.steering.benchmarks", "key"),
        (lambda c: c.update(python={"main": "python3 -c 'import os'"}), "python.main", "interpreter path"),
        (lambda c: c.update(python={"vllm": "-c"}), "python.vllm", "interpreter path"),
        (lambda c: c["xici"].update(conditions=["xici", "xici"]), "xici.conditions", "non-unique"),
        (lambda c: c.update(models=list(range(200))), "models", "is not of type 'object'"),
    ],
)
def test_schema_errors_are_one_line_naming_the_key(mutate, key, needle):
    config = load_config()
    mutate(config)
    message = fails(config, key, needle)
    assert len(message) < 300


def test_safe_paths_and_names_pass(monkeypatch):
    monkeypatch.setattr(cfg, "check_interpreters", lambda config: None)  # the paths' spelling only, not their presence
    config = load_config()
    config["python"] = {"main": "/opt/envs/main/bin/python3.11", "vllm": ".venv-vllm/bin/python"}
    config["datasets"]["demo_facts"]["languages"] = ["en", "zh_Hant", "p0"]
    config["datasets"]["demo_facts"]["system"] = "Answer; in $HOME's words"  # free text: quoted, not checked
    cfg.validate(config)


# --- what the studies need --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, key, needle",
    [
        (lambda c: c["datasets"]["demo_facts"].update(judge="none"), "datasets.demo_facts.judge", "xici.datasets"),
        (
            lambda c: c["datasets"]["demo_task_bench"].update(judge="none"),
            "datasets.demo_task_bench.judge",
            "routing.steering[0].benchmark",
        ),
        (lambda c: c["xici"].update(conditions=[]), "xici.conditions", "at least one"),
        (
            lambda c: c["datasets"]["demo_parallel"].update(languages=["de", "fr"]),
            "datasets.demo_parallel.languages",
            "routing.parallel",
        ),
        (lambda c: c["datasets"]["demo_task"].update(languages=["de"]), "datasets.demo_task.languages", "routing.tasks.math"),
        (
            lambda c: c.update(english="sv") or c["datasets"]["demo_task"].update(languages=["en"]),
            "datasets.demo_task.languages",
            "'sv'",
        ),
        (
            lambda c: c["models"]["demo"]["steering"].update(benchmarks={"mgsm": {"tau": 0.3}}),
            "models.demo.steering.benchmarks.mgsm",
            "routing.steering",
        ),
    ],
)
def test_what_a_study_needs_is_checked(mutate, key, needle):
    config = load_config()
    mutate(config)
    fails(config, key, needle)


def test_accuracy_set_without_judgments_is_rejected():
    config = load_config()
    config["datasets"]["demo_facts"]["judge"] = "none"
    config["xici"]["datasets"] = []
    fails(config, "datasets.demo_facts.judge", "routing.accuracy")


def test_english_is_not_required_where_it_is_not_the_reference():
    """XICI datasets (Table 3's paraphrases have no English), the accuracy set and steering benchmarks."""
    config = load_config()
    for name in ("demo_facts", "demo_task_bench"):
        config["datasets"][name]["languages"] = ["de", "fr", "es"]
    config["routing"]["low_resource"] = ["fr"]  # among the steering benchmark's languages
    cfg.validate(config)


def test_xici_without_models_needs_no_conditions():
    config = load_config()
    config["xici"].update(models=[], conditions=[])
    cfg.validate(config)


def test_items_dataset_files_must_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config()
    config["datasets"]["mine"] = {"source": "items", "languages": ["en", "de"], "judge": "exact"}
    config["xici"]["datasets"] = ["demo_facts", "mine"]
    fails(config, "datasets.mine", "resources/data/mine/en.parquet, resources/data/mine/de.parquet missing")
    for lang in ("en", "de"):
        (tmp_path / "resources" / "data" / "mine").mkdir(parents=True, exist_ok=True)
        (tmp_path / "resources" / "data" / "mine" / f"{lang}.parquet").write_bytes(b"x")
    cfg.validate(config)


def test_unused_items_dataset_is_not_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config()
    config["datasets"]["spare"] = {"source": "items", "languages": ["en"]}
    cfg.validate(config)


# --- models: local paths, router families, layer settings --------------------------------------------


def tiny_config(path, **model) -> dict:
    """The demo config on a local checkpoint (nothing built by the workflow)."""
    config = load_config()
    config["demo"] = {}
    demo = config["models"]["demo"]
    demo.pop("build")
    demo["path"] = str(path)
    demo["xici"].update(exclude_first=0, exclude_last=0)
    demo["steering"]["layers"] = []
    for key, value in model.items():
        demo[key].update(value)
    return config


def test_local_tiny_checkpoints_of_every_family_validate(tiny_checkpoint):
    from conftest import ALL_FAMILIES

    for family in ALL_FAMILIES:
        # Jamba's MoE layers are the odd ones: 4 layers leave 2, too few to exclude one at each end
        cfg.validate(
            tiny_config(
                tiny_checkpoint(family, layers=6 if family == "jamba" else 4),
                steering={"layers": [3]},
                xici={"exclude_first": 1, "exclude_last": 1},
            )
        )


def test_missing_local_model_path(tmp_path):
    fails(tiny_config(tmp_path / "nope"), "models.demo.path", "does not exist")
    fails(tiny_config("resources/models/nope"), "models.demo.path", "does not exist")
    fails(tiny_config(tmp_path), "models.demo.path", "no config.json")


def test_a_model_the_workflow_builds_is_not_looked_for():
    config = load_config()
    config["models"]["demo"]["path"] = "resources/models/not_built_yet"
    cfg.validate(config)


def test_checkpoint_without_moe_router(tiny_checkpoint, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 4}))
    fails(tiny_config(tmp_path), "models.demo.path", "unknown model_type 'llama'")
    dense = tmp_path / "dense"
    shutil.copytree(tiny_checkpoint("qwen3_moe", layers=4), dense)
    config_json = json.loads((dense / "config.json").read_text())
    (dense / "config.json").write_text(json.dumps(config_json | {"mlp_only_layers": [0, 1, 2, 3]}))
    fails(tiny_config(dense), "models.demo.path", "no MoE layer")


def test_xici_exclusion_leaving_no_layer(tiny_checkpoint):
    glm = tiny_checkpoint("glm4_moe", layers=4)  # layer 0 dense, 3 MoE layers
    cfg.validate(tiny_config(glm, xici={"exclude_first": 1, "exclude_last": 1}))
    fails(
        tiny_config(glm, xici={"exclude_first": 2, "exclude_last": 1}),
        "models.demo.xici",
        "2 + 1 leaves none of the 3 MoE layers",
    )


def test_steering_layers_out_of_range_or_dense(tiny_checkpoint):
    glm = tiny_checkpoint("glm4_moe", layers=4)
    cfg.validate(tiny_config(glm, steering={"layers": [1, 2, 3]}))
    fails(tiny_config(glm, steering={"layers": [2, 4]}), "models.demo.steering.layers", "[4] out of range")
    fails(tiny_config(glm, steering={"layers": [0, 1]}), "models.demo.steering.layers", "[0] not MoE layers")


def test_missing_local_judge_model(tmp_path):
    config = load_config()
    config["datasets"]["demo_facts"]["judge"] = "llm"
    config["judge_model"] = {"path": str(tmp_path / "judge")}
    fails(config, "judge_model.path", "does not exist")


def test_hub_ids_are_checked_from_the_local_cache_only(tiny_checkpoint, empty_hub_cache):
    config = tiny_config("someorg/tiny-moe", steering={"layers": [0]})
    cfg.validate(config)  # not in the cache: no network, checks skipped
    cache_config_json(
        empty_hub_cache, "someorg/tiny-moe", json.loads((tiny_checkpoint("glm4_moe", layers=4) / "config.json").read_text())
    )
    fails(config, "models.demo.steering.layers", "[0] not MoE layers of someorg/tiny-moe")


def test_each_config_json_is_read_once(tiny_checkpoint, monkeypatch):
    config = tiny_config(tiny_checkpoint("olmoe", layers=4))
    config["models"]["twin"] = json.loads(json.dumps(config["models"]["demo"]))
    config["routing"]["models"] = ["demo", "twin"]
    reads = []
    real = cfg.read_layout
    monkeypatch.setattr(cfg, "read_layout", lambda path, *kind: reads.append(path) or real(path, *kind))
    cfg.validate(config)
    assert len(reads) == 1


@pytest.mark.parametrize("name", ["config.yaml", "xici-paper.yaml", "routing-paper.yaml"])
def test_shipped_configs_validate_fast_without_the_hub(name, empty_hub_cache):
    start = time.perf_counter()
    cfg.load(REPO / "config" / name)
    assert time.perf_counter() - start < 5  # runs at every snakemake start; about 0.1 s here


@pytest.mark.parametrize("name", ["xici-paper.yaml", "routing-paper.yaml"])
def test_paper_configs_pass_the_layer_checks_with_cached_config_json(name, empty_hub_cache, monkeypatch):
    for repo_id, config_json in PAPER_MODELS.items():
        cache_config_json(empty_hub_cache, repo_id, config_json)
    reads = []
    real = cfg.read_layout
    monkeypatch.setattr(cfg, "read_layout", lambda path, *kind: reads.append(path) or real(path, *kind))
    config = cfg.load(REPO / "config" / name)
    assert len(reads) == len(config["models"])  # every model's layout was checked
    config["models"]["qwen3"]["xici"].update(exclude_first=24, exclude_last=24)
    config["models"]["qwen3"]["steering"]["layers"] = [48]
    fails(config, "models.qwen3.xici", "24 + 24 leaves none of the 48 MoE layers of Qwen/Qwen3-30B-A3B")
