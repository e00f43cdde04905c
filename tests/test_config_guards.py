"""Issue 22's config probes: every typo and malformed value is refused at validation, in one line naming the key,
before Snakemake plans (and so removes) anything."""

from __future__ import annotations

import sys

import pytest

from moe_routing.pipeline import config as cfg
from moe_routing.core import paths
from moe_routing.pipeline.config_guards import stage_flags
from moe_routing.core.errors import ConfigError
from moe_routing.pipeline.plan import Plan
from workflow_helpers import load_config, snakemake, write_config


def refused(config: dict, line: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.validate(config)
    assert str(info.value) == line


@pytest.mark.parametrize(
    "mutate, line",
    [
        (lambda c: c["demo"]["build"].update(layres=10), "demo.build.layres: unknown key; did you mean 'layers'?"),
        (lambda c: c["demo"]["world"].update(n_entitys=9), "demo.world.n_entitys: unknown key; did you mean 'n_entities'?"),
        (lambda c: c["demo"]["build"].update(seed=3), "demo.build.seed: set by the workflow itself; remove it here"),
        (lambda c: c.update(pyhton={}), "pyhton: unknown key; did you mean 'python'?"),
        (lambda c: c["demo"].update(biuld={}), "demo.biuld: unknown key; did you mean 'build'?"),
        (
            lambda c: c["models"]["demo"]["xici"].update(exclude_frist=1),
            "models.demo.xici.exclude_frist: unknown key; did you mean 'exclude_first'?",
        ),
        (
            lambda c: c["routing"]["steering"][0].update(strenght=1),
            "routing.steering[0].strenght: unknown key; did you mean 'strength'?",
        ),
        (lambda c: c.update(cluster={"node": {"cpu": 2}}), "cluster.node.cpu: unknown key; did you mean 'cpus'?"),
    ],
)
def test_an_unknown_key_at_any_level_is_named_with_its_nearest_spelling(mutate, line):
    config = load_config()
    mutate(config)
    refused(config, "invalid config: " + line)


def test_loader_options_are_checked_against_the_loader(monkeypatch):
    monkeypatch.setattr(cfg, "check_runs", lambda config: None)  # no items files needed for this check
    config = load_config()
    config["datasets"]["mine"] = {"source": "mgsm", "languages": ["en"], "options": {"few_shoot": 2}}
    refused(config, "invalid config: datasets.mine.options.few_shoot: unknown key; did you mean 'few_shot'?")


def test_stage_flags_are_read_from_the_parsers_without_importing_them():
    assert {"layers", "experts", "fact_pool", "task_layers", "steering_strength"} <= stage_flags("build_demo")
    assert {"n_entities", "n_parallel"} <= stage_flags("demo_world")


@pytest.mark.parametrize(
    "python, line",
    [
        ("/opt/nothing/bin/python", "python.main: '/opt/nothing/bin/python' is not an executable file"),
        ("/bin/sh", "python.main: '/bin/sh' cannot import moe_routing"),
    ],
)
def test_the_interpreter_must_exist_and_import_moe_routing(python, line):
    config = load_config()
    config["python"] = {"main": python}
    with pytest.raises(ConfigError, match="invalid config: " + line):
        cfg.validate(config)


def test_the_vllm_interpreter_is_checked_when_a_model_uses_vllm(monkeypatch):
    # conftest leaves python.vllm unchecked where .venv-vllm is not built yet (CI builds it after these tests)
    monkeypatch.delenv("MOE_ROUTING_SKIP_INTERPRETERS", raising=False)
    config = load_config()
    config["python"] = {"vllm": "/opt/nothing/vllm/python"}
    cfg.validate(config)  # no model uses vLLM: not read
    config["models"]["demo"]["backend"] = "vllm"
    refused(config, "invalid config: python.vllm: '/opt/nothing/vllm/python' is not an executable file")
    config["python"] = {"vllm": sys.executable}
    cfg.validate(config)


@pytest.mark.parametrize(
    "mutate, line",
    [
        (lambda c: c["models"]["demo"]["xici"].update(tau=float("nan")), "models.demo.xici.tau: nan is not a finite number"),
        (lambda c: c["models"]["demo"]["xici"].update(tau=float("inf")), "models.demo.xici.tau: inf is not a finite number"),
        (lambda c: c["models"]["demo"]["xici"].update(alpha=float("nan")), "models.demo.xici.alpha: nan is not a finite number"),
        (lambda c: c["routing"].update(tau=float("-inf")), "routing.tau: -inf is not a finite number"),
        (
            lambda c: c["demo"]["build"].update(steering_strength=float("nan")),
            "demo.build.steering_strength: nan is not a finite number",
        ),
        (lambda c: c.update(seed=-1), "seed: -1 is less than the minimum of 0"),
        (lambda c: c.update(seed=2**70), f"seed: {2**70} is greater than the maximum of 4294967295"),
    ],
)
def test_every_number_is_finite_and_seeds_fit_32_bits(mutate, line):
    config = load_config()
    mutate(config)
    refused(config, "invalid config: " + line)


def test_largest_seed_passes():
    config = load_config()
    config["seed"] = 2**32 - 1
    cfg.validate(config)


@pytest.mark.parametrize(
    "mutate, line",
    [
        (
            lambda c: c["datasets"]["demo_facts"].update(languages=["en", "de", "DE"]),
            "datasets.demo_facts.languages: duplicate language code 'DE' (as 'de'; case is ignored)",
        ),
        (
            lambda c: c["routing"].update(low_resource=["zz"]),
            "routing.low_resource: ['zz'] not among the steering benchmarks' languages",
        ),
        (
            lambda c: c["datasets"]["demo_facts"].update(languages=["en", "de\n"]),
            "datasets.demo_facts.languages[1]: 'de\\n' is not allowed",
        ),
        (lambda c: c.update(english="en\n"), "english: 'en\\n' is not allowed"),
        (lambda c: c["datasets"]["demo_facts"].update(languages=["en", "d" * 300]), "datasets.demo_facts.languages[1]: 'ddd"),
    ],
)
def test_language_lists(mutate, line):
    config = load_config()
    mutate(config)
    with pytest.raises(ConfigError) as info:
        cfg.validate(config)
    assert str(info.value).startswith("invalid config: " + line) and "\n" not in str(info.value)


def test_a_long_chunk_name_is_hashed_and_maps_back_to_its_languages():
    langs = [f"lang{i:02d}_" + "x" * 40 for i in range(12)]
    name = paths.chunk_name(langs)
    assert len(name) <= paths.MAX_CHUNK_NAME and len(f"{name}.parquet".encode()) < 255
    assert paths.chunk_languages(name) == langs
    assert paths.chunk_name(["en", "de"]) == "en+de" and paths.chunk_languages("en+de") == ["en", "de"]
    import re

    assert re.fullmatch(paths.CHUNK, name)


def test_a_plan_with_long_language_codes_keeps_file_names_short():
    config = load_config()
    langs = ["en"] + [f"l{i}" + "x" * 60 for i in range(7)]
    config["datasets"]["demo_facts"]["languages"] = langs
    config["models"]["demo"]["languages_per_job"] = 8
    cfg.validate(config)
    for path in Plan(config).generation_files("demo", "demo_facts"):
        assert all(len(part.encode()) < 255 for part in path.split("/")), path


@pytest.mark.parametrize(
    "mutate, line",
    [
        (lambda c: c.update(python={"main": "/opt/nothing/bin/python"}), "python.main: '/opt/nothing/bin/python'"),
        (lambda c: c["demo"]["build"].update(layres=10), "demo.build.layres: unknown key; did you mean 'layers'?"),
        (lambda c: c.update(seed=2**70), "seed: "),
        (lambda c: c["models"]["demo"]["xici"].update(tau=float("nan")), "models.demo.xici.tau: nan is not a finite number"),
    ],
    ids=["python.main", "demo.build.layres", "seed", "tau"],
)
def test_a_dry_run_refuses_in_one_line_before_planning(tmp_path, mutate, line):
    config = load_config()
    mutate(config)
    path = write_config(tmp_path / "bad.yaml", config)
    proc = snakemake("-n", "--configfile", str(path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Job stats" not in out
    assert any(x.startswith("invalid config: " + line) for x in out.splitlines()) and out.count("invalid config") == 1, out


# --- stage arguments: every number finite and in range, one line, exit 2 --------------------------------------------


@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["xici", "--generations", "g.parquet", "--judgments", "j.parquet", "--out", "o", "--tau", "nan"],
            "--tau: nan is not a finite",
        ),
        (
            ["xici", "--generations", "g.parquet", "--judgments", "j.parquet", "--out", "o", "--alpha", "inf"],
            "--alpha: inf is not a finite",
        ),
        (
            ["xici", "--generations", "g", "--judgments", "j", "--sweep-out", "s", "--taus", "0.1", "nan"],
            "'nan' is not a finite number",
        ),
        (["xici", "--generations", "g", "--judgments", "j", "--sweep-out", "s", "--alphas", "0"], "'0' is outside (0, 1]"),
        (["steer-plan", "--tau", "nan"], "argument --tau: 'nan' is not a finite number"),
        (["steer-plan", "--tau", "0.1", "--strength", "2"], "argument --strength: '2' is outside [-1, 1]"),
        (["generate", "--seed", "-1"], "argument --seed: -1 is outside [0, 2**32)"),
        (["generate", "--seed", str(2**70)], f"argument --seed: {2**70} is outside [0, 2**32)"),
        (["ablation-plan", "--seed", "3.7"], "argument --seed: '3.7' is not an integer"),
    ],
)
def test_stage_arguments_are_finite_and_in_range(argv, needle, capsys):
    from moe_routing.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err


