"""Router capture and per-request interventions inside vLLM's worker processes.

``RoutingWorkerExtension`` is mixed into vLLM's worker class (``vllm.LLM(worker_extension_cls=
WORKER_EXTENSION)``), so its methods exist in every worker process, one per tensor-parallel rank, and
the caller runs them on all ranks at once with ``LLM.collective_rpc``:

    moe_routing_install()      locate the MoE routers of the worker's model and hook them
    moe_routing_begin(run)     a batch starts: its sequence count, capture on/off, its sparse intervention plan,
                               what to record for tests (vLLM's own selections, the rows of each step)
    moe_routing_end()          the batch is done: per-sequence summaries, routed-token counts, vLLM's selections

Everything crossing a process boundary is plain data (dicts, lists, numbers, bytes; arrays as
``pack_array`` dicts): vLLM's msgpack channel between the caller and the engine process carries nothing
else without VLLM_ALLOW_INSECURE_SERIALIZATION.

Capture: a forward hook on each MoE layer's gate module reads the router logits of the packed batch.
vLLM packs the scheduled tokens of all running requests into rows; the forward context's
``query_start_loc`` gives each request's row range and the model runner's ``input_batch.req_ids`` gives
the request of each range. Each request carries its sequence number in ``SamplingParams.extra_args``
(SEQ_KEY; engine request ids get random suffixes), so rows map to sequences without relying on id
formats. Rows past ``query_start_loc[-1]`` are padding.

Which rows count: every row the engine feeds is routed (and counted in ``tokens``, which the caller
checks against what it expects), but the summaries take only the counted ones. A request may carry a
mask over its prompt positions (COUNT_KEY in ``extra_args``, ``pack_mask``: its length and the runs
of counted positions): token scope "content", and in multiple-choice scoring the context of one
request per item. A row's position in its request is the tokens the runner had already computed for
it (``input_batch.num_computed_tokens_cpu``, before this step) plus its offset in the request's
``query_start_loc`` range, so a prompt split over several steps by chunked prefill is masked
position by position; positions past the mask (generated tokens) always count.

Summaries are accumulated by ``routing.RoutingAccumulator`` on the adapter's gating of those logits,
exactly as in hf.py. When a sequence has interventions at a layer, the hook returns the adapter's
intervened logits, which vLLM's own router turns into its selection; for adapters with
``vllm_selection_override`` (sigmoid + bias) the router's (weights, ids) are replaced on intervened
rows. Where vLLM's router cannot select as the family does (its CPU router drops ERNIE-4.5's selection
bias and has no sigmoid top-k without groups: ``cpu_router_unfit``), the adapter selects for every row
instead of it, so vLLM runs the model transformers runs.
A capture callback on vLLM's router records the experts it really selected per sequence.

Tensor parallel: the gate is replicated and its input is the full hidden state, so every rank sees the
same logits and holds the whole routing of every token. Each rank applies the same plan, so the ranks
agree on the experts; the caller takes rank 0's summaries and checks that every rank's routed-token
counts, vLLM selections and (with capture) per-token top-k are identical (``digest``, only computed
with more than one rank). Pipeline and data parallel are not supported.

An exception inside a hook would kill the engine: hooks record it instead, go quiet for the rest of the
batch, and ``moe_routing_end`` reports it for the caller to raise.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from moe_routing.capture.adapters import activation_eps, get_adapter, model_type_of
from moe_routing.capture.adapters.base import CompiledPlan
from moe_routing.core.errors import ModelError
from moe_routing.capture.accumulator import RoutingAccumulator

WORKER_EXTENSION = "moe_routing.capture.backends.vllm_worker.RoutingWorkerExtension"
SEQ_KEY = "moe_routing_seq"
COUNT_KEY = "moe_routing_count"
PLAN_MODES = ("deactivate", "activate", "soft")


# --- plain-data codecs (caller <-> workers) -------------------------------------------------
def pack_array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.tobytes()}


def unpack_array(d: dict) -> np.ndarray:
    return np.frombuffer(d["data"], dtype=d["dtype"]).reshape(d["shape"]).copy()


def sparse_plan(plan: CompiledPlan | None) -> dict | None:
    """The nonzero entries of a compiled [S, L, E] plan (mostly zeros): (seq, layer position, expert)
    triples per mode, flattened, and the soft strengths."""
    if plan is None:
        return None
    out = {}
    for mode in PLAN_MODES:
        dense = getattr(plan, mode)
        idx = torch.nonzero(dense.cpu() != 0)
        out[mode] = idx.flatten().tolist()
        if mode == "soft":
            out["soft_strength"] = dense.cpu()[tuple(idx.T)].tolist()
    return out


def dense_plan(sparse: dict | None, shape: tuple[int, int, int], eps: torch.Tensor) -> CompiledPlan | None:
    """Inverse of ``sparse_plan``: the same CompiledPlan, bit for bit."""
    if sparse is None:
        return None
    tensors = {
        "deactivate": torch.zeros(shape, dtype=torch.bool),
        "activate": torch.zeros(shape, dtype=torch.bool),
        "soft": torch.zeros(shape, dtype=torch.float64),
    }
    for mode, dense in tensors.items():
        idx = torch.tensor(sparse[mode], dtype=torch.int64).view(-1, 3)
        values = torch.tensor(sparse["soft_strength"], dtype=torch.float64) if mode == "soft" else True
        dense[idx[:, 0], idx[:, 1], idx[:, 2]] = values
    return CompiledPlan(eps=eps, **tensors)


def digest(*arrays: np.ndarray) -> str:
    """One hash of exact array contents: what a tensor-parallel rank sends instead of its copy."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def pack_mask(mask: list[bool] | None) -> dict | None:
    """A boolean mask over a request's prompt positions as plain data: its length and the flattened
    [start, end) runs of True (a content mask is a few runs, whatever the prompt's length)."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], m, [False])).astype(np.int8)))
    return {"len": int(m.size), "runs": edges.tolist()}


def unpack_mask(packed: dict) -> np.ndarray:
    mask = np.zeros(int(packed["len"]), dtype=bool)
    runs = packed["runs"]
    for start, end in zip(runs[0::2], runs[1::2]):
        mask[start:end] = True
    return mask


def counted_rows(query_start_loc: torch.Tensor, starts, masks: list[np.ndarray | None], row_valid: torch.Tensor) -> torch.Tensor:
    """``row_valid`` narrowed to the rows that count. Request r's rows qsl[r]:qsl[r+1] hold its positions
    starts[r], starts[r] + 1, ...; ``masks[r]`` (None: every position counts) says which of its first
    positions (the prompt) count; positions past the mask (generated tokens) all count."""
    qsl = query_start_loc.detach().to("cpu", torch.int64).tolist()
    counted = row_valid.clone()
    for r, mask in enumerate(masks):
        start, lo, hi = int(starts[r]), qsl[r], qsl[r + 1]
        if mask is None or start >= mask.size or hi == lo:
            continue
        part = np.ones(hi - lo, dtype=bool)
        inside = mask[start : start + hi - lo]
        part[: inside.size] = inside
        counted[lo:hi] &= torch.from_numpy(part)
    return counted


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


# --- worker side ---------------------------------------------------------------------------
@dataclass
class _Site:
    layer: int  # model layer index
    name: str  # module path in the vLLM model
    gate: torch.nn.Module
    router: object | None  # vLLM's FusedMoE router (reports the engine's own selection)
    bias: torch.Tensor | None
    # factor vLLM multiplies the router's weights by after routing (MoERunner.routed_scaling_factor)
    scale: float = 1.0
    # vLLM's router cannot select as the family does (``cpu_router_unfit``): the adapter selects every row
    replace_all: bool = False


@dataclass
class _Batch:
    plan: CompiledPlan | None
    acc: RoutingAccumulator | None
    tokens: torch.Tensor  # [S] routed rows per sequence (first MoE layer)
    # [S + 1, L, E] bool on the model's device: experts vLLM's router selected (row S collects padding rows),
    # or None when not recorded
    selected: torch.Tensor | None
    steps: list | None  # per forward step, the sequence of each valid row (first MoE layer), when asked
    ctx: object | None = None
    row_seq: torch.Tensor | None = None
    row_valid: torch.Tensor | None = None  # rows fed (not padding)
    row_counted: torch.Tensor | None = None  # rows whose routing the summaries take (COUNT_KEY masks)
    row_seq_dev: torch.Tensor | None = None  # row_seq and row_valid on the model's device
    row_valid_dev: torch.Tensor | None = None
    masks: dict = field(default_factory=dict)  # request id -> its unpacked COUNT_KEY mask (None: none)
    pending_rows: dict = field(default_factory=dict)  # MoE layer position -> rows its gate saw
    # MoE layer position -> (adapter RouteResult, touched rows) for selection-override adapters
    pending_route: dict = field(default_factory=dict)
    selection_seen: bool = False
    error: str | None = None


class _Routing:
    """Per-worker state: the hooked sites and the batch in flight."""

    def __init__(self, worker):
        config = worker.model_config.hf_config
        self.model_type = model_type_of(config)
        self.adapter = get_adapter(config)
        self.spec = self.adapter.spec_from_config(config)
        self.override = self.adapter.vllm_selection_override
        self.runner = worker.model_runner
        self.device = worker.device
        self.rank = int(worker.rank)
        self.world_size = int(worker.parallel_config.world_size)
        self.sites = _locate(self.runner.get_model(), self.adapter.vllm_gate_name(self.model_type), self.model_type)
        self.batch: _Batch | None = None
        for pos, site in enumerate(self.sites):
            site.gate.register_forward_hook(self._guarded(self._gate_hook(pos, site)), prepend=True)
            if site.router is not None and hasattr(site.router, "set_capture_fn"):
                site.router.set_capture_fn(self._guarded(self._selection_hook(pos)))
            if self.override or site.replace_all:
                if site.router is None or not hasattr(site.router, "_compute_routing"):
                    raise ModelError(f"{site.name}: no vLLM router with _compute_routing to apply interventions to")
                site.router._compute_routing = self._override_routing(pos, site, site.router._compute_routing)

    def describe(self) -> dict:
        # VLLM_DIST_IDENT: the CPU worker's prefix of the shared-memory files of its tensor-parallel group
        return {
            "rank": self.rank,
            "pid": os.getpid(),
            "shm_prefix": os.environ.get("VLLM_DIST_IDENT"),
            "model_type": self.model_type,
            "moe_layers": [s.layer for s in self.sites],
            "num_experts": self.spec.num_experts,
            "top_k": self.spec.top_k,
            "sites": [
                {"layer": s.layer, "name": s.name, "bias": s.bias is not None, "scale": s.scale, "replace_all": s.replace_all}
                for s in self.sites
            ],
        }

    # --- batches ------------------------------------------------------------------------
    def begin(self, run: dict) -> None:
        n, L, E = int(run["num_seqs"]), len(self.sites), self.spec.num_experts
        eps = activation_eps(L, E, int(run["seed"]))
        plan = dense_plan(run.get("plan"), (n, L, E), eps)
        # the hooks hand the accumulator fresh tensors (the gate's own output is copied first)
        acc = RoutingAccumulator(n, L, E, self.spec.top_k, self.device, copy_inputs=False) if run["capture"] else None
        # vLLM's own selections: on request (tests), and whenever ranks must be compared
        record = run.get("record_selection") or self.world_size > 1
        selected = torch.zeros((n + 1, L, E), dtype=torch.bool, device=self.device) if record else None
        self.batch = _Batch(
            plan=plan.to(self.device) if plan is not None else None,
            acc=acc,
            tokens=torch.zeros(n, dtype=torch.int64),
            selected=selected,
            steps=[] if run.get("record_steps") else None,
        )

    def end(self, seed: int, pairs: int) -> dict:
        b, self.batch = self.batch, None
        if b is None:
            return {"rank": self.rank, "error": "moe_routing_end without moe_routing_begin"}
        tokens = b.tokens.numpy()
        selected = b.selected[:-1].cpu().numpy() if b.selection_seen else None
        out = {
            "rank": self.rank,
            "error": b.error,
            "bypassed": sorted(b.pending_route),
            "tokens": tokens.tolist(),
            "steps": b.steps,
            "digest": None,
        }
        if b.error is not None:
            return out
        if self.world_size > 1:
            # what the ranks must agree on: routed tokens, vLLM's selections, with capture every token's top-k
            checked = [tokens] + ([selected] if selected is not None else [])
            if b.acc is not None:
                checked += [torch.cat(b.acc.topk_sets(pos)).numpy() for pos in range(len(self.sites))]
            out["digest"] = digest(*checked)
        if self.rank == 0:
            out["selected"] = pack_array(selected) if selected is not None else None
            summaries = b.acc.finalize(seed=seed, pairs=pairs) if b.acc is not None else None
            out["summaries"] = {k: pack_array(v) for k, v in summaries.items()} if summaries is not None else None
        return out

    # --- hooks -------------------------------------------------------------------------
    def _guarded(self, fn):
        def call(*args, **kwargs):
            b = self.batch
            if b is None or b.error is not None:
                return None
            try:
                return fn(b, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 (reported by moe_routing_end; raising here kills the engine)
                b.error = f"{type(exc).__name__}: {exc}"
                return None

        return call

    def _rows(self, b: _Batch, num_rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(row_seq, row_valid, row_counted) of this forward step: each row's sequence, the rows fed, the rows counted."""
        from vllm.forward_context import get_forward_context, is_forward_context_available

        if not is_forward_context_available():
            raise ModelError("a router ran outside vLLM's forward context")
        ctx = get_forward_context()
        if ctx is b.ctx and b.row_seq is not None and b.row_seq.shape[0] == num_rows:
            return b.row_seq, b.row_valid, b.row_counted
        meta = ctx.attn_metadata
        if isinstance(meta, list):
            raise ModelError("micro-batched forward (DBO) is not supported by the vLLM backend")
        if not meta:
            # a dummy run with no requests: nothing counts
            row_seq, row_valid = torch.zeros(num_rows, dtype=torch.int64), torch.zeros(num_rows, dtype=torch.bool)
            row_counted = row_valid
        else:
            # hybrid models (Granite-4.0-H): Mamba layers' metadata come first and have no query_start_loc
            first = next((m for m in meta.values() if getattr(m, "query_start_loc", None) is not None), None)
            if first is None:
                raise ModelError(f"{type(next(iter(meta.values()))).__name__} has no query_start_loc")
            qsl = first.query_start_loc
            req_ids = list(self.runner.input_batch.req_ids)[: qsl.numel() - 1]
            seqs, masks = [], []
            for rid in req_ids:
                extra = getattr(self.runner.requests[rid].sampling_params, "extra_args", None) or {}
                if SEQ_KEY not in extra:
                    raise ModelError(f"vLLM request {rid} was not submitted by the moe_routing backend (no {SEQ_KEY})")
                seqs.append(int(extra[SEQ_KEY]))
                if rid not in b.masks:
                    b.masks[rid] = unpack_mask(extra[COUNT_KEY]) if extra.get(COUNT_KEY) is not None else None
                masks.append(b.masks[rid])
            row_seq, row_valid = rows_to_sequences(qsl, seqs, num_rows)
            row_counted = row_valid
            if any(m is not None for m in masks):
                # tokens computed before this step: the position of each request's first row
                starts = self.runner.input_batch.num_computed_tokens_cpu[: len(req_ids)]
                row_counted = counted_rows(qsl, starts, masks, row_valid)
        b.ctx, b.row_seq, b.row_valid, b.row_counted = ctx, row_seq, row_valid, row_counted
        b.row_seq_dev, b.row_valid_dev = row_seq.to(self.device), row_valid.to(self.device)
        return row_seq, row_valid, row_counted

    def _gate_hook(self, pos: int, site: _Site):
        adapter, spec = self.adapter, self.spec

        def hook(b: _Batch, module, args, output):
            logits = output[0] if isinstance(output, tuple) else output
            row_seq, row_valid, row_counted = self._rows(b, logits.shape[0])
            rows = b.plan.rows(pos, b.row_seq_dev) if b.plan is not None else None
            if b.acc is not None or rows is not None or site.replace_all:
                res = adapter.route(logits, spec, site.bias, rows)
                if b.acc is not None:
                    # vLLM may reuse the gate's output buffer; intervened logits, indices, weights are fresh
                    z = res.logits.clone() if res.logits is logits else res.logits
                    b.acc.add(pos, z, res.indices, res.weights, row_seq, row_counted)
            if pos == 0:
                b.tokens.index_add_(0, row_seq[row_valid], torch.ones(int(row_valid.sum()), dtype=torch.int64))
                if b.steps is not None:
                    b.steps.append(row_seq[row_valid].tolist())
            b.pending_rows[pos] = logits.shape[0]
            if site.replace_all:
                b.pending_route[pos] = (res, torch.ones(logits.shape[0], dtype=torch.bool))
            if rows is None:
                return None
            if self.override and not site.replace_all:
                b.pending_route[pos] = (res, rows.touched)
            z = res.logits.to(logits.dtype)
            return (z,) + tuple(output[1:]) if isinstance(output, tuple) else z

        return hook

    def _override_routing(self, pos: int, site: _Site, original):
        def compute_routing(hidden_states, router_logits, indices_type, **kwargs):
            if site.replace_all:
                return replaced(router_logits, indices_type)
            weights, ids = original(hidden_states, router_logits, indices_type, **kwargs)
            b = self.batch
            if b is None or b.error is not None or pos not in b.pending_route:
                return weights, ids
            res, touched = b.pending_route.pop(pos)
            if res.indices.shape != ids.shape:
                b.error = f"{site.name}: vLLM routed {tuple(ids.shape)}, the adapter {tuple(res.indices.shape)}"
                return weights, ids
            keep = touched.to(ids.device)[:, None]
            ids = torch.where(keep, res.indices.to(ids.device, ids.dtype), ids)
            ours = (res.weights.to(weights.device, torch.float64) / site.scale).to(weights.dtype)
            weights = torch.where(keep, ours, weights)
            return weights.contiguous(), ids.contiguous()

        def replaced(router_logits, indices_type):
            # the gate hook's result (intervened logits included), else (a step outside a batch) the adapter's own
            b = self.batch
            pending = b.pending_route.pop(pos, None) if b is not None else None
            res = pending[0] if pending is not None else self.adapter.route(router_logits, self.spec, site.bias)
            weights = (res.weights.to(router_logits.device, torch.float64) / site.scale).to(torch.float32)
            return weights.contiguous(), res.indices.to(router_logits.device, indices_type or torch.int32).contiguous()

        return compute_routing

    def _selection_hook(self, pos: int):
        def capture(b: _Batch, topk_ids: torch.Tensor) -> None:
            if b.pending_rows.pop(pos, None) != topk_ids.shape[0] or b.selected is None:
                return
            b.selection_seen = True
            # padding rows go to the spare last row: no boolean indexing, so no device sync
            seq = torch.where(b.row_valid_dev, b.row_seq_dev, b.selected.shape[0] - 1)
            ids = topk_ids.detach().to(torch.int64)
            b.selected[seq[:, None].expand_as(ids), pos, ids] = True

        return capture


