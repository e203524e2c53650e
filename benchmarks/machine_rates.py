"""What the machine itself can do, measured in the same run as the benchmarks.

A ratio against the loop reference depends on the host: the reference is memory-bound,
cpcframe's step is GEMM-bound, so a host with fast memory and slow FMA units (the 2-core
AMD EPYC here: 3.8x) shows a lower ratio than one with AMX (the Xeon: 7.5-8.7x) with the
same code. What cpcframe controls is how much of the machine's own matmul rate its step
uses; :func:`matmul_gflops` measures that rate, so a missed ratio can be told apart from a
regression (:mod:`verdicts`).
"""

from __future__ import annotations

import time

import torch


def matmul_gflops(device: torch.device, threads: int, size: int = 2048, repeats: int = 10) -> float:
    """Best float32 GEMM rate (GFLOP/s, ``2·n³`` per product) of ``size``-square products
    with ``threads`` CPU threads (best of ``repeats``: the machine's rate, not its load).

    A yardstick, not a ceiling: oneDNN's convolutions can run a little faster than one
    square GEMM (the 2-core EPYC: a training step at 104 % of it under load)."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device)
    b = torch.randn(size, size, generator=g).to(device)
    a @ b  # warm-up (oneDNN / MKL initialisation)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def _sampled_products(self, mat1, mat2, *args, **kwargs) -> int:
    """``sparse_sampled_addmm``: one ``D``-long dot product per stored pair."""
    return 2 * self._nnz() * mat1.shape[1]


def _weighted_bags(weight, indices, *args, **kwargs) -> int:
    """``_embedding_bag``: one multiply-add per feature of each bag entry (the gathered
    scores' two gradients; a plain embedding lookup would count as work too, but a
    training step here has none)."""
    return 2 * indices.numel() * weight.shape[1]


def _addmm(self, mat1, mat2, *args, **kwargs) -> int:
    """``addmm``: ``2·M·K·N``, or ``2·nnz·N`` for a sparse ``mat1`` (the blocked queries'
    gradient, :mod:`cpcframe.key_blocks`; the flop counter would count it as dense)."""
    if mat1.layout != torch.strided:
        return 2 * mat1._nnz() * mat2.shape[1]
    return 2 * mat1.shape[0] * mat1.shape[1] * mat2.shape[1]


# Raw tensors, not shapes: the count depends on a sparse pattern's stored entries.
for _formula in (_sampled_products, _weighted_bags, _addmm):
    _formula._get_raw = True


def counted_flops(step) -> float:
    """Useful FLOPs of one call of ``step()``: matrix products and convolutions forward and
    backward, as PyTorch's flop counter sees them, plus the gathered form's sampled scores
    (:mod:`cpcframe.scoring`: ``2·D`` per used pair, forward and for each gradient), which
    it does not see or, for a sparse ``addmm``, counts as dense. Where the dense score
    matrix runs instead, it is counted in full, unused scores included."""
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    mapping = {aten.sparse_sampled_addmm: _sampled_products, aten._embedding_bag: _weighted_bags,
               aten.addmm: _addmm, aten.addmm_: _addmm}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        step()
    return float(counter.get_total_flops())