# --- a local checkpoint's config.json: one line for every malformed layout value -------------------------------------

QWEN3_MOE = {"model_type": "qwen3_moe", "num_hidden_layers": 4, "num_experts": 8, "decoder_sparse_step": 1, "mlp_only_layers": []}


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"num_hidden_layers": "abc"}, "num_hidden_layers must be an integer, is 'abc'"),
        ({"num_hidden_layers": 1e9}, "num_hidden_layers must be an integer, is 1000000000.0"),
        ({"num_hidden_layers": 10**9}, "num_hidden_layers 1000000000 is out of range [0, 10000]"),
        ({"mlp_only_layers": 5}, "mlp_only_layers must be a list of layer indices, is 5"),
        ({"num_experts": 1e9}, "num_experts must be an integer, is 1000000000.0"),
        ({"num_local_experts": 10**9}, "num_local_experts 1000000000 is out of range"),
        ({"num_hidden_layers": True}, "num_hidden_layers must be an integer, is True"),
    ],
)
def test_local_config_json_values_are_checked_in_one_line(tmp_path, change, needle):
    import json

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({**QWEN3_MOE, **change}))
    config = load_config()
    config["models"]["demo"]["path"] = str(model)
    del config["models"]["demo"]["build"]
    with pytest.raises(ConfigError) as info:
        cfg.validate(config)
    message = str(info.value)
    assert message.startswith("invalid config: models.demo.path: ") and needle in message and "\n" not in message, message


