"""vLLM backend: generation through ``vllm.LLM`` with router capture and per-request interventions.

The routing code runs inside vLLM's worker processes (backends/vllm_worker.py), installed through
vLLM's own extension points: ``worker_extension_cls`` adds its methods to every worker and
``LLM.collective_rpc`` calls them on every rank. The backend therefore works with vLLM's default
multiprocessing engine, in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) and with
``tensor_parallel_size`` > 1 (engine_args). Per batch the caller ships the compiled intervention plan
(sparse) to all workers, generates, and fetches the per-sequence routing summaries from rank 0; the
other ranks send a digest of their routed tokens and selections, which must match (the router gate is
replicated, so every rank routes every token, and applies the same plan).

Engine settings capture relies on, forced here: ``enforce_eager=True`` (no CUDA graphs, no
torch.compile: hooks must run every step), prefix caching off (a cached prefix would skip its
tokens' routing), async scheduling off (no speculative step feeds a token after a stop). Items are
rendered by ``backends.render`` exactly as on the transformers backend (a teacher-forced assistant
turn included, with the adapter's template variables) and passed as token ids, so both backends feed
the same tokens; vLLM's own tokenizer is not loaded (``skip_tokenizer_init``).

Which tokens count: every token the engine feeds through the model, i.e. the prompt and every
generated token except the last (vLLM never feeds a finished request's last token); with token scope
"content" only the prompt's content positions (``Rendered.content``, shipped with each request as
a compact mask, vllm_worker.COUNT_KEY) and every generated token. An item whose count of routed
tokens differs from prompt + output - 1 (a preemption recomputed it) is an error.

Multiple choice (``score_choices``, the transformers backend's semantics): one request per choice,
context + continuation (``backends.choice_requests``), with ``prompt_logprobs`` and one sampled token
that is never fed; a choice's score is the sum of its continuation tokens' log-probabilities. All
requests of an item share its sequence, so its interventions apply to every pass; the routing
summary counts the context positions of its first choice's request only, which route exactly as a
prefill of the context alone (causal attention).

dtype ``auto`` is the checkpoint's own dtype (backends.resolve_dtype), as on the transformers
backend; vLLM's own ``auto`` would run a float32 checkpoint in bfloat16.

On CPU: the KV cache size is explicit (``kv_cache_memory_bytes``, CPU_KV_CACHE_BYTES unless given),
so vLLM's CPU worker neither reserves a share of the machine's RAM nor profiles memory with a
warm-up pass. With tensor parallel, vLLM cannot bind the ranks' OpenMP threads on one NUMA node by
itself ("Not enough allowed NUMA nodes"): unless VLLM_CPU_OMP_THREADS_BIND is set, the backend sets
it to one group of the allowed cores per rank (``cpu_thread_binding``).

Families: each adapter says whether vLLM serves it (``Adapter.vllm_gate_names``: the router module
in vLLM's model code), whether its parity with transformers is verified (``vllm_verified``) and
whether vLLM's selection must be overridden on intervened rows (``vllm_selection_override``). vLLM
internals move between releases; this backend is verified on vLLM ``VERIFIED_VLLM_VERSION`` (the
``vllm-cpu`` build on CPU, tests/test_vllm_parity.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import torch

from moe_routing.capture import interventions as iv
from moe_routing.capture.adapters import activation_eps, get_adapter
from moe_routing.capture.backends import (
    GenerationOptions,
    LoadOptions,
    RoutingBackend,
    generations_table,
    item_rows,
    resolve_dtype,
    scoring_requests,
)
from moe_routing.capture.backends.vllm_worker import (
    COUNT_KEY,
    SEQ_KEY,
    WORKER_EXTENSION,
    pack_mask,
    sparse_plan,
    unpack_array,
)
from moe_routing.core.errors import ConfigError, ModelError
from moe_routing.core.progress import progress

log = logging.getLogger(__name__)

VERIFIED_VLLM_VERSION = "0.32.0"
# engine settings router capture relies on (module docstring); a different user value is an error
REQUIRED_ENGINE_ARGS = {"enforce_eager": True, "enable_prefix_caching": False, "async_scheduling": False}
# enough for tiny and demo models (the tiny test model: 87k tokens); allocating it is part of every start
CPU_KV_CACHE_BYTES = 64 * 2**20
# KV cache blocks a batch leaves free (the scheduler's own bookkeeping)
KV_CACHE_SPARE_BLOCKS = 1
BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"
# the binding this module last set (so a later engine of another size replaces it, but never a user's)
_bind_set_here: str | None = None


def check_vllm_version(found: str, allow_unverified: bool = False) -> None:
    """A clear error unless vLLM is the release this backend was verified on (local tags like +cpu ignored)."""
    base = found.split("+", 1)[0]
    if base != VERIFIED_VLLM_VERSION and not allow_unverified:
        raise ConfigError(
            f"vLLM {found} is installed, but the vLLM backend is verified on vLLM {VERIFIED_VLLM_VERSION} only "
            "(it hooks engine internals that move between releases). Install it with scripts/setup_vllm.sh "
            f"(vllm-cpu=={VERIFIED_VLLM_VERSION}) or vllm=={VERIFIED_VLLM_VERSION} on GPU, or pass "
            "LoadOptions.extra['allow_unverified_vllm']=True at your own risk."
        )


def cpu_thread_binding(world_size: int, cores: list[int]) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for ``world_size`` CPU ranks: equal contiguous groups of ``cores``, one per
    rank ("0|1", "0,1|2,3"); a core left over (more than one per rank) stays free for the engine process."""
    cores = sorted(cores)
    if len(cores) < world_size:
        raise ConfigError(
            f"the vLLM backend on CPU needs a core per rank: {world_size} ranks, {len(cores)} allowed core(s) {cores}"
        )
    if len(cores) >= 2 * world_size + 1:
        cores = cores[:-1]
    per = len(cores) // world_size
    return "|".join(",".join(str(c) for c in cores[r * per : (r + 1) * per]) for r in range(world_size))