def _locate(model, leaf: str, model_type: str) -> list[_Site]:
    """The MoE gate modules named ``leaf`` with ``experts`` beside them (or beside their parent: DBRX's gate
    linear is ``router.layer``), in layer order. The selection bias is the gate's attribute where the model
    puts it there, else vLLM's router's (MiniMax-M2, Hy3 and Laguna keep it on the block)."""
    from vllm.model_executor.models.utils import extract_layer_index

    sites = []
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] != leaf or not any(f".{d}." in f".{name}" for d in ("layers", "blocks")):
            continue
        parts = name.split(".")
        experts = None
        for up in (1, 2):
            if len(parts) > up:
                experts = getattr(model.get_submodule(".".join(parts[:-up])), "experts", None)
            if experts is not None:
                break
        if experts is None:
            continue
        router = getattr(experts, "router", None)
        bias = getattr(module, "e_score_correction_bias", None)
        if bias is None:
            bias = getattr(router, "e_score_correction_bias", None)
        scale = float(getattr(experts, "routed_scaling_factor", 1.0) or 1.0)
        sites.append(_Site(extract_layer_index(name), name, module, router, bias, scale, cpu_router_unfit(router, bias)))
    if not sites:
        raise ModelError(f"{model_type}: no MoE gate modules named '{leaf}' with sibling experts in the vLLM model")
    sites.sort(key=lambda s: s.layer)
    return sites


