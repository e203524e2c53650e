"""Scores of negatives shared by a group of queries, as small batched GEMMs.

CPC_audio draws the negatives of a window position once and scores all ``K`` prediction
steps of that position against them (``CPCUnsupersivedCriterion.sampleClean``). With the
engine's ``share_negatives`` option the ``G`` queries of a group (CPC: the ``K`` steps of
one context ``c_t``, :attr:`cpcframe.Contrast.query_group`) share their ``M`` sampled
negatives the same way, and each gathered key row serves ``G`` dot products instead of
one: per group, ``(G, D) x (D, M)`` is a small GEMM, where the per-query gathered form
(:mod:`cpcframe.scoring`) reads one key row per score at memory speed.

Shapes: ``R`` groups (``B·Q/G``), ``G`` queries each, ``M`` negatives per group, ``C``
candidate keys of ``D`` features.

The gathered keys are never kept: the groups are processed a chunk at a time, each
chunk's ``(chunk, M, D)`` keys gathered into a buffer read from cache
(:data:`CHUNK_BYTES`), and gathered again in the backward pass (keeping all ``R·M·D`` of
them would take 256 MiB at the CPC audio size, batch 8). The keys' gradient is the
chunk's ``(chunk·M, D)`` row gradients added into the keys at their indices
(``index_add_``). Per step the kernel moves each gathered element three times (two
gathers, one scatter), at memory speed; its GEMMs do ``3·R·G·M·D`` multiply-adds. On a
GPU, ``index_add_`` adds with atomics, so the keys' gradient is summed in no fixed order
(equal to rounding from run to run), as the dense form's scatter is there.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Bytes of gathered keys per chunk of groups. Each chunk is gathered, read by its GEMMs
#: from cache, and dropped; a few dozen chunks per step keep the Python loop's cost
#: small. Measured on the 2-core Xeon (2 MiB L2 per core), the whole CPC audio head per
#: window at batch 8 / 64: 1 MiB 25.7 / 30.0 ms, 4 MiB 22.2 / 25.1, 8 MiB 22.8 / 23.4,
#: 16 MiB 23.0 / 25.0, 32 MiB 25.0 / 27.2 (medians of 5, interleaved).
CHUNK_BYTES = 8 << 20


def groups_per_chunk(negatives: int, dim: int, element_size: int) -> int:
    """Groups whose ``(negatives, dim)`` gathered keys fill :data:`CHUNK_BYTES` (at least 1)."""
    return max(1, CHUNK_BYTES // (negatives * dim * element_size))


class _SharedNegativeScores(torch.autograd.Function):
    """``(R, G, D) queries, (C, D) keys, (R, M) index -> (R, G, M)``:
    ``queries[r, g]·keys[index[r, m]]``."""

    @staticmethod
    def forward(ctx, queries: Tensor, keys: Tensor, index: Tensor) -> Tensor:  # type: ignore[override]
        R, G, D = queries.shape
        M = index.shape[1]
        chunk = groups_per_chunk(M, D, keys.element_size())
        out = queries.new_empty(R, G, M)
        for start in range(0, R, chunk):
            stop = min(R, start + chunk)
            gathered = keys.index_select(0, index[start:stop].reshape(-1)).view(stop - start, M, D)
            # (r: group, g: query, d: feature) x (r, d, m: negative) -> (r, g, m)
            torch.bmm(queries[start:stop], gathered.transpose(1, 2), out=out[start:stop])
        ctx.chunk = chunk
        ctx.save_for_backward(queries, keys, index)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        queries, keys, index = ctx.saved_tensors
        R, G, D = queries.shape
        M = index.shape[1]
        grad = grad.to(queries.dtype).contiguous()
        need_queries, need_keys = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_queries = queries.new_empty(R, G, D) if need_queries else None
        grad_keys = keys.new_zeros(keys.shape) if need_keys else None
        for start in range(0, R, ctx.chunk):
            stop = min(R, start + ctx.chunk)
            flat = index[start:stop].reshape(-1)
            if need_queries:
                gathered = keys.index_select(0, flat).view(stop - start, M, D)
                # (r, g, m) x (r, m, d) -> (r, g, d)
                torch.bmm(grad[start:stop], gathered, out=grad_queries[start:stop])
            if need_keys:
                # (r, m, g) x (r, g, d) -> (r, m, d): each gathered row's gradient
                rows = torch.bmm(grad[start:stop].transpose(1, 2), queries[start:stop])
                grad_keys.index_add_(0, flat, rows.view(-1, D))
        return grad_queries, grad_keys, None


def shared_negative_scores(queries: Tensor, keys: Tensor, index: Tensor, temperature: float) -> Tensor:
    """``(B, Qg, G, M)`` scores ``queries[b, j, g]·keys[index[b, j, m]] / temperature``:
    the ``G`` queries of group ``j`` against the group's ``M`` negatives. Float64 for
    float64 inputs, else float32 (half precision and autocast are scored in float32, as
    the engine's other forms keep their scores).

    Args:
        queries: ``(B, Qg, G, D)``.
        keys: ``(C, D)`` candidates (``item·L + location``).
        index: ``(B, Qg, M)`` long candidate indices.
        temperature: scores are divided by it.
    """
    B, Qg, G, D = queries.shape
    M = index.shape[2]
    if index.shape[:2] != (B, Qg):
        raise ValueError(f"index must be (B={B}, Qg={Qg}, M), got {tuple(index.shape)}")
    dtype = torch.promote_types(torch.promote_types(queries.dtype, keys.dtype), torch.float32)
    with torch.autocast(queries.device.type, enabled=False):
        scores = _SharedNegativeScores.apply(queries.reshape(B * Qg, G, D).to(dtype),
                                             keys.to(dtype).contiguous(), index.reshape(B * Qg, M))
    scores = scores.view(B, Qg, G, M)
    if temperature != 1.0:
        scores = scores / temperature
    return scores
