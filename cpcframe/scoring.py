"""Score only what is used: the dense product, or a gathered one chosen by a cost model.

With ``M`` sampled (or given) negatives, a query uses ``U = P + M`` of the ``C = N·L``
candidates. Two ways to get those ``U`` scores per query:

* **dense**: the ``(B, Q, C)`` product of every query with every candidate, one GEMM
  (:func:`cpcframe.infonce.score_matrix`), then a gather of the ``U`` used columns:
  ``B·Q·C·D`` multiply-adds forward and twice that backward, at the machine's matmul
  rate, plus a few passes over the ``(B, Q, C)`` scores (written, gathered; backward: a
  zero-filled gradient, a scatter, read by two GEMMs).
* **gathered**: only the ``U`` dot products of each query (:func:`gathered_scores`):
  ``B·Q·U·D`` multiply-adds, as a sampled dense-dense product forward and weighted row
  sums (``embedding_bag``) backward. No ``(B, Q, C)`` or ``(B, Q, U, D)`` tensor is
  formed, but each key element read serves one query, so these run at memory speed,
  not at the GEMM's rate, and a few sorts of the ``B·Q·U`` indices come on top. On the
  CPU, a key table larger than a core's L2 cache is read block by block of keys
  (:mod:`cpcframe.key_blocks`), so the cost per query stays nearly flat as the batch, or
  the gathered global batch, grows.

Cost per query, in units of one gathered element (read, multiply, add):

* dense: ``C · (3·D·γ + s)``, with ``γ`` the cost of a GEMM multiply-add relative to a
  gathered element and ``s ≈ 6`` passes over each score;
* gathered: ``g·U·D`` with ``g ≈ 0.8``, measured (forward, and the two gradients
  backward, each about one pass over the used keys' elements, mostly from cache: the
  keys' gradient is summed block by block of queries, see :func:`_keys_gradient`).

So the gathered form wins when ``C / U > g·D / (3·D·γ + s)``. ``γ`` depends on the device:
a CPU core's GEMM does 16-32 float32 multiply-adds per cycle (FMA units) where gathered
rows stream about two elements per cycle (``γ ≈ 1/16``: for ``D = 512``, gathered when
``C ≳ 4·U``). Timings of the CPC audio head (``D = 512``, ``U = 129``, ``L = 128``) on the
2-core EPYC, 1 and 2 threads: dense and gathered equal at ``C/U = 4``, dense 1.7x behind at
``C/U = 8`` (a key batch of 8), 2.5-2.9x behind at 16. A GPU's tensor cores do hundreds of
multiply-adds per element of memory bandwidth (``γ ≈ 1/200``, an estimate not measured
here, with ``g ≈ 2.5``: gathered only when ``C ≳ 65·U``). With negatives gathered across 8 processes of batch
8 (``C = 8192 = 64·U``) the head grows with the local batch only, not with the local times
the global batch. Problems with fewer than :data:`MIN_DENSE_SCORES` dense scores keep the dense form: the gathered one's fixed costs
(sorts, more kernels) outweigh what it saves there.

With negatives shared by groups of ``G`` queries (``[loss] share_negatives``), the gathered
form is :func:`cpcframe.shared_scores.shared_negative_scores`: each group's ``M`` keys are
gathered once and scored by a small GEMM, ``U·D·(3·γ·SMALL_GEMM_PENALTY + SHARED_PASSES / G)``
per query in the same units; the dense form gives each query its copy of the group's list.

Both forms compute the same scores (float32 for half precision and under autocast,
float64 for float64), so losses and gradients agree to rounding;
``tests/core/test_infonce.py`` checks both against the reference, ``tests/core/test_scoring.py``
against each other.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from cpcframe import key_blocks

Scoring = Literal["auto", "dense", "gathered"]

#: ``γ``: cost of one GEMM multiply-add relative to one gathered element, by device type
#: (see the module docstring); other device types keep the dense form under ``auto``.
GEMM_COST = {"cpu": 1 / 16, "cuda": 1 / 200}
#: ``s``: passes over each dense score (write, gather; zero-fill, scatter, two GEMM reads).
SCORE_PASSES = 6.0
#: ``g``: passes over each used key element in the gathered form, forward and backward
#: (CPU: measured; CUDA: the earlier, unmeasured estimate, with its sort of each row's pairs).
GATHER_PASSES = {"cpu": 0.8, "cuda": 2.5}
#: Below this many dense scores (``B·Q·C``, 1 MiB of float32) the dense form is kept.
MIN_DENSE_SCORES = 2**18
#: Negatives shared by a group of ``G`` queries (:mod:`cpcframe.shared_scores`) are scored
#: by ``(G, D) x (D, M)`` products, at about half a large GEMM's rate (Xeon, 2 threads,
#: ``G = 12, D = 512, M = 128``: 130-190 against 260-350 GFLOP/s) ...
SMALL_GEMM_PENALTY = 2.0
#: ... and each group's gathered keys are copied twice (forward, backward) and their
#: gradient added back once: passes at memory speed, shared by the group's ``G`` queries.
SHARED_PASSES = 3.0


def prefers_gathered(*, queries: int, candidates: int, used: int, dim: int, device: torch.device,
                     group: int = 1) -> bool:
    """Whether scoring the used candidates only is cheaper than the dense product for
    ``queries`` queries (``B·Q``) that each use ``used`` (``U = P + M``) of ``candidates``
    (``C``) candidates of ``dim`` (``D``) features on ``device`` (the module docstring's
    model); ``group > 1``: runs of ``group`` queries share their negatives and the
    gathered form is :func:`cpcframe.shared_scores.shared_negative_scores`, costing
    ``U·D·(3·γ·SMALL_GEMM_PENALTY + SHARED_PASSES / G)`` per query."""
    gemm = GEMM_COST.get(device.type)
    if gemm is None or used >= candidates or queries * candidates < MIN_DENSE_SCORES:
        return False
    dense = candidates * (3 * dim * gemm + SCORE_PASSES)
    if group > 1:
        gathered = used * dim * (3 * gemm * SMALL_GEMM_PENALTY + SHARED_PASSES / group)
    else:
        gathered = GATHER_PASSES[device.type] * used * dim
    return gathered < dense


def choose(scoring: Scoring, *, queries: int, candidates: int, used: int, dim: int,
           device: torch.device, group: int = 1) -> Literal["dense", "gathered"]:
    """``scoring`` itself when forced, else what :func:`prefers_gathered` says."""
    if scoring != "auto":
        return scoring
    gathered = prefers_gathered(queries=queries, candidates=candidates, used=used, dim=dim, device=device,
                                group=group)
    return "gathered" if gathered else "dense"


def _unique_per_row(index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The distinct candidates of each row of ``index`` ``(R, U)``, as CSR parts.

    Returns ``(crow, columns, position)``: ``crow`` ``(R + 1,)`` and ``columns`` ``(nnz,)``
    (sorted within each row) index the distinct ``(row, candidate)`` pairs; ``position``
    ``(R, U)`` is where each entry of ``index`` sits among them. A query may draw the same
    negative twice; sparse kernels want each pair once.
    """
    R, U = index.shape
    columns, order = index.sort(dim=1)  # (R, U)
    first = torch.ones_like(columns, dtype=torch.bool)
    first[:, 1:] = columns[:, 1:] != columns[:, :-1]
    rank = first.reshape(-1).cumsum(0).view(R, U) - 1  # (R, U): index of each sorted entry's pair
    position = torch.empty_like(rank).scatter_(1, order, rank)
    crow = torch.zeros(R + 1, dtype=torch.long, device=index.device)
    crow[1:] = first.sum(1).cumsum(0)
    return crow, columns[first], position


