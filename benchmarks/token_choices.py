"""The demo's divergence curve under each choice of routed tokens (issue 12), from a finished demo run.

Regenerates the demo's parallel corpus (prefill only) with the trained demo model three ways and
analyses each, plus the public code's formulas on the default tokens:

- ``gen-prompt``: all tokens, the chat template with the generation prompt (the old default);
- ``default``: all tokens of the user turn, no generation prompt (the paper's public code; default now);
- ``content``: only the tokens of the item's own text (``--token-scope content``);
- ``public``: ``default`` tokens with ``--importance topk --entropy sequence`` (the public code's formulas).

Prints one row per variant: the divergence from English per MoE layer (mean over languages) and the
least-divergent layer. Run after ``snakemake`` (the demo): ``python benchmarks/token_choices.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from moe_routing.core import paths as P  # noqa: E402
from moe_routing.pipeline.config import load as load_config  # noqa: E402

GENERATE = {
    "gen-prompt": ["--generation-prompt"],
    "default": [],
    "content": ["--token-scope", "content"],
}
ANALYZE = {"public": ("default", ["--importance", "topk", "--entropy", "sequence"])}


def stage(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "moe_routing", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def curve(out_dir: Path) -> pl.DataFrame:
    table = pl.read_csv(out_dir / "divergence.tsv", separator="\t")
    return table.group_by("layer").agg(pl.col("value").mean()).sort("layer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    args = ap.parse_args()
    cfg = load_config(ROOT / args.config)
    model_name = cfg["routing"]["models"][0]
    model, dataset = cfg["models"][model_name], cfg["routing"]["parallel"]
    items = [str(ROOT / P.items(dataset, lang)) for lang in cfg["datasets"][dataset]["languages"]]
    common = ["--model", str(ROOT / model["path"]), "--items", *items, "--max-new-tokens", "0"]
    common += ["--dtype", model.get("dtype", "auto"), "--device", model.get("device", "auto")]
    curves = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in GENERATE.items():
            gen = Path(tmp) / f"{name}.parquet"
            stage("generate", *common, "--out", str(gen), "--seed", str(cfg["seed"]), *flags)
            stage("analyze", "--generations", str(gen), "--english", cfg["english"], "--out-dir", f"{tmp}/{name}")
            curves[name] = curve(Path(tmp) / name)
        for name, (tokens, flags) in ANALYZE.items():
            gen = Path(tmp) / f"{tokens}.parquet"
            stage("analyze", "--generations", str(gen), "--english", cfg["english"], "--out-dir", f"{tmp}/{name}", *flags)
            curves[name] = curve(Path(tmp) / name)
    layers = curves["default"]["layer"].to_list()
    print("| tokens | " + " | ".join(f"layer {layer}" for layer in layers) + " | least divergent |")
    print("|---" * (len(layers) + 2) + "|")
    for name, c in curves.items():
        values = c["value"].to_list()
        least = layers[values.index(min(values))]
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {least} |")


if __name__ == "__main__":
    main()
