"""Per-token router results -> per-sequence routing summaries (generations contract).

``RoutingAccumulator.add`` is called once per router call with the rows of that call; rows flagged
invalid (padding, pad steps after a sequence finished, its last generated token) count for nothing.
Calls are buffered (at most ``flush_rows`` rows per layer) and reduced together into float64 sums
per (sequence, layer, expert); after that only the top-k indices of each token are kept, for token
consistency. ``finalize`` returns, per sequence:

- ``weights``      mean combine weights (zero for unselected experts)      [L*E]
- ``softmax_mean`` mean softmax(z) over all E                               [L*E]
- ``freq``         fraction of tokens that selected each expert             [L*E]
- ``entropy``      mean natural-log entropy of softmax(z)                   [L]
- ``consistency``  mean top-k Jaccard over sampled token pairs              [L]
- ``topk_mean``    mean of softmax(z) kept on its k largest values and      [L*E]
                   renormalised to sum 1 (the routing paper's public code; for softmax-then-top-k
                   families the model's own weights when it renormalises, whatever the family here)
- ``tokens``       number of tokens counted                                 scalar

Consistency samples ``pairs`` ordered pairs (i != j, with replacement) with a generator seeded by
(seed, number of tokens), the same pairs for every layer: a sequence gets the same value whatever
batch it ran in. Fewer than 2 tokens gives NaN.
"""

from __future__ import annotations

import numpy as np
import torch


class RoutingAccumulator:
    def __init__(
        self,
        num_seqs: int,
        num_layers: int,
        num_experts: int,
        top_k: int,
        device: str | torch.device = "cpu",
        flush_rows: int = 8192,
        copy_inputs: bool = True,
    ):
        self.S, self.L, self.E, self.k = num_seqs, num_layers, num_experts, top_k
        # one buffer so each reduction is a single index_add: [weights | softmax | hits | topk | entropy | tokens];
        # it lives on the model's device and invalid rows are zeroed, not dropped: no host sync per call
        self._sums = torch.zeros((num_layers, num_seqs, 4 * num_experts + 2), dtype=torch.float64, device=device)
        self._topk: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = [[] for _ in range(num_layers)]
        # decode steps bring a few rows each: buffer them and reduce up to flush_rows rows at once
        self.flush_rows = flush_rows
        self._pending: list[list[tuple]] = [[] for _ in range(num_layers)]
        self._pending_rows = [0] * num_layers
        # buffered tensors must not change before the flush; callers that know theirs are fresh pass False
        self.copy_inputs = copy_inputs

    def add(
        self,
        layer_pos: int,
        logits: torch.Tensor,
        indices: torch.Tensor,
        weights: torch.Tensor,
        row_seq: torch.Tensor,
        row_valid: torch.Tensor | None = None,
    ) -> None:
        """logits [T, E], indices/weights [T, k], row_seq [T] (sequence of each row), row_valid [T] bool.

        Buffered until the next flush: copied first unless ``copy_inputs`` is False (then the caller
        guarantees the tensors are not modified or reused in place, as with transformers' routers).
        """
        if row_valid is None:
            row_valid = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
        parts = (logits.detach(), indices.detach(), weights.detach(), row_seq, row_valid)
        if self.copy_inputs:
            parts = tuple(t.clone() for t in parts)
        self._pending[layer_pos].append(parts)
        self._pending_rows[layer_pos] += logits.shape[0]
        if self._pending_rows[layer_pos] >= self.flush_rows:
            self._flush(layer_pos)

    def _flush(self, layer_pos: int) -> None:
        chunks = self._pending[layer_pos]
        if not chunks:
            return
        self._pending[layer_pos], self._pending_rows[layer_pos] = [], 0
        dev = self._sums.device
        z = torch.cat([c[0].to(dev, torch.float64) for c in chunks])
        idx = torch.cat([c[1].to(dev, torch.int64) for c in chunks])
        w = torch.cat([c[2].to(dev, torch.float64) for c in chunks])
        seq = torch.cat([c[3].to(dev, torch.int64) for c in chunks])
        valid = torch.cat([c[4].to(dev) for c in chunks])
        rows, E = z.shape
        block = torch.empty((rows, 4 * E + 2), dtype=torch.float64, device=dev)
        probs = torch.softmax(z, dim=-1)
        block[:, E : 2 * E] = probs
        block[:, :E].zero_().scatter_(1, idx, w)
        block[:, 2 * E : 3 * E].zero_().scatter_(1, idx, 1.0)
        top = probs.topk(self.k, dim=-1)
        block[:, 3 * E : 4 * E].zero_().scatter_(1, top.indices, top.values / top.values.sum(-1, keepdim=True))
        block[:, 4 * E] = torch.special.entr(probs).sum(-1)
        block[:, 4 * E + 1] = 1.0
        block *= valid[:, None]
        self._sums[layer_pos].index_add_(0, seq, block)
        self._topk[layer_pos].append((seq, idx.to(torch.int32), valid))

    @property
    def tokens(self) -> torch.Tensor:
        """[S, L] number of counted tokens."""
        for layer in range(self.L):
            self._flush(layer)
        return self._sums[..., -1].T.round().to("cpu", torch.int64)

    def topk_sets(self, layer_pos: int) -> list[torch.Tensor]:
        """Per sequence, the [N, k] top-k indices of its counted tokens in the order they ran."""
        self._flush(layer_pos)
        chunks = self._topk[layer_pos]
        if not chunks:
            return [torch.zeros((0, self.k), dtype=torch.int32) for _ in range(self.S)]
        valid = torch.cat([c[2] for c in chunks]).cpu()
        seq = torch.cat([c[0] for c in chunks]).cpu()[valid]
        idx = torch.cat([c[1] for c in chunks]).cpu()[valid]
        order = torch.sort(seq, stable=True).indices
        sizes = torch.bincount(seq, minlength=self.S).tolist()
        return list(torch.split(idx[order], sizes))

    def finalize(self, seed: int = 0, pairs: int = 500) -> dict[str, np.ndarray]:
        for layer in range(self.L):
            self._flush(layer)
        E = self.E
        sums = self._sums.transpose(0, 1).cpu()  # [S, L, 4E+2]
        n = sums[..., -1:].clamp(min=1)
        out = {
            "weights": (sums[..., :E] / n).reshape(self.S, -1),
            "softmax_mean": (sums[..., E : 2 * E] / n).reshape(self.S, -1),
            "freq": (sums[..., 2 * E : 3 * E] / n).reshape(self.S, -1),
            "topk_mean": (sums[..., 3 * E : 4 * E] / n).reshape(self.S, -1),
            "entropy": sums[..., 4 * E] / n[..., 0],
        }
        result = {k: v.numpy().astype(np.float32) for k, v in out.items()}
        tokens = self.tokens
        empty = (tokens == 0).numpy()
        for key in ("weights", "softmax_mean", "freq", "topk_mean"):
            result[key][np.repeat(empty, self.E, axis=1)] = np.nan
        result["entropy"][empty] = np.nan
        # every layer routes the same rows; the first layer's count is the sequence's
        result["tokens"] = tokens[:, 0].numpy().astype(np.int32) if self.L else np.zeros(self.S, np.int32)
        cons = np.full((self.S, self.L), np.nan, dtype=np.float64)
        for layer in range(self.L):
            for s, sets in enumerate(self.topk_sets(layer)):
                cons[s, layer] = token_consistency(sets.numpy(), seed, pairs)
        result["consistency"] = cons.astype(np.float32)
        return result


def sample_pairs(num_tokens: int, seed: int, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` ordered token pairs (i != j) seeded by (seed, num_tokens)."""
    rng = np.random.default_rng([int(seed), int(num_tokens)])
    i = rng.integers(0, num_tokens, size=pairs)
    j = rng.integers(0, num_tokens - 1, size=pairs)
    j = j + (j >= i)
    return i, j


def token_consistency(topk: np.ndarray, seed: int, pairs: int) -> float:
    """Mean Jaccard similarity of the top-k sets of sampled token pairs; NaN below 2 tokens."""
    n, k = topk.shape
    if n < 2 or pairs <= 0:
        return float("nan")
    i, j = sample_pairs(n, seed, pairs)
    a, b = topk[i], topk[j]
    inter = (a[:, :, None] == b[:, None, :]).any(-1).sum(-1)
    return float(np.mean(inter / (2 * k - inter)))
