"""Keep freed memory in the process for the next step, instead of handing it back (glibc).

glibc's ``malloc`` serves an allocation above its mmap threshold (at most 32 MiB) with a
fresh ``mmap`` and unmaps it on ``free``. A training step allocates the same large
tensors every step (the loss head's ``(B·Q, U)`` index and scores are 50-100 MiB at batch
64), so each step pays a page fault for every 4 KiB page of them again: in the CPC loss
head at batch 64 on a 2-core Intel Xeon, 66.1 ms per window with glibc's defaults against
56.4 ms without these faults (1 thread), when a batch of 8, whose tensors stay under the
threshold, is unaffected. PyTorch's CPU performance guide recommends the same cure with
another allocator (jemalloc or tcmalloc through ``LD_PRELOAD``); this one needs nothing
installed: ``mallopt(M_MMAP_MAX, 0)`` serves large blocks from the heap, where freed ones
are reused, and a high ``M_TRIM_THRESHOLD`` keeps the heap's top instead of trimming it.

The cost: memory freed is kept for reuse, not returned, so the process's resident size
stays at its peak (a training run's peak is reached in its first steps and held).
``train.keep_freed_memory = false`` keeps glibc's behaviour; malloc tuning in the
environment (``MALLOC_MMAP_MAX_``, ``MALLOC_TRIM_THRESHOLD_``, ...) or another allocator
preloaded is left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's ``mallopt`` parameters (``<malloc.h>``).
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
#: Largest value ``mallopt`` takes (an ``int``): keep up to 2 GiB free at the heap's top.
TRIM_THRESHOLD = 2**31 - 1
_TUNING_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
_applied = False


def keep_freed_memory() -> bool:
    """Tune glibc's malloc to reuse freed large blocks (the module docstring); ``True``
    when it is in effect. Does nothing off glibc, with malloc tuned in the environment,
    or with another allocator preloaded. Idempotent."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _TUNING_VARIABLES):
        return False
    if any(name in os.environ.get("LD_PRELOAD", "") for name in _OTHER_ALLOCATORS):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # musl has mallopt too, as a no-op
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