def _bind_cpu_ranks(world_size: int) -> None:
    global _bind_set_here
    current = os.environ.get(BIND_ENV)
    if current is not None and current != _bind_set_here:
        return  # the user's own binding
    if world_size == 1:
        # vLLM's automatic binding works for one rank
        os.environ.pop(BIND_ENV, None)
        _bind_set_here = None
        return
    _bind_set_here = cpu_thread_binding(world_size, sorted(os.sched_getaffinity(0)))
    os.environ[BIND_ENV] = _bind_set_here


@dataclass
class _Request:
    """One engine request: its prompt ids, the item it belongs to (``seq``: its row of the batch's plan
    and summaries), which prompt positions count in the summaries (None: all), and for scoring where the
    continuation starts (nothing is generated then)."""

    ids: list[int]
    seq: int
    counted: list[bool] | None = None
    score_from: int | None = None


class Preempted(ModelError):
    """vLLM routed a request's tokens more than once: it preempted and recomputed it (its KV cache was full)."""


def fit_batches(sizes: list[int], batch_size: int, capacity: int | None, item_ids: list[str]) -> list[list[int]]:
    """Consecutive batches of items: at most ``batch_size`` items and, when the KV cache's ``capacity`` (in
    blocks) is known, at most that many blocks (``sizes``: the blocks of prompt + new tokens of every
    request of an item), so that vLLM never preempts a request. An item larger than the cache is an error."""
    budget = None if capacity is None else max(1, capacity - KV_CACHE_SPARE_BLOCKS)
    batches: list[list[int]] = []
    used = 0
    for i, size in enumerate(sizes):
        if budget is not None and size > budget:
            raise ConfigError(
                f"item {item_ids[i]!r} needs {size} blocks of KV cache, more than the {budget} the "
                "engine holds; give vLLM more memory (gpu_memory_utilization, kv_cache_memory_bytes) "
                "or fewer new tokens"
            )
        if batches and len(batches[-1]) < batch_size and (budget is None or used + size <= budget):
            batches[-1].append(i)
            used += size
        else:
            batches.append([i])
            used = size
    return batches


