"""Train the demo model: a word-level tokenizer and a tiny real ``Qwen3MoeForCausalLM``, on CPU.

The result is saved like a hub checkpoint (``save_pretrained``: safetensors, config,
generation config, tokenizer with a chat template), so every backend loads it with
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``.

Cross-lingual inconsistency in a small model comes from stopping while facts are only
partly transferred between languages, and where that window lies depends on the seed.
So instead of trusting the last step, training scores checkpoints on a cheap check
(teacher-forced greedy answers to the parallel questions) and keeps the one with the
most *mixed* facts (right in some languages, wrong in others) among those that still
answer English well.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl
import torch
from moe_routing.core.progress import progress

from moe_routing.demo.world import template_texts
from moe_routing.core.errors import DatasetError

log = logging.getLogger(__name__)

PAD, UNK, EOS = "<pad>", "<unk>", "<|end|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = [PAD, UNK, EOS, *ROLE_TOKENS.values()]

# Turns are "<|role|> content <|end|>"; the word-level tokenizer splits on whitespace, so
# the prompt's ids followed by the answer's ids are exactly the ids of the whole rendered
# conversation (tested), which lets training mask the prompt without re-rendering.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] | trim + ' <|end|> ' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|> ' }}{%- endif -%}"
)


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 1500
    batch_size: int = 32
    lr: float = 6e-3
    warmup: int = 100
    weight_decay: float = 0.01
    eval_every: int = 100
    # checks start after this fraction of the steps (earlier checkpoints know too little to be kept)
    check_start: float = 0.3
    # facts scored per check (all their languages); the kept checkpoint is rescored on every fact
    check_facts: int = 150
    # checkpoints answering fewer English questions than this are not eligible
    min_english_accuracy: float = 0.5
    threads: int = 1
    # model size
    hidden_size: int = 128
    layers: int = 6
    experts: int = 16
    top_k: int = 2
    heads: int = 4
    kv_heads: int = 2
    moe_intermediate_size: int = 128
    router_aux_loss_coef: float = 0.01
    max_positions: int = 256


@dataclass
class CheckResult:
    step: int
    accuracy: dict[str, float]
    mixed: float
    all_correct: float
    all_wrong: float
    loss: float = float("nan")


@dataclass
class TrainReport:
    config: dict
    steps: int
    selected_step: int
    final_loss: float
    selected: dict
    history: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0
    # CPU time of this process: on a shared machine it tells what the run costs unshared
    cpu_seconds: float = 0.0
    num_parameters: int = 0
    vocab_size: int = 0
    n_conversations: int = 0


# ---------------------------------------------------------------- tokenizer


def build_tokenizer(texts: list[str]):
    """A word-level tokenizer over ``texts`` wrapped as a transformers fast tokenizer with a chat template."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        pad_token=PAD,
        eos_token=EOS,
        additional_special_tokens=list(ROLE_TOKENS.values()),
        padding_side="left",
        model_max_length=256,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def corpus_texts(corpus: list[dict]) -> list[str]:
    return [m["content"] for row in corpus for m in row["messages"]]


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of the chat prompt (all turns but the last assistant one) plus the generation prompt."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer.encode(text, add_special_tokens=False)


