"""Measurement helpers shared by the benchmark scripts (run from ``benchmarks/``, which
Python puts first on ``sys.path``, so ``from measure import ...`` works in each)."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

#: The engine's two samplings of negatives, as the CPC benchmarks name them:
#: ``[loss] share_negatives = false`` and ``true``.
SAMPLINGS = {"per_query": "negatives per query", "shared": "negatives shared by the K steps"}


def like_a_run() -> str:
    """Set this process up as ``cpcframe run`` sets its own: glibc's malloc keeps freed
    memory (``train.keep_freed_memory``, on by default; :mod:`cpcframe.allocator`), so a
    step does not page-fault its large tensors in again. Returns what to print."""
    from cpcframe.allocator import keep_freed_memory

    return "malloc keeps freed memory, as cpcframe run" if keep_freed_memory() else "glibc's default malloc"


@functools.cache
def _cpuinfo(field: str) -> str | None:
    """The first CPU's ``field`` in ``/proc/cpuinfo``, or ``None`` (no such file or field)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """``model name`` of ``/proc/cpuinfo`` (else what ``platform`` knows)."""
    return _cpuinfo("model name") or platform.processor() or "unknown CPU"


def cpu_flags() -> set[str]:
    """The ``flags`` of ``/proc/cpuinfo`` (empty where there is none)."""
    return set((_cpuinfo("flags") or "").split())


def vector_units() -> str:
    """The CPU's widest vector and matrix units, as PyTorch dispatches to them plus the
    bf16 ones: hosts sold under one name differ here (an "AMD EPYC" with AVX2 only or with
    AVX-512), and GEMM rates with them."""
    flags = cpu_flags()
    units = [torch.backends.cpu.get_cpu_capability().replace("DEFAULT", "no AVX")]
    units += [name for name in ("avx512_bf16", "amx_bf16") if name in flags]
    return " ".join(units)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware (on a CPU: AVX-512 BF16 or AMX); without
    it, bf16 is emulated, several times slower than fp32, and not worth timing."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def host(threads: int) -> str:
    """What every figure is printed with: CPU model, vector units, cores, threads."""
    return f"{cpu_model()} ({vector_units()}), {os.cpu_count()} cores, {threads} threads"


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times cover it; nothing to do on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step: Callable[[], object], device: torch.device, warmup: int,
               repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each of ``repeats`` calls of ``step()`` after ``warmup`` ones.

    CPU time is ``time.process_time`` (all threads of this process). On a CPU shared with
    other jobs the wall time includes waiting for a core and the CPU time does not, so it is
    closer to what the step costs on a machine of its own.
    """
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """The profiler's C++ side logs start/stop and device-probing lines on file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(step: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of live tensors allocated while ``step()`` runs, above what was live before.

    On a GPU, the allocator's own peak counter. On the CPU, every allocation and free is a
    profiler ``[memory]`` event with a signed byte count; their running sum in time order
    is the live memory, its maximum the peak.
    """
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        sync(device)
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak
