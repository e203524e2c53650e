"""How many CPU threads PyTorch's operators get: one rule for ``run``, ``probe`` and ``embed``.

On a CPU shared with other jobs, more threads than free cores oversubscribe it. Measured
on a 2-core AMD EPYC, one forward+backward step of the paper's audio model (batch 8 x
0.4 s): idle, 2 threads 0.45-0.52 s wall and 0.90-1.02 s CPU against 1 thread's 0.76-0.81 s
(1.7x faster for 1.2x the CPU); with a test suite running beside it (load 1-3), 2 threads
cost 1.6-3.9x the CPU of 1 per step and were up to 3.9x slower (6.05 s against 1.56 s);
issue 17 measured about 6x the CPU on a machine shared by several jobs.
So ``train.threads = 0`` (the default) takes the cores that are free: the cores this
process may use minus the 1-minute load average, at least 1 — all of them on an idle
machine. ``OMP_NUM_THREADS`` set in the environment is respected as given; a positive
``train.threads`` (or ``--threads``) is used as is.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_cores() -> int:
    """Cores not busy with other work: cores minus the 1-minute load average, at least 1."""
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def choose_threads(setting: int) -> int | None:
    """Threads for ``setting`` (``train.threads``): itself when > 0; ``None`` (leave
    PyTorch's) when ``OMP_NUM_THREADS`` is set; else :func:`free_cores`."""
    if setting > 0:
        return setting
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return free_cores()


def apply_threads(setting: int) -> int:
    """Set PyTorch's intra-op threads by :func:`choose_threads`; returns the count in use."""
    import torch

    chosen = choose_threads(setting)
    if chosen is not None and chosen != torch.get_num_threads():
        torch.set_num_threads(chosen)
    return torch.get_num_threads()
