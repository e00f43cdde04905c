"""Transformers backend: batched greedy generation with router capture and per-sequence interventions.

Items are rendered with the model's chat template (``backends.render``: system + user, a
teacher-forced assistant turn or the generation prompt, thinking off where the template reads
``enable_thinking``), sorted by prompt length into left-padded batches,
and returned in input order. Router capture is a forward hook on each router module (registered
with ``prepend=True`` so it runs before transformers' own output recorders): it reads the logits,
and when a sequence of the batch has interventions at that layer it replaces the router output with
the adapter's intervened (logits, weights, indices). ``output_router_logits`` is not used: it breaks
in batched ``generate()``.

Which rows count (routing.py): in the prefill, rows whose attention mask is 1 (token scope
"content": and whose token is the item's own text); in each decode step, the row of a sequence
whose fed token is not a stop token and which has not stopped before. The last generated token is
never fed to the model, so it never counts.

``score_choices`` (multiple choice by log-likelihood, ``backends.choice_requests``): one prefill of
each context with capture, exactly as generation with ``max_new_tokens`` 0, whose last-position
log-probabilities score single-token continuations; longer continuations get a second, uncaptured
forward over context + continuation (interventions apply in both).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import torch

from moe_routing.capture import interventions as iv
from moe_routing.capture.adapters import activation_eps, get_adapter
from moe_routing.capture.adapters.base import CompiledPlan
from moe_routing.capture.backends.probe import probe
from moe_routing.capture.backends import (
    GenerationOptions,
    LoadOptions,
    Rendered,
    RoutingBackend,
    generations_table,
    item_rows,
    check_prompt_lengths,
    resolve_dtype,
    scoring_requests,
)
from moe_routing.core.errors import ConfigError, ModelError
from moe_routing.core.progress import progress
from moe_routing.capture.accumulator import RoutingAccumulator

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class _BatchState:
    batch_size: int
    plan: CompiledPlan | None
    acc: RoutingAccumulator | None
    stop_ids: torch.Tensor
    trace: list | None
    calls: int = 0
    router_calls: list | None = None
    row_seq: torch.Tensor | None = None
    row_valid: torch.Tensor | None = None
    alive: torch.Tensor | None = None
    # prefill rows that count when not all attended rows do (token scope "content"), [B, T]
    prefill_valid: torch.Tensor | None = None


def _to(output: tuple, device) -> tuple:
    return tuple(o.to(device) if torch.is_tensor(o) else o for o in output)


def load(model_path: str, options: LoadOptions | None = None) -> "HFBackend":
    return HFBackend(str(model_path), options or LoadOptions())


def _looks_like_hub_id(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 2 and all(parts) and not path.startswith((".", "~"))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class HFBackend(RoutingBackend):
    name = "hf"

    def __init__(self, model_path: str, options: LoadOptions):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        if not Path(model_path).exists() and not _looks_like_hub_id(model_path):
            raise ModelError(f"{model_path}: model directory not found (nor a hub id like 'org/name')")
        start = time.perf_counter()
        trust = bool(options.trust_remote_code)
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust)
        # fail on an unsupported family before loading any weights
        self.adapter = get_adapter(config, options.adapter)
        # "auto" is the checkpoint's dtype, resolved as on the vLLM backend
        self.dtype = resolve_dtype(options.dtype, config, options.device)
        dtype = DTYPES[self.dtype]
        self.device = _device(options.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust)
        self.tokenizer.padding_side = "left"
        # device_map (engine arg) spreads a model too large for one GPU over several; the hooks then
        # bring each layer's router output to self.device and the replacement back
        device_map = options.extra.get("device_map")
        unknown = sorted(set(options.extra) - {"device_map"})
        if unknown:
            raise ConfigError(f"transformers backend: unknown engine option(s) {unknown}; it knows device_map")
        try:
            model = AutoModelForCausalLM.from_pretrained(
                model_path, dtype=dtype, use_safetensors=True, trust_remote_code=trust, device_map=device_map
            )
        except OSError as exc:
            raise ModelError(f"{model_path}: cannot load safetensors weights ({exc})") from None
        self.model = (model if device_map is not None else model.to(self.device)).eval()
        if device_map is not None:
            self.device = self.model.get_input_embeddings().weight.device
        self.model_path = model_path
        self.spec = self.adapter.spec_from_config(self.model.config)
        self.sites = self.adapter.locate_hf(self.model)
        self.moe_layers = [s.layer for s in self.sites]
        self.num_experts = self.spec.num_experts
        self.top_k = self.spec.top_k
        self.pad_id = self._pad_id()
        self.stop_ids = self._stop_ids()
        self._state: _BatchState | None = None
        # set to a list to record every router call (tests): dicts of layer, logits, indices, weights, rows
        self.trace: list | None = None
        self._install_hooks()
        # before the first batch: the adapter must replay what the experts receive (backends/probe.py)
        probe(self.model, self.adapter, self.spec, self.sites, self.device)
        self.load_seconds = time.perf_counter() - start
        self.generate_seconds = 0.0
        log.info(
            "loaded %s (%s, %d MoE layers x %d experts, top-%d) in %.1fs",
            model_path,
            self.model.config.model_type,
            len(self.moe_layers),
            self.num_experts,
            self.top_k,
            self.load_seconds,
        )

    # --- setup -----------------------------------------------------------------------
    def _stop_ids(self) -> torch.Tensor:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        return torch.tensor(sorted(set(int(i) for i in ids)), dtype=torch.long, device=self.device)

    def _pad_id(self) -> int:
        for cand in (self.tokenizer.pad_token_id, self.model.generation_config.pad_token_id, self.tokenizer.eos_token_id):
            if cand is not None:
                return int(cand if isinstance(cand, int) else cand[0])
        raise ModelError(f"{self.model_path}: tokenizer has neither a pad nor an eos token")

    def _install_hooks(self) -> None:
        self.model.register_forward_pre_hook(self._on_step, with_kwargs=True)
        for pos, site in enumerate(self.sites):
            site.router.register_forward_hook(self._router_hook(pos, site), prepend=True)

    def _on_step(self, module, args, kwargs):
        st = self._state
        if st is None:
            return None
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            raise ModelError("router capture needs input_ids in every forward call")
        b, t = input_ids.shape
        if st.calls == 0:
            mask = kwargs.get("attention_mask")
            valid = torch.ones_like(input_ids, dtype=torch.bool) if mask is None else mask[:, -t:].bool()
            if st.prefill_valid is not None:
                valid = valid & st.prefill_valid
            st.alive = torch.ones(b, dtype=torch.bool, device=input_ids.device)
        else:
            # the fed token is the previous step's output: a stop token (or anything after one) does not count
            st.alive = st.alive & ~torch.isin(input_ids[:, -1], st.stop_ids)
            valid = st.alive[:, None].expand(b, t)
        st.row_seq = torch.arange(b, device=input_ids.device).repeat_interleave(t)
        st.row_valid = valid.reshape(-1)
        st.calls += 1
        return None

    def _router_hook(self, pos: int, site):
        adapter, spec = self.adapter, self.spec

        def hook(module, args, output):
            st = self._state
            if st is None:
                return None
            st.router_calls[pos] += 1
            z, w, idx = adapter.hf_read(output)
            home = z.device
            if home != st.row_seq.device:  # layer placed on another GPU by device_map
                output = output.to(st.row_seq.device) if torch.is_tensor(output) else _to(output, st.row_seq.device)
                z, w, idx = adapter.hf_read(output)
            logits = z
            if logits.shape[0] != st.row_seq.shape[0]:
                raise ModelError(f"layer {site.layer}: router saw {logits.shape[0]} rows, expected {st.row_seq.shape[0]}")
            rows = st.plan.rows(pos, st.row_seq) if st.plan is not None else None
            replaced = None
            if rows is not None:
                bias = site.bias.to(logits.device) if site.bias is not None else None
                res = adapter.route(logits, spec, bias, rows)
                replaced = adapter.hf_output(res, output)
                if home != logits.device:
                    replaced = replaced.to(home) if torch.is_tensor(replaced) else _to(replaced, home)
                z, w, idx = res.logits, res.weights, res.indices
            elif w is None or idx is None:
                # the router returns logits (or dense scores) only: its gating is replayed (the load-time probe checked it)
                idx, w = adapter.gate(z, spec, site.bias.to(z.device) if site.bias is not None else None)
            if st.acc is not None:
                st.acc.add(pos, z, idx, w, st.row_seq, st.row_valid)
            if st.trace is not None:
                st.trace.append(
                    dict(
                        layer=site.layer,
                        pos=pos,
                        logits=z.detach().clone(),
                        indices=idx.clone(),
                        weights=w.detach().clone(),
                        row_seq=st.row_seq.clone(),
                        row_valid=st.row_valid.clone(),
                        step=st.calls - 1,
                    )
                )
            return replaced

        return hook

    # --- generation --------------------------------------------------------------------
    def generate(
        self,
        items: pl.DataFrame,
        interventions: pl.DataFrame | None = None,
        options: GenerationOptions | None = None,
    ) -> pa.Table:
        opts, interventions, rows, rendered = self._rendered_items(items, interventions, options)
        outputs, summaries = self._run_all(rows, rendered, interventions, opts, self._run_batch)
        return self._table(rows, [r.ids for r in rendered], outputs, summaries)

    def _score(self, items, interventions, options):
        opts, interventions = self._check(items, interventions, options)
        rows = item_rows(items)
        contexts, conts = scoring_requests(self.tokenizer, items, rows, opts, self.adapter)
        scores, summaries = self._run_all(
            rows, contexts, interventions, opts, lambda batch, *rest: self._score_batch(batch, conts, *rest)
        )
        return rows, contexts, scores, summaries

    def _run_all(self, rows: list[dict], rendered: list[Rendered], interventions, opts: GenerationOptions, run_batch):
        """Length-sorted batches through ``run_batch(batch, rendered, plan, acc, opts)``; returns its
        per-row results in input order and the routing summaries (None without capture)."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        check_prompt_lengths(rows, [len(r.ids) for r in rendered], opts.max_new_tokens, limit)
        eps = activation_eps(len(self.moe_layers), self.num_experts, opts.seed)
        torch.manual_seed(opts.seed)
        start = time.perf_counter()
        order = sorted(range(len(rows)), key=lambda i: (-len(rendered[i].ids), i))
        batches = [order[i : i + opts.batch_size] for i in range(0, len(order), opts.batch_size)]
        results: list = [None] * len(rows)
        summaries: dict[str, list] = {}
        for batch in progress(batches, desc="generate", unit="batch", disable=len(batches) < 2):
            ids = [rows[i]["item_id"] for i in batch]
            plan = iv.compile_batch(interventions, ids, self.moe_layers, self.num_experts, eps)
            if plan is not None:
                plan = plan.to(self.device)
            # transformers' routers return fresh tensors each call: no need to copy them before buffering
            acc = (
                RoutingAccumulator(len(batch), len(self.moe_layers), self.num_experts, self.top_k, self.device, copy_inputs=False)
                if opts.capture
                else None
            )
            out = run_batch(batch, rendered, plan, acc, opts)
            for j, i in enumerate(batch):
                results[i] = out[j]
            if acc is not None:
                res = acc.finalize(seed=opts.seed, pairs=opts.consistency_pairs)
                for key, arr in res.items():
                    col = summaries.setdefault(key, [None] * len(rows))
                    for j, i in enumerate(batch):
                        col[i] = arr[j]
        self.generate_seconds = time.perf_counter() - start
        return results, (summaries if opts.capture else None)

    def _padded(self, seqs: list[list[int]], content: list[list[bool] | None] | None = None):
        """Left-padded input ids, attention mask and (when ``content`` is given) the counted rows."""
        width = max(len(p) for p in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        counted = torch.zeros((len(seqs), width), dtype=torch.bool) if content is not None else None
        for j, p in enumerate(seqs):
            if p:
                input_ids[j, width - len(p) :] = torch.tensor(p)
                mask[j, width - len(p) :] = 1
                if counted is not None:
                    counted[j, width - len(p) :] = torch.tensor(content[j] if content[j] is not None else [True] * len(p))
        return (input_ids.to(self.device), mask.to(self.device), counted.to(self.device) if counted is not None else None)

    def _batch_state(self, n: int, plan, acc, counted=None) -> _BatchState:
        return _BatchState(n, plan, acc, self.stop_ids, self.trace, router_calls=[0] * len(self.sites), prefill_valid=counted)

    def _run_batch(self, batch: list[int], rendered: list[Rendered], plan, acc, opts: GenerationOptions) -> list[list[int]]:
        prompts = [rendered[i].ids for i in batch]
        content = [rendered[i].content for i in batch] if opts.token_scope == "content" else None
        input_ids, mask, counted = self._padded(prompts, content)
        width = input_ids.shape[1]
        self._state = state = self._batch_state(len(prompts), plan, acc, counted)
        try:
            with torch.inference_mode():
                if opts.max_new_tokens == 0:
                    self.model(input_ids=input_ids, attention_mask=mask, use_cache=False)
                    seqs = input_ids
                else:
                    seqs = self.model.generate(
                        input_ids=input_ids,
                        attention_mask=mask,
                        max_new_tokens=opts.max_new_tokens,
                        do_sample=False,
                        num_beams=1,
                        pad_token_id=self.pad_id,
                        eos_token_id=self.stop_ids.tolist(),
                        temperature=None,
                        top_p=None,
                        top_k=None,
                        min_new_tokens=opts.max_new_tokens if opts.ignore_eos else None,
                    )
        finally:
            self._state = None
        self._check_hooks_fired(state)
        new = seqs[:, width:].tolist()
        stops = set(self.stop_ids.tolist())
        out = []
        for toks in new:
            cut = next((n + 1 for n, t in enumerate(toks) if t in stops), len(toks))
            out.append(toks[:cut])
        return out

    def _score_batch(
        self, batch: list[int], all_conts: list[list[list[int]]], rendered: list[Rendered], plan, acc, opts: GenerationOptions
    ) -> list[list[float]]:
        """Per row, the summed log-probability of each choice's continuation given the context."""
        contexts = [rendered[i].ids for i in batch]
        conts = [all_conts[i] for i in batch]
        content = [rendered[i].content for i in batch] if opts.token_scope == "content" else None
        input_ids, mask, counted = self._padded(contexts, content)
        self._state = state = self._batch_state(len(batch), plan, acc, counted)
        try:
            with torch.inference_mode():
                last = self.model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits[:, -1].float()
        finally:
            self._state = None
        self._check_hooks_fired(state)
        logp = torch.log_softmax(last, dim=-1).cpu()
        scores = [[float(logp[j, c[0]]) if len(c) == 1 else None for c in row] for j, row in enumerate(conts)]
        longer = [(j, c) for j, row in enumerate(conts) for c, cont in enumerate(row) if len(cont) != 1]
        if longer:
            self._score_long(batch, contexts, conts, longer, plan, scores)
        return scores

    def _score_long(self, batch, contexts, conts, longer, plan, scores) -> None:
        """Continuations of several (or no) tokens: a forward over context + continuation, uncaptured."""
        seqs = [contexts[j] + conts[j][c] for j, c in longer]
        input_ids, mask, _ = self._padded(seqs)
        # a row keeps its sequence's interventions: the plan indexes rows by their batch position
        row_of = torch.tensor([j for j, _ in longer], device=self.device)
        sub_plan = None
        if plan is not None:
            sub_plan = CompiledPlan(plan.deactivate[row_of], plan.activate[row_of], plan.soft[row_of], plan.eps)
        self._state = state = self._batch_state(len(seqs), sub_plan, None)
        try:
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits.float()
        finally:
            self._state = None
        self._check_hooks_fired(state)
        logp = torch.log_softmax(logits, dim=-1).cpu()
        width = input_ids.shape[1]
        for r, (j, c) in enumerate(longer):
            cont = conts[j][c]
            # position p predicts token p + 1; the continuation fills the last len(cont) positions
            pos = torch.arange(width - len(cont) - 1, width - 1)
            scores[j][c] = float(logp[r, pos, torch.tensor(cont)].sum()) if cont else 0.0

    def _check_hooks_fired(self, state: _BatchState) -> None:
        # a hub kernel replacing the whole MoE block would bypass the router modules silently
        silent = [site.layer for site, n in zip(self.sites, state.router_calls) if n == 0]
        if silent:
            raise ModelError(
                f"{self.model_path}: router hooks never ran at layers {silent}; "
                "is a fused MoE kernel replacing the router module?"
            )

    def _table(self, rows, prompts, outputs, summaries) -> pa.Table:
        return generations_table(self.tokenizer, rows, prompts, outputs, summaries, self.routing_metadata(), self.adapter)