def encode_conversation(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) with labels -100 outside the final assistant turn (its answer and <|end|>)."""
    prompt = prompt_ids(tokenizer, messages[:-1])
    answer = tokenizer.encode(messages[-1]["content"], add_special_tokens=False) + [tokenizer.eos_token_id]
    return prompt + answer, [-100] * len(prompt) + answer


# ---------------------------------------------------------------- model


def build_model(cfg: TrainConfig, tokenizer):
    from transformers import GenerationConfig, Qwen3MoeConfig, Qwen3MoeForCausalLM

    config = Qwen3MoeConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.hidden_size * 2,
        moe_intermediate_size=cfg.moe_intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        num_experts=cfg.experts,
        num_experts_per_tok=cfg.top_k,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,
        router_aux_loss_coef=cfg.router_aux_loss_coef,
        output_router_logits=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    head_dim = cfg.hidden_size // cfg.heads
    if head_dim != 32:  # the vLLM CPU attention backend does not take smaller heads
        raise DatasetError(f"hidden_size/heads gives head_dim {head_dim}; the demo needs 32")
    # written to config.json explicitly: readers that do not derive it (vLLM) still find it
    config.head_dim = head_dim
    torch.manual_seed(cfg.seed)
    model = Qwen3MoeForCausalLM(config)
    model.generation_config = GenerationConfig(
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=32,
    )
    return model


# ---------------------------------------------------------------- data


def _batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, pad_id: int, generator: torch.Generator):
    """Endless deterministic stream of right-padded batches; a fresh permutation per epoch.

    Within windows of 16 batches, conversations are grouped by length (multiple-choice
    prompts are twice as long as the rest), which cuts the padding the CPU computes on.
    """
    window = batch_size * 16
    while True:
        order = torch.randperm(len(encoded), generator=generator).tolist()
        batches = []
        for w in range(0, len(order), window):
            part = sorted(order[w : w + window], key=lambda i: len(encoded[i][0]))
            batches += [part[s : s + batch_size] for s in range(0, len(part) - batch_size + 1, batch_size)]
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield _collate([encoded[i] for i in batches[b]], pad_id)


def _collate(chunk, pad_id: int, left: bool = False):
    width = max(len(ids) for ids, _ in chunk)
    input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
    labels = torch.full((len(chunk), width), -100, dtype=torch.long)
    mask = torch.zeros((len(chunk), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(chunk):
        sl = slice(width - len(ids), width) if left else slice(0, len(ids))
        input_ids[row, sl] = torch.tensor(ids)
        labels[row, sl] = torch.tensor(lab)
        mask[row, sl] = 1
    return input_ids, labels, mask


# ---------------------------------------------------------------- check


def load_check_items(paths: list[str | Path]) -> pl.DataFrame:
    """The parallel short-answer items (one items file per language) used for the held-out check."""
    from moe_routing.core.io import read_frame

    if not paths:
        raise DatasetError("no items files for the check")
    df = pl.concat([read_frame(p, contract="items") for p in paths], how="vertical")
    empty = df.filter(pl.col("answers").list.len() == 0)
    if empty.height:
        raise DatasetError(f"check items: item {empty['item_id'][0]!r} ({empty['lang'][0]}) has no answer to check against")
    return df


def encode_check(tokenizer, items: pl.DataFrame) -> list[tuple[str, str, list[int], list[int]]]:
    out = []
    for row in items.iter_rows(named=True):
        messages = ([{"role": "system", "content": row["system"]}] if row["system"] else []) + [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["answers"][0]},
        ]
        ids, labels = encode_conversation(tokenizer, messages)
        out.append((row["item_id"], row["lang"], ids, labels))
    return out


@torch.no_grad()
def teacher_forced_check(model, encoded_check, pad_id: int, batch_size: int = 128) -> dict[tuple[str, str], bool]:
    """(item_id, lang) -> whether greedy decoding reproduces the gold answer and stops.

    With the gold prefix fed in, "argmax equals gold at every answer position" is exactly
    "greedy generation outputs the answer then <|end|>", at the cost of one forward pass.
    """
    was_training = model.training
    model.eval()
    result: dict[tuple[str, str], bool] = {}
    for start in range(0, len(encoded_check), batch_size):
        chunk = encoded_check[start : start + batch_size]
        input_ids, labels, mask = _collate([(ids, lab) for _, _, ids, lab in chunk], pad_id)
        logits = model(input_ids=input_ids, attention_mask=mask).logits
        pred = logits[:, :-1].argmax(-1)
        gold = labels[:, 1:]
        ok = ((pred == gold) | (gold == -100)).all(dim=1)
        for (item_id, lang, _, _), good in zip(chunk, ok.tolist()):
            result[(item_id, lang)] = bool(good)
    model.train(was_training)
    return result


def summarise_check(step: int, outcome: dict[tuple[str, str], bool]) -> CheckResult:
    """Per-language accuracy and the fractions of all-correct, all-wrong and mixed facts."""
    by_lang: dict[str, list[bool]] = {}
    by_item: dict[str, list[bool]] = {}
    for (item_id, lang), ok in outcome.items():
        by_lang.setdefault(lang, []).append(ok)
        by_item.setdefault(item_id, []).append(ok)
    n = len(by_item)
    all_c = sum(all(v) for v in by_item.values()) / n
    all_w = sum(not any(v) for v in by_item.values()) / n
    return CheckResult(
        step=step,
        accuracy={lang: sum(v) / len(v) for lang, v in by_lang.items()},
        mixed=1.0 - all_c - all_w,
        all_correct=all_c,
        all_wrong=all_w,
    )


def better(candidate: CheckResult, best: CheckResult | None, min_english: float) -> bool:
    """Prefer eligible checkpoints (English accuracy ≥ min_english), then more mixed facts, then the later step."""
    if best is None:
        return True

    def key(c: CheckResult):
        return (c.accuracy.get("en", 0.0) >= min_english, c.mixed)

    return key(candidate) >= key(best)


# ---------------------------------------------------------------- training


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        done = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))

    return f


def train(corpus: list[dict], check_items: pl.DataFrame, cfg: TrainConfig, out_dir: str | Path) -> TrainReport:
    """Train, keep the best checkpoint by the check, save model + tokenizer + ``train_report.json`` to ``out_dir``."""
    t0, c0 = time.perf_counter(), time.process_time()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    check_texts = [t for col in ("prompt", "system") for t in check_items[col].drop_nulls().to_list()]
    check_texts += [a for answers in check_items["answers"].to_list() for a in answers]
    tokenizer = build_tokenizer(corpus_texts(corpus) + check_texts + template_texts())
    encoded = [encode_conversation(tokenizer, row["messages"]) for row in corpus]
    check_all = encode_check(tokenizer, check_items)
    ids = sorted({item_id for item_id, *_ in check_all})
    keep = set(ids[: cfg.check_facts]) if cfg.check_facts > 0 else set(ids)
    check = [c for c in check_all if c[0] in keep]
    model = build_model(cfg, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("vocab %d, %d parameters, %d conversations, %d check pairs", len(tokenizer), n_params, len(encoded), len(check))
    if len(encoded) < cfg.batch_size:
        raise DatasetError(f"corpus has {len(encoded)} conversations, fewer than one batch of {cfg.batch_size}")

    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _lr_lambda(cfg))
    gen = torch.Generator().manual_seed(cfg.seed)
    batches = _batches(encoded, cfg.batch_size, tokenizer.pad_token_id, gen)

    model.train()
    best: CheckResult | None = None
    best_state = None
    history: list[CheckResult] = []
    running = float("nan")
    bar = progress(range(1, cfg.steps + 1), desc="train-demo", unit="step")
    for step in bar:
        input_ids, labels, mask = next(batches)
        out = model(input_ids=input_ids, attention_mask=mask, labels=labels, output_router_logits=True)
        optim.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        aux = float(out.aux_loss.detach()) * cfg.router_aux_loss_coef if out.aux_loss is not None else 0.0
        lm = float(out.loss.detach()) - aux
        running = lm if math.isnan(running) else 0.95 * running + 0.05 * lm
        bar.set_postfix(loss=f"{running:.3f}")
        due = step % cfg.eval_every == 0 and step >= cfg.check_start * cfg.steps
        if due or step == cfg.steps:
            result = summarise_check(step, teacher_forced_check(model, check, tokenizer.pad_token_id))
            result.loss = running
            history.append(result)
            log.info(
                "step %d loss %.3f: en %.2f, mean %.2f, mixed %.2f, all-correct %.2f, all-wrong %.2f",
                step,
                running,
                result.accuracy.get("en", float("nan")),
                sum(result.accuracy.values()) / len(result.accuracy),
                result.mixed,
                result.all_correct,
                result.all_wrong,
            )
            if better(result, best, cfg.min_english_accuracy):
                best, best_state = result, copy.deepcopy(model.state_dict())
    bar.close()

    assert best is not None and best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    if len(check) < len(check_all):
        best = summarise_check(best.step, teacher_forced_check(model, check_all, tokenizer.pad_token_id))
        best.loss = next(h.loss for h in history if h.step == best.step)
    log.info(
        "keeping step %d: mixed %.2f, en accuracy %.2f (%d facts)", best.step, best.mixed, best.accuracy.get("en", 0.0), len(ids)
    )

    report = TrainReport(
        config=asdict(cfg),
        steps=cfg.steps,
        selected_step=best.step,
        final_loss=running,
        selected=asdict(best),
        history=[asdict(h) for h in history],
        wall_seconds=round(time.perf_counter() - t0, 1),
        cpu_seconds=round(time.process_time() - c0, 1),
        num_parameters=n_params,
        vocab_size=len(tokenizer),
        n_conversations=len(encoded),
    )
    save(model, tokenizer, report, out_dir)
    return report


def save(model, tokenizer, report: TrainReport, out_dir: str | Path) -> None:
    """Write the checkpoint into a temporary sibling folder, then swap it in, so a crash leaves no half model."""
    import shutil
    import tempfile

    from moe_routing.core.faults import file_fault
    from moe_routing.core.io import fsync_folder, fsync_tree

    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model folder should read like any other
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "train_report.json").write_text(json.dumps(asdict(report), indent=1), encoding="utf-8")
        fsync_tree(tmp)  # on disk before the swap: a crash leaves the old model or the whole new one
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        fsync_folder(final.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        fault = file_fault(final, exc, writing=True)  # disk full while saving: one line naming the model
        if fault is not None:
            raise fault from exc
        raise