#: Queries per block of the keys' gradient: the block's rows stay in cache while their
#: gradient is summed into the keys: half the L2 cache (on the 2-core Xeon, with 2 MiB,
#: 1 MiB blocks cost 9.2 / 14.5 ms per window at batch 8 / 64 against 16.7 / 19.6 with the
#: 4 MiB chosen earlier on the EPYC, 1 thread).
BLOCK_BYTES = key_blocks.CACHE_BYTES // 2
#: Each block writes a ``(C, D)`` partial sum, so with many candidates (a batch of 64, or
#: keys gathered from 8 processes) a block grows, up to 4x :data:`BLOCK_BYTES`, until it
#: holds this many entries per candidate (Xeon, 2 threads: 503 against 531 ms at batch 64,
#: 61 against 65 ms for one rank of 8 with the keys of 64 items).
MIN_ENTRIES_PER_KEY = 16


def _keys_gradient(queries: Tensor, num_keys: int, index: Tensor, grad: Tensor) -> Tensor:
    """``grad_k[c] = Σ_{(r, u): index[r, u] = c} grad[r, u] · queries[r]``, ``(C, D)``.

    Block by block of queries: a candidate's rows are spread over all queries, and summing
    them from the whole ``(R, D)`` queries at once reads each row from memory again (4.5x
    slower at ``R = 49k, D = 512`` on the 2-core EPYC). Each block's entries, sorted by
    candidate, are a ``(C, block)`` CSR matrix of the gradients, multiplied into the keys'
    gradient in place on the CPU (``addmm_``); elsewhere one bag of query rows per
    candidate (``embedding_bag``) gives the block's ``(C, D)`` part, added to the sum. The
    in-place product writes no part: on the 2-core Xeon, per window, 10.9 against 7.9 ms
    at batch 64 and 10.2 against 7.5 for a rank with the keys of 64 items (7.2 against 6.8
    at batch 8), equal to the last bit. Indices are int32 when they fit, and the sort's
    keys int16 (cheaper sorts).
    """
    R, U = index.shape
    D = queries.shape[1]
    small = torch.int32 if max(num_keys, R * U) < 2**31 else torch.long
    base = max(1, BLOCK_BYTES // (D * queries.element_size()))
    block = max(base, min(4 * base, -(-MIN_ENTRIES_PER_KEY * num_keys // U)))
    in_place = queries.device.type == "cpu"
    # The sort's keys: int16 where the candidates fit (on the CPU, a block's sort costs 0.7
    # against 1.2 ms in int32 for 131k entries; 0.7-1 ms less per window on the Xeon).
    key_dtype = torch.int16 if in_place and num_keys <= 2**15 else small
    out = queries.new_zeros(num_keys, D) if in_place or R == 0 else None
    for start in range(0, R, block):
        stop = min(R, start + block)
        flat = index[start:stop].reshape(-1).to(key_dtype)
        order = torch.argsort(flat, stable=True)  # entries grouped by candidate, queries in order
        counts = torch.bincount(flat, minlength=num_keys)
        rows = torch.div(order, U, rounding_mode="floor").to(small)  # each entry's query in the block
        weights = grad[start:stop].reshape(-1)[order]
        if in_place:
            crow = torch.zeros(num_keys + 1, dtype=small, device=index.device)
            crow[1:] = counts.cumsum(0)
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                entries = torch.sparse_csr_tensor(crow, rows, weights, (num_keys, stop - start),
                                                  check_invariants=False)  # valid by construction
            # (c: candidate, r: query of the block) x (r, d: feature), summed into (c, d)
            out.addmm_(entries, queries[start:stop])
            continue
        offsets = (counts.cumsum(0) - counts).to(small)
        part = F.embedding_bag(rows, queries[start:stop], offsets, per_sample_weights=weights,
                               mode="sum")  # (C, D); empty bags give zeros
        out = part if out is None else out.add_(part)
    return out


class _GatheredScores(torch.autograd.Function):
    """``(R, D) queries, (C, D) keys, (R, U) index -> (R, U)``: ``queries[r]·keys[index[r, u]]``.

    No ``(R, U, D)`` tensor of gathered keys is formed: the forward pass is a sampled
    dense-dense product (SDDMM, ``torch.sparse.sampled_addmm``) at the ``(row, candidate)``
    pairs (on the CPU the index itself, elsewhere its distinct sorted pairs); the backward
    pass sums weighted rows: the queries' gradient with ``embedding_bag`` (bags of each
    row's candidates) or, key block by key block, CSR products; the keys' gradient by
    candidate, block by block of queries (:func:`_keys_gradient`).
    """

    @staticmethod
    def forward(ctx, queries: Tensor, keys: Tensor, index: Tensor) -> Tensor:  # type: ignore[override]
        R, U = index.shape
        C = keys.shape[0]
        blocks = None
        if queries.device.type == "cpu":
            per_block = key_blocks.keys_per_block(keys.shape[1], keys.element_size())
            if C > per_block:  # a key table larger than a core's cache: tiled by key blocks
                blocks = key_blocks.plan(index, C, per_block)
        ctx.blocks = blocks
        ctx.save_for_backward(queries, keys, index)
        if blocks is not None:
            return key_blocks.blocked_scores(queries, keys, blocks).view(R, U)
        if queries.device.type == "cpu":
            # The CPU kernel computes one dot product per stored entry, in storage order, so
            # the pattern can be the index itself (unsorted, a negative drawn twice stored
            # twice): no sort, and the values come out in index order.
            crow = torch.arange(0, R * U + 1, U, device=index.device)
            columns, position = index.reshape(-1), None
        else:  # other backends (cuSPARSE) want each row's columns sorted and distinct
            crow, columns, position = _unique_per_row(index)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": SDDMM is all we use
            warnings.simplefilter("ignore", UserWarning)
            pattern = torch.sparse_csr_tensor(crow, columns, queries.new_zeros(columns.shape[0]), (R, C),
                                              check_invariants=False)  # valid by construction
        # (r: query, d: feature) x (d, c: candidate), at the pattern's (r, c) pairs only
        pairs = torch.sparse.sampled_addmm(pattern, queries, keys.t(), beta=0.0).values()
        return pairs.view(R, U) if position is None else pairs[position]  # (R, U)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        queries, keys, index = ctx.saved_tensors
        R, U = index.shape
        grad = grad.to(queries.dtype).contiguous()
        grad_queries = grad_keys = None
        if ctx.needs_input_grad[0]:
            # grad_q[r] = Σ_u grad[r, u] · keys[index[r, u]]: one bag of U keys per query.
            if ctx.blocks is not None:
                grad_queries = key_blocks.blocked_queries_gradient(keys, grad, ctx.blocks)
            else:
                grad_queries = F.embedding_bag(index, keys, per_sample_weights=grad, mode="sum")
        if ctx.needs_input_grad[1]:
            grad_keys = _keys_gradient(queries, keys.shape[0], index, grad)
        return grad_queries, grad_keys, None


def gathered_scores(queries: Tensor, keys: Tensor, index: Tensor, temperature: float) -> Tensor:
    """``(B, Q, U)`` scores ``queries[b, q]·keys[index[b, q, u]] / temperature`` of the
    used candidates only: float64 for float64 inputs, else float32 (half precision and
    autocast are scored in float32, as the dense path keeps its scores).

    Args:
        queries: ``(B, Q, D)``.
        keys: ``(C, D)`` candidates (``item·L + location``).
        index: ``(B, Q, U)`` long candidate indices.
        temperature: scores are divided by it.
    """
    B, Q, D = queries.shape
    U = index.shape[2]
    dtype = torch.promote_types(torch.promote_types(queries.dtype, keys.dtype), torch.float32)
    with torch.autocast(queries.device.type, enabled=False):
        scores = _GatheredScores.apply(queries.reshape(B * Q, D).to(dtype), keys.to(dtype),
                                       index.reshape(B * Q, U))
    scores = scores.view(B, Q, U)
    if temperature != 1.0:
        scores = scores / temperature
    return scores
