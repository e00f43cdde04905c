"""Config values never run as shell code: names are rejected at validation, free values (paths,
system prompts, option values) reach the stages literally. The workflow runs for real here, on a
checkpoint folder and a dataset file whose names are themselves shell injections."""

from __future__ import annotations

import json

import polars as pl
import pytest

from moe_routing.pipeline import config as cfg
from moe_routing.core.errors import ConfigError
from moe_routing.rehearsal.tiny_models import build_tiny_checkpoint
from workflow_helpers import copy_workflow, load_config, snakemake, write_config

pytestmark = pytest.mark.slow

# each would create a file named PWNED* if any shell ever evaluated it
INJECTIONS = [
    "$(touch PWNED1)",
    "`touch PWNED2`",
    "'; touch PWNED3; '",
    '"; touch PWNED4; "',
    "x; touch PWNED5",
    "a\nb && touch PWNED6",
]


def _pwned(root):
    return sorted(str(p) for p in root.rglob("PWNED*"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c, v: c["models"].update({v: c["models"]["demo"]}),
        lambda c, v: c["datasets"]["demo_facts"].update(languages=["en", v]),
        lambda c, v: c.update(english=v),
        lambda c, v: c["routing"].update(low_resource=[v]),
        lambda c, v: c["routing"]["tasks"].update({v: "demo_task"}),
        lambda c, v: c["demo"]["world"].update({v: 1}),
        lambda c, v: c["demo"]["build"].update({v: 1}),
        lambda c, v: c["models"]["demo"].setdefault("engine_args", {}).update({v: 1}),
        lambda c, v: c["python"].update(main=v) if "python" in c else c.update(python={"main": v}),
    ],
)
def test_names_that_reach_a_command_are_rejected_at_validation(mutate):
    for value in INJECTIONS:
        config = load_config()
        mutate(config, value)
        with pytest.raises(ConfigError):
            cfg.validate(config)


def test_free_values_reach_the_stages_literally(tmp_path):
    (tmp_path / "wf").mkdir()
    root = copy_workflow(tmp_path / "wf")
    model_dir = root / "models" / ("m " + " ".join(INJECTIONS[:4]))
    build_tiny_checkpoint("qwen3_moe", model_dir, layers=2)
    data = root / "data" / ("eclektic " + INJECTIONS[0] + INJECTIONS[2] + ".jsonl")
    data.parent.mkdir(parents=True)
    rows = [
        {
            "q_id": f"q{i}",
            "original_lang": "en",
            "question": f"Q{i}?",
            "answer": "a",
            "content": "",
            "en_q": f"Question {i}?",
            "en_a": "yes",
            "de_q": f"Frage {i}?",
            "de_a": "ja",
        }
        for i in range(3)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    system = " ".join(INJECTIONS)
    config = {
        "models": {"m": {"path": str(model_dir), "backend": "hf", "dtype": "float32", "device": "cpu", "batch_size": 4}},
        "datasets": {
            "d": {
                "source": "eclektic",
                "path": str(data),
                "languages": ["en", "de"],
                "system": system,
                "options": {"limit": INJECTIONS[4]},
                "max_new_tokens": 2,
                "judge": "contains",
            }
        },
        "xici": {"models": ["m"], "datasets": ["d"]},
    }
    write_config(root / "config" / "inject.yaml", config)
    # the option value is one literal word: prepare rejects it as a number, without running it
    proc = snakemake("-c1", "results/m/d/judgments/en.parquet", "--configfile", "config/inject.yaml", cwd=root, check=False)
    assert proc.returncode != 0 and _pwned(root) == [] and _pwned(tmp_path) == []
    log = (root / "logs" / "prepare" / "data" / "d" / "en.log").read_text()
    assert "x; touch PWNED5" in log  # the option value arrived as one literal word
    config["datasets"]["d"]["options"]["limit"] = 2
    write_config(root / "config" / "inject.yaml", config)
    snakemake("-c1", "results/m/d/judgments/en.parquet", "--configfile", "config/inject.yaml", cwd=root)
    assert _pwned(root) == [] and _pwned(tmp_path) == []
    items = pl.read_parquet(root / "resources" / "data" / "d" / "en.parquet")
    assert items["system"].to_list() == [system, system]
    gens = pl.read_parquet(root / "results" / "m" / "d" / "generations" / "en.parquet")
    assert gens.height == 2
