"""The demo model's planted truth (``planted_truth.json`` next to its weights) and the self-check that
measures every decision's margin on the demo prompts.

Schema of ``planted_truth.json`` (version 1), written by ``build-demo``:

- ``schema_version``: 1; ``seed``; ``languages`` (config order); ``english``;
- ``moe_layers``: model layer indices of the MoE layers (all layers); ``num_experts``; ``top_k`` (1);
- ``layers``: per model layer, ``role``: ``language`` (first and last: routed by the prompt's
  language) or ``shared`` (middle: facts, task, null), and ``null_expert``;
- ``divergence_profile``: layer (string) -> ``language`` | ``shared``: where divergence from English
  is planted high (language) and low (shared);
- ``language_experts``: rows ``{lang, layer, expert}``: the expert of each language in the first and
  last layer (English's included; the routing study reports the non-English ones);
- ``task_experts``: rows ``{task, layer, expert}`` (task ``math``); ``task_skilled``: languages whose
  word problems the task experts solve without steering (the others need the steering boost);
- ``facts``: rows ``{item_id, known_languages, experts, slot_experts}``: ``experts`` the distinct
  ``[layer, expert]`` pairs that hold the fact (each slot position of a question where the fact is
  known routes to one of them per middle layer); ``slot_experts`` layer (string) -> the expert of each
  slot (``?``, ``<|end|>``, ``<|assistant|>``); ``evidence_units`` (slots × middle layers) and
  ``evidence_needed``: the fact is answered while more than this many units are left;
- ``margins``: the smallest margins measured by ``self_check`` over every demo prompt (logit units):
  ``router`` (top-1 minus runner-up router logit, every token, every layer), ``answer`` (the
  answer token minus the runner-up at the generation prompt), ``end`` (``<|end|>`` after the answer),
  ``steering`` (an unskilled language's task expert after the boost minus the null expert, and the
  null expert minus the task expert before it), ``evidence`` (the answer minus ``?`` per half unit of
  evidence, analytic), plus ``float32_rounding`` (the largest logit times 2^-23) for scale;
- ``checks``: prompts checked per dataset and the number whose routing or answer disagreed with the
  plan (always 0: the build fails otherwise).
"""

from __future__ import annotations

import logging
import math
import numpy as np
import polars as pl
import torch

from moe_routing.demo import model as dm
from moe_routing.core.errors import DatasetError

log = logging.getLogger(__name__)

TRUTH_FILE = "planted_truth.json"
# the datasets the self-check runs (demo_mc is not part of the demo's studies)
CHECKED = ("demo_facts", "demo_parallel", "demo_task", "demo_task_bench")
SCHEMA_VERSION = 1