def cpu_router_unfit(router, bias) -> bool:
    """vLLM 0.32's CPU router, without groups, selects by plain softmax top-k: it drops a selection bias
    (ERNIE-4.5's ``e_score_correction_bias``) that its GPU router adds, and fails on sigmoid scores
    (MiniMax-M2: AssertionError)."""
    return (
        type(router).__name__ == "CPURouter"
        and not getattr(router, "use_grouped_topk", True)
        and getattr(router, "custom_routing_function", None) is None
        and (bias is not None or getattr(router, "scoring_func", None) != "softmax")
    )


class RoutingWorkerExtension:
    """Mixed into vLLM's worker class; every name here must be new to vLLM's worker (vLLM checks)."""

    def moe_routing_install(self) -> dict:
        """Hook the routers of this worker's model (once); -> its MoE layers, experts, top-k and sites."""
        if getattr(self, "_moe_routing", None) is None:
            self._moe_routing = _Routing(self)
        return self._moe_routing.describe()

    def moe_routing_begin(self, run: dict) -> None:
        """run: num_seqs, capture, seed, plan (``sparse_plan`` or None), record_selection, record_steps."""
        self._moe_routing.begin(run)

    def moe_routing_end(self, seed: int, pairs: int) -> dict:
        """The batch's results (see _Routing.end); rank 0 sends the arrays, other ranks their digest."""
        return self._moe_routing.end(seed, pairs)
