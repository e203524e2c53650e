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


def counted_flops(step) -> float:
    """FLOPs of one call of ``step()`` that PyTorch's flop counter sees (matrix products and
    convolutions, forward and backward): the useful arithmetic of a training step, less the
    sampled scores of the gathered form (a few percent), so a lower bound."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())
