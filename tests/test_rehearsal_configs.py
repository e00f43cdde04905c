"""The rehearsal overlays: merged into their paper config they validate, and they change only what a rehearsal must."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from moe_routing.pipeline.config import SCHEMA, validate
from moe_routing.rehearsal.mirrors import MIRRORS, mirror_folder
from moe_routing.rehearsal.stand_ins import STAND_INS

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ("xici-paper", "routing-paper")
# what an overlay may set: model/judge paths, their stand-in and the CPU, dataset paths and mirrors, languages, the cap sweep
ALLOWED = {
    "models": {"path", "stand_in", "device"},
    "judge_model": {"path", "stand_in", "device"},
    "datasets": {"path", "mirror", "languages"},
    "xici": {"cap_sweep"},
    "routing": {"low_resource"},  # the reduced benchmarks' low-resource language
}


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("paper", PAPERS)
def test_overlay_merges_and_validates(paper):
    base, overlay = load(paper), load(f"rehearsal/{paper}")
    merged = copy.deepcopy(base)
    update_config(merged, overlay)  # what `--configfile PAPER OVERLAY` does
    validate(merged)
    for section, keys in overlay.items():
        assert section in ALLOWED, section
        if section in ("xici", "routing"):
            assert set(keys) <= ALLOWED[section]
            continue
        entries = keys.items() if section != "judge_model" else [(None, keys)]
        for name, entry in entries:
            assert set(entry) <= ALLOWED[section], (section, name)
    # every model stands in for the paper's own model, every loader dataset is mirrored
    for name, m in merged["models"].items():
        assert m["stand_in"] == base["models"][name]["path"] and m["stand_in"] in STAND_INS, name
    if "judge_model" in base:
        assert merged["judge_model"]["stand_in"] == base["judge_model"]["path"]
    for name, d in merged["datasets"].items():
        assert d["mirror"] and d["source"] in MIRRORS, name
        assert set(d["languages"]) <= set(base["datasets"][name]["languages"]), name
        mirror_folder(d["source"], d["path"])


def test_xici_rehearsal_has_languages_enough_for_the_test():
    # a one-sided Mann-Whitney U reaches p < 0.05 only with 3 languages against 4 or more
    merged = load("xici-paper")
    update_config(merged, load("rehearsal/xici-paper"))
    assert all(len(merged["datasets"][d]["languages"]) >= 7 for d in merged["xici"]["datasets"])


def test_schema_lists_exactly_the_stand_ins():
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    assert sorted(schema["$defs"]["stand_in"]["enum"]) == sorted(STAND_INS)


def test_vllm_environment_file_is_a_conda_environment():
    """envs/vllm.yaml (rules' conda env for backend: vllm): conda's format, vLLM at the version the backend verifies."""
    from moe_routing.capture.backends.vllm import VERIFIED_VLLM_VERSION

    env = yaml.safe_load((ROOT / "envs" / "vllm.yaml").read_text())
    assert set(env) <= {"name", "channels", "dependencies", "variables"} and env["name"]
    deps = env["dependencies"]
    assert all(isinstance(d, str) or (isinstance(d, dict) and set(d) == {"pip"}) for d in deps)
    assert "pip" in deps and any(d.startswith("python=") for d in deps if isinstance(d, str))
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert f"vllm=={VERIFIED_VLLM_VERSION}" in pip and "torch==2.13.0" in pip
    # the package goes in after creation, from the workflow's directory (a relative pip path would not resolve)
    assert not any(p.startswith(("-e", ".")) for p in pip)
    assert "pip install --no-deps -e ." in (ROOT / "envs" / "vllm.post-deploy.sh").read_text()