def _continuation_logprob(req: _Request, prompt_logprobs) -> float:
    """The summed log-probabilities of the prompt tokens from ``req.score_from`` on (vLLM's prompt
    logprobs: entry p holds token p's log-probability given the tokens before it)."""
    if req.score_from < 1:
        raise ConfigError("multiple-choice scoring needs a non-empty context")
    total = 0.0
    for p in range(req.score_from, len(req.ids)):
        total += prompt_logprobs[p][req.ids[p]].logprob
    return total


class _NoTokenizerNotes(logging.Filter):
    """Drops vLLM's notes that its own tokenizer is absent: the backend passes token ids and skips it on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (msg.startswith("Chat template warmup failed") or "because tokenizer is not initialized" in msg)


def load(model_path: str, options: LoadOptions | None = None) -> "VLLMBackend":
    return VLLMBackend(str(model_path), options or LoadOptions())


def _import_vllm(allow_unverified: bool):
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(
            f"the vLLM backend needs vllm=={VERIFIED_VLLM_VERSION} ({exc}); create .venv-vllm with scripts/setup_vllm.sh"
        ) from exc
    check_vllm_version(vllm.__version__, allow_unverified)
    return vllm


class VLLMBackend(RoutingBackend):
    name = "vllm"

    def __init__(self, model_path: str, options: LoadOptions):
        if not Path(model_path).exists():
            raise ModelError(f"{model_path}: model directory not found")
        start = time.perf_counter()
        extra = dict(options.extra or {})
        vllm = _import_vllm(bool(extra.pop("allow_unverified_vllm", False)))
        from transformers import AutoConfig, AutoTokenizer
        from vllm.platforms import current_platform

        trust = bool(options.trust_remote_code)
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust)
        # a forced router kind (`adapter:`) has no vLLM mapping: vllm_gate_name below refuses it
        self.adapter = get_adapter(config, options.adapter)
        self.model_type = config.model_type
        self.adapter.vllm_gate_name(self.model_type)  # families vLLM does not serve fail before the engine starts
        if self.model_type not in self.adapter.vllm_verified:
            log.warning("vLLM backend: %s is mapped but not verified against transformers; run the parity test", self.model_type)
        self.device = str(current_platform.device_type)
        if options.device not in ("auto", self.device) and not options.device.startswith(f"{self.device}:"):
            raise ConfigError(f"device {options.device!r} requested, but the installed vLLM runs on {self.device}")
        self.dtype = resolve_dtype(options.dtype, config, self.device)
        engine_args = self._engine_args(model_path, trust, extra)
        self.tensor_parallel_size = int(engine_args.get("tensor_parallel_size", 1))
        # the rows -> requests mapping reads the V1 model runner (V2 is the default on GPUs with Triton)
        os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"
        if self.device == "cpu":
            _bind_cpu_ranks(self.tensor_parallel_size)
        logging.getLogger("vllm.renderers.base").addFilter(_NoTokenizerNotes())
        try:
            self.llm = vllm.LLM(**engine_args)
        except TypeError as exc:
            raise ConfigError(f"vLLM rejected the engine arguments {sorted(engine_args)}: {exc}") from exc
        # the transformers tokenizer, so prompts render exactly as in hf.py
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust)
        self.model_path = model_path
        self._install(config)
        self.stop_ids = self._stop_ids()
        # for tests: record_selection -> after generate(), engine_selected [S, L, E] bool, the experts vLLM's own
        # router selected per sequence (None when the kernel does not report them); record_steps -> steps, the
        # sequence of each routed row of each forward step
        self.record_selection = False
        self.engine_selected: torch.Tensor | None = None
        self.record_steps = False
        self.steps: list[list[int]] = []
        self.load_seconds = time.perf_counter() - start
        self.generate_seconds = 0.0
        log.info(
            "loaded %s in vLLM %s (%s, %d MoE layers x %d experts, top-%d, %s, %d rank(s)) in %.1fs",
            model_path,
            vllm.__version__,
            self.model_type,
            len(self.moe_layers),
            self.num_experts,
            self.top_k,
            self.dtype,
            self.tensor_parallel_size,
            self.load_seconds,
        )

    # --- setup -----------------------------------------------------------------------
    def _engine_args(self, model_path: str, trust: bool, extra: dict) -> dict:
        for key, value in REQUIRED_ENGINE_ARGS.items():
            if key in extra and extra[key] != value:
                raise ConfigError(f"vLLM option {key}={extra[key]!r} would break router capture; it must be {value}")
        for key in ("pipeline_parallel_size", "data_parallel_size"):
            if int(extra.get(key, 1)) != 1:
                raise ConfigError(f"vLLM option {key}={extra[key]!r}: the vLLM backend supports tensor parallel only")
        if "worker_extension_cls" in extra:
            raise ConfigError("vLLM option worker_extension_cls is set by the vLLM backend (router capture)")
        args = dict(
            model=model_path,
            tokenizer=model_path,
            skip_tokenizer_init=True,
            dtype=self.dtype,
            trust_remote_code=trust,
            seed=int(extra.pop("seed", 0)),
            worker_extension_cls=WORKER_EXTENSION,
            **REQUIRED_ENGINE_ARGS,
        )
        if self.device == "cpu":
            args["kv_cache_memory_bytes"] = int(extra.pop("kv_cache_memory_bytes", CPU_KV_CACHE_BYTES))
        return args | extra

    def _install(self, config) -> None:
        """Hook the routers in every worker; all ranks must report the same MoE layers, and the experts and
        top-k of the checkpoint's config."""
        ranks = self.llm.collective_rpc("moe_routing_install")
        spec = self.adapter.spec_from_config(config)
        lead = next(r for r in ranks if r["rank"] == 0)
        for r in ranks:
            if (r["moe_layers"], r["num_experts"], r["top_k"]) != (lead["moe_layers"], spec.num_experts, spec.top_k):
                raise ModelError(
                    f"vLLM rank {r['rank']} hooked MoE layers {r['moe_layers']} of {r['num_experts']} "
                    f"experts, top-{r['top_k']}; rank 0 hooked {lead['moe_layers']} and the config says "
                    f"{spec.num_experts} experts, top-{spec.top_k}"
                )
        self.moe_layers = list(lead["moe_layers"])
        self.num_experts, self.top_k = spec.num_experts, spec.top_k
        # per MoE layer: layer, name (module path in vLLM's model), bias (selection bias present), scale
        self.sites = lead["sites"]
        self.worker_pids = [r["pid"] for r in ranks]
        self._shm_prefixes = sorted({r["shm_prefix"] for r in ranks if r.get("shm_prefix")})

    def _stop_ids(self) -> list[int]:
        from transformers import GenerationConfig

        try:
            eos = GenerationConfig.from_pretrained(self.model_path).eos_token_id
        except OSError:
            eos = None
        if eos is None:
            eos = self.tokenizer.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        return sorted(set(int(i) for i in ids))

    def close(self, timeout: float = 1.0) -> None:
        """Stop the engine and its worker processes now (otherwise at interpreter exit, which waits 5 s for
        processes that, on CPU, take that long to tear themselves down: after ``timeout`` they are killed)."""
        llm = self.__dict__.pop("llm", None)
        if llm is None:
            return
        llm.llm_engine.engine_core.shutdown(timeout=timeout)
        # vLLM 0.32's CPU workers leave their tensor-parallel shared memory behind when they are killed
        # (4 MiB per rank per engine start, with or without this timeout): remove this engine's files
        for prefix in self._shm_prefixes if self.device == "cpu" else []:
            for path in Path("/dev/shm").glob(f"{prefix}-*"):
                path.unlink(missing_ok=True)

    # --- generation and scoring ---------------------------------------------------------
    def generate(
        self,
        items: pl.DataFrame,
        interventions: pl.DataFrame | None = None,
        options: GenerationOptions | None = None,
    ) -> pa.Table:
        opts, interventions, rows, rendered = self._rendered_items(items, interventions, options)
        content = opts.token_scope == "content"
        results, summaries = self._run_all(
            rows, lambda i, j: [_Request(rendered[i].ids, j, rendered[i].content if content else None)], interventions, opts
        )
        return generations_table(
            self.tokenizer,
            rows,
            [r.ids for r in rendered],
            [res[0] for res in results],
            summaries,
            self.routing_metadata(),
            self.adapter,
        )

    def _score(self, items, interventions, options):
        """One request per choice, context + continuation, scored by its prompt log-probabilities; the
        first choice's request also carries the item's routing: its context positions count (the
        content ones with token scope "content"), its continuation's do not, nor any of the others'."""
        opts, interventions = self._check(items, interventions, options)
        rows = item_rows(items)
        contexts, conts = scoring_requests(self.tokenizer, items, rows, opts, self.adapter)
        content = opts.token_scope == "content"

        def requests(i: int, j: int) -> list[_Request]:
            ctx = contexts[i]
            counted = ctx.content if content and ctx.content is not None else [True] * len(ctx.ids)
            return [
                _Request(
                    ctx.ids + cont,
                    j,
                    (counted if c == 0 else [False] * len(ctx.ids)) + [False] * len(cont),
                    score_from=len(ctx.ids),
                )
                for c, cont in enumerate(conts[i])
            ]

        scores, summaries = self._run_all(rows, requests, interventions, opts)
        return rows, contexts, scores, summaries

    def _run_all(self, rows: list[dict], requests, interventions, opts: GenerationOptions):
        """Batches of ``batch_size`` items in input order; ``requests(i, j)`` gives item i's requests as
        sequence j of its batch. Returns per item the results of its requests (generated tokens or
        choice scores) and the routing summaries (None without capture)."""
        eps = activation_eps(len(self.moe_layers), self.num_experts, opts.seed)
        start = time.perf_counter()
        # the batch is what vLLM may hold at once: a smaller one (OOM retry) bounds its memory, and so does
        # its KV cache (a request it preempts is recomputed, and its routing would count twice)
        new = 1 if opts.max_new_tokens == 0 else opts.max_new_tokens
        blocks, block = self.kv_cache_blocks()
        sizes = [
            sum(-(-(len(r.ids) + (1 if r.score_from is not None else new)) // block) for r in requests(i, 0))
            for i in range(len(rows))
        ]
        chunks = fit_batches(sizes, opts.batch_size, blocks, [r["item_id"] for r in rows])
        results: list[list] = [[] for _ in rows]
        summaries: dict[str, list] = {}
        selected = []
        self.steps = []
        pending = list(reversed(chunks))
        bar = progress(total=len(rows), desc="generate (vllm)", unit="item", disable=len(chunks) < 2)
        while pending:
            chunk = pending.pop()
            ids = [rows[i]["item_id"] for i in chunk]
            plan = iv.compile_batch(interventions, ids, self.moe_layers, self.num_experts, eps)
            reqs = [req for j, i in enumerate(chunk) for req in requests(i, j)]
            try:
                out, result, sel = self._run_chunk(reqs, ids, plan, opts)
            except Preempted:
                if len(chunk) == 1:
                    raise
                # the KV cache held less than estimated (e.g. sliding-window layers keep their own blocks):
                # the batch's routing is discarded and its halves run again
                log.warning("vLLM preempted a request of a batch of %d items; running it in halves", len(chunk))
                half = len(chunk) // 2
                pending += [chunk[half:], chunk[:half]]
                continue
            selected.append(sel)
            for req, res in zip(reqs, out):
                results[chunk[req.seq]].append(res)
            for key, arr in (result or {}).items():
                col = summaries.setdefault(key, [None] * len(rows))
                for j, i in enumerate(chunk):
                    col[i] = arr[j]
            bar.update(len(chunk))
        bar.close()
        self.engine_selected = torch.cat(selected) if selected and all(x is not None for x in selected) else None
        self.generate_seconds = time.perf_counter() - start
        return results, (summaries if opts.capture else None)

    def kv_cache_blocks(self) -> tuple[int | None, int]:
        """(blocks, tokens per block) of the engine's KV cache, from its config after start-up (blocks None: unknown)."""
        cache = self.llm.llm_engine.vllm_config.cache_config
        blocks, size = getattr(cache, "num_gpu_blocks", None), getattr(cache, "block_size", None) or 16
        return (int(blocks) if blocks else None), int(size)

    def _sampling_params(self, req: _Request, opts: GenerationOptions):
        from vllm import SamplingParams

        extra = {SEQ_KEY: req.seq, COUNT_KEY: pack_mask(req.counted)}
        if req.score_from is not None:
            # the prompt's own log-probabilities (raw logits, float32); the one sampled token is never fed back
            return SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0, detokenize=False, extra_args=extra)
        # max_new_tokens == 0 (prefill only): sample one token that is never fed back, then drop it
        return SamplingParams(
            temperature=0.0,
            max_tokens=max(1, opts.max_new_tokens),
            min_tokens=opts.max_new_tokens if opts.ignore_eos else 0,
            stop_token_ids=self.stop_ids,
            seed=opts.seed,
            detokenize=False,
            extra_args=extra,
        )

    def _run_chunk(self, reqs: list[_Request], item_ids: list[str], plan, opts: GenerationOptions):
        """One batch through the engine: per request its generated tokens (cut after the first stop token,
        as in hf.py) or its continuation's summed log-probability; the summaries; vLLM's selections."""
        from vllm.inputs import TokensPrompt

        n = len(item_ids)
        run = {
            "num_seqs": n,
            "capture": opts.capture,
            "seed": opts.seed,
            "plan": sparse_plan(plan),
            "record_selection": self.record_selection,
            "record_steps": self.record_steps,
        }
        end = ("moe_routing_end", None, (opts.seed, opts.consistency_pairs))
        self.llm.collective_rpc("moe_routing_begin", args=(run,))
        try:
            results = self.llm.generate(
                [TokensPrompt(prompt_token_ids=list(r.ids)) for r in reqs],
                [self._sampling_params(r, opts) for r in reqs],
                use_tqdm=False,
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the workers drop the batch; the generate error is the one to see
                self.llm.collective_rpc(*end)
            raise
        lead = self._agreed(self.llm.collective_rpc(*end))
        if lead["steps"] is not None:
            self.steps.extend(lead["steps"])
        outs = []
        expected = [0] * n
        stops = set(self.stop_ids)
        for req, res in zip(reqs, results):
            if req.score_from is not None:
                outs.append(_continuation_logprob(req, res.prompt_logprobs))
                expected[req.seq] += len(req.ids)
                continue
            toks = list(res.outputs[0].token_ids)
            # same cut as hf.py: up to and including the first stop token
            cut = next((k + 1 for k, t in enumerate(toks) if t in stops), len(toks))
            toks = toks[:cut] if opts.max_new_tokens > 0 else []
            # every token fed: the prompt and the outputs but the last, which is never fed back
            expected[req.seq] += len(req.ids) + max(len(toks) - 1, 0)
            outs.append(toks)
        for j, want in enumerate(expected):
            if lead["tokens"][j] != want:
                raise Preempted(
                    f"vLLM routed {lead['tokens'][j]} tokens for item {item_ids[j]!r} (sequence {j}), expected "
                    f"{want} (prompts + outputs - 1); was a request preempted and recomputed? Lower batch_size."
                )
        summaries = {k: unpack_array(v) for k, v in lead["summaries"].items()} if lead.get("summaries") else None
        # None when the kernel never reported its selection (monolithic fused-MoE kernels)
        selected = torch.from_numpy(unpack_array(lead["selected"])) if lead.get("selected") else None
        return outs, summaries, selected

    def _agreed(self, reports: list[dict]) -> dict:
        """Rank 0's report, once every rank ran cleanly and agrees with it."""
        for r in reports:
            if r.get("error"):
                raise ModelError(f"vLLM worker rank {r['rank']}: router capture failed: {r['error']}")
            if r["bypassed"]:
                # a fused kernel routed without calling the router: the interventions never reached the selection
                raise ModelError(
                    f"{self.model_type}: vLLM's MoE kernel bypassed the router at MoE layer position(s) "
                    f"{r['bypassed']}; hard interventions cannot be applied with this kernel (use --backend hf)"
                )
        lead = next(r for r in reports if r["rank"] == 0)
        for r in reports:
            if r["digest"] != lead["digest"]:
                raise ModelError(
                    f"vLLM tensor-parallel rank {r['rank']} routed differently from rank 0 "
                    "(tokens, selections or top-k differ); the ranks disagree on experts"
                )
        return lead