# --- the working folder: checked before the DAG is built ------------------------------------------------------------


def test_a_looping_symlink_is_refused_in_one_line_before_planning(tmp_path):
    from workflow_helpers import copy_workflow

    root = copy_workflow(tmp_path)
    link = root / "resources" / "data" / "demo_facts" / "en.parquet"
    link.parent.mkdir(parents=True)
    link.symlink_to(link.name)
    proc = snakemake("-n", "--configfile", ".test/config.yaml", cwd=root, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Job stats" not in out
    assert "resources/data/demo_facts/en.parquet: a symbolic link that loops; remove it" in out.splitlines(), out


def test_a_read_only_results_folder_is_refused(tmp_path, monkeypatch):
    import os

    from moe_routing.pipeline.config_guards import check_workdir

    (tmp_path / "results" / "demo").mkdir(parents=True)
    check_workdir(tmp_path)
    # as root, chmod does not stop a write: the check asks os.access, which a test can answer for a plain user
    monkeypatch.setattr(os, "access", lambda path, mode: not str(path).endswith("results/demo"))
    with pytest.raises(ConfigError, match=r"^results/demo/: cannot write into it \(permission denied\)"):
        check_workdir(tmp_path)


def test_an_interpreter_can_be_left_unchecked_by_name_only(monkeypatch):
    monkeypatch.setenv("MOE_ROUTING_SKIP_INTERPRETERS", "python.vllm")
    config = load_config()
    config["models"]["demo"]["backend"] = "vllm"
    config["python"] = {"vllm": "/opt/nothing/vllm/python"}
    cfg.validate(config)
    config["python"] = {"main": "/opt/nothing/bin/python"}
    refused(config, "invalid config: python.main: '/opt/nothing/bin/python' is not an executable file")