def truth_dict(plan: dm.Plan, world: dict, english: str = "en") -> dict:
    L = len(plan.moe_layers)
    edge = {0, L - 1}
    facts = []
    full = len(plan.middle) * len(dm.SLOTS)
    for f in world["facts"]:
        fid = f["fact_id"]
        slots = plan.slot_experts[fid]
        pairs = sorted({(layer, e) for layer, es in slots.items() for e in es})
        facts.append(
            {
                "item_id": fid,
                "known_languages": plan.known[fid],
                "experts": [list(p) for p in pairs],
                "slot_experts": {str(layer): es for layer, es in slots.items()},
                "evidence_units": full,
                "evidence_needed": math.floor(dm.EVIDENCE_THRESHOLD * full),
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "seed": world["seed"],
        "languages": plan.languages,
        "english": english,
        "moe_layers": plan.moe_layers,
        "num_experts": plan.num_experts,
        "top_k": 1,
        "layers": [
            {"layer": layer, "role": "language" if layer in edge else "shared", "null_expert": plan.null_expert[layer]}
            for layer in plan.moe_layers
        ],
        "divergence_profile": {str(layer): "language" if layer in edge else "shared" for layer in plan.moe_layers},
        "language_experts": [
            {"lang": lang, "layer": layer, "expert": e} for layer in sorted(edge) for lang, e in plan.language_expert.items()
        ],
        "task_experts": [{"task": "math", "layer": layer, "expert": plan.task_expert} for layer in plan.task_layers],
        "task_skilled": plan.task_skilled,
        "slots": list(dm.SLOTS),
        "facts": facts,
    }


# ---------------------------------------------------------------- self-check


def _expected(dataset: str, row: dict, plan: dm.Plan) -> str | None:
    if dataset == "demo_facts":
        return row["answers"][0] if row["lang"] in plan.known[row["item_id"]] else dm.DONT_KNOW
    if dataset == "demo_task_bench" or dataset == "demo_task":
        return row["answers"][0] if (row["lang"] in plan.task_skilled) else "0"
    return None


@torch.no_grad()
def self_check(
    model, tokenizer, plan: dm.Plan, items: dict[str, list[pl.DataFrame]], steering_strength: float, batch_size: int = 64
) -> tuple[dict, dict]:
    """Run every item of ``items`` (dataset -> items frames) through the model with its expected answer
    appended; check routing and answers against the plan; return (margins, checks).

    Raises DatasetError naming the first item whose routing or answer is not the planted one.
    """
    L = len(plan.moe_layers)
    captured: list[torch.Tensor] = []
    hooks = [
        layer.mlp.gate.register_forward_hook(lambda mod, inp, out: captured.append(out[0].detach()))
        for layer in model.model.layers
    ]
    margins = {"router": math.inf, "answer": math.inf, "end": math.inf, "steering": math.inf}
    largest = 0.0
    checks: dict[str, dict[str, int]] = {}
    vocab = tokenizer.get_vocab()
    eos = tokenizer.eos_token_id
    slot_ids = {vocab[s]: i for i, s in enumerate(dm.SLOTS)}
    task_ranks = {layer: plan.task_expert for layer in plan.task_layers}
    try:
        for dataset, frames in items.items():
            if dataset not in CHECKED:
                continue
            df = pl.concat(frames, how="vertical_relaxed")
            rows = df.to_dicts()
            checks[dataset] = {"prompts": len(rows), "disagreements": 0}
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                seqs, prompt_lens, expect = [], [], []
                for r in chunk:
                    msgs = ([{"role": "system", "content": r["system"]}] if r["system"] else []) + [
                        {"role": "user", "content": r["prompt"]}
                    ]
                    text = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
                    ids = tokenizer.encode(text, add_special_tokens=False)
                    want = _expected(dataset, r, plan)
                    if want is not None:
                        w = tokenizer.encode(want, add_special_tokens=False)
                        if len(w) != 1:
                            raise DatasetError(f"{dataset}: answer {want!r} of {r['item_id']} is not one token")
                        ids = ids + w
                    seqs.append(ids)
                    prompt_lens.append(len(ids) - (want is not None))
                    expect.append(want)
                width = max(len(s) for s in seqs)
                input_ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
                mask = torch.zeros_like(input_ids)
                for i, s in enumerate(seqs):
                    input_ids[i, width - len(s) :] = torch.tensor(s)
                    mask[i, width - len(s) :] = 1
                captured.clear()
                logits = model(input_ids=input_ids, attention_mask=mask).logits
                largest = max(largest, float(logits.abs().max()))
                router = torch.stack([c.reshape(len(seqs), width, -1) for c in captured])  # [L, B, T, E]
                largest = max(largest, float(router.abs().max()))
                top2 = router.topk(2, dim=-1).values
                valid = mask.bool()
                gap = (top2[..., 0] - top2[..., 1])[:, valid]
                margins["router"] = min(margins["router"], float(gap.min()))
                chosen = router.argmax(-1)  # [L, B, T]
                for i, r in enumerate(chunk):
                    off = width - len(seqs[i])
                    bad = _check_routing(dataset, r, plan, chosen[:, i, off:], input_ids[i, off:].tolist(), slot_ids, L)
                    want = expect[i]
                    if want is not None:
                        pos = width - 2  # the generation prompt's last token
                        row = logits[i, pos]
                        target = vocab[want]
                        others = torch.cat([row[:target], row[target + 1 :]])
                        margin = float(row[target] - others.max())
                        margins["answer"] = min(margins["answer"], margin)
                        end_row = logits[i, width - 1]
                        end_margin = float(end_row[eos] - torch.cat([end_row[:eos], end_row[eos + 1 :]]).max())
                        margins["end"] = min(margins["end"], end_margin)
                        bad = bad or (margin <= 0 and f"answers {tokenizer.decode([int(row.argmax())])!r}, not {want!r}")
                        bad = bad or (end_margin <= 0 and "does not stop after its answer")
                    if dataset == "demo_task_bench" and r["lang"] not in plan.task_skilled:
                        for layer, t in task_ranks.items():
                            z = router[layer, i, off : off + prompt_lens[i]].double()
                            boosted = z.clone()
                            boosted[:, t] += steering_strength * z.std(dim=-1, unbiased=False)
                            last = boosted[-1]
                            rest = torch.cat([last[:t], last[t + 1 :]]).max()
                            margins["steering"] = min(margins["steering"], float(last[t] - rest), float(z[-1].max() - z[-1, t]))
                    if bad:
                        checks[dataset]["disagreements"] += 1
                        raise DatasetError(f"demo model self-check: {dataset} item {r['item_id']} ({r['lang']}) {bad}")
    finally:
        for h in hooks:
            h.remove()
    # the answer against '?' moves by EVIDENCE / 4 per unit of evidence; the threshold sits half a unit away
    margins["evidence"] = dm.EVIDENCE * 0.5 / 4
    margins["float32_rounding"] = largest * 2.0**-23
    # two decimals: the last float32 bits of a margin differ between CPU kernels, its first digits do not
    return {k: round(v, 2) if k != "float32_rounding" else float(f"{v:.2g}") for k, v in margins.items()}, checks


def _check_routing(dataset, row, plan: dm.Plan, chosen, ids: list[int], slot_ids: dict[int, int], L: int):
    """A reason when the routing of a fact question's slots or a word problem's last token is not the plan's, else ''."""
    chosen = chosen.numpy() if hasattr(chosen, "numpy") else np.asarray(chosen)
    if dataset == "demo_facts":
        known = row["lang"] in plan.known[row["item_id"]]
        # the question's slots: '?', the user turn's <|end|>, then <|assistant|> (the last prompt token)
        positions = [p for p, t in enumerate(ids[:-1]) if t in slot_ids][-3:]
        for s, p in enumerate(positions):
            for layer in plan.middle:
                want = plan.slot_experts[row["item_id"]][layer][s] if known else plan.null_expert[layer]
                if int(chosen[layer, p]) != want:
                    return f"routes slot {dm.SLOTS[s]!r} at layer {layer} to expert {int(chosen[layer, p])}, planted {want}"
        lang_expert = plan.language_expert[row["lang"]]
        for layer in (0, L - 1):
            if int(chosen[layer, positions[-1]]) != lang_expert:
                return f"routes layer {layer} to expert {int(chosen[layer, positions[-1]])}, not its language's {lang_expert}"
    if dataset in ("demo_task", "demo_task_bench"):
        last = len(ids) - 2
        skilled = row["lang"] in plan.task_skilled
        for layer in plan.task_layers:
            want = plan.task_expert if skilled else plan.null_expert[layer]
            if int(chosen[layer, last]) != want:
                return f"routes its last prompt token at layer {layer} to expert {int(chosen[layer, last])}, planted {want}"
    return ""
