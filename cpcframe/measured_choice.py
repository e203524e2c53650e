"""Choose between equivalent implementations by timing them on the machine at hand.

Whether a hand-written GEMM form beats the library's native kernel depends on the CPU
(its cache sizes, its vector units, how oneDNN was tuned for it), not on the device type:
the audio encoder's shifted-GEMM convolutions ran 1.73x faster than ``F.conv1d`` on one
2-core Xeon and 1.01-1.18x on a 2-core EPYC (issue 13). So ``auto`` backends ask
:func:`fastest` once per problem key: every candidate runs ``repeats`` times after one
warm-up, the one with the smallest median time wins, and the answer is cached for the
process under ``(key, device, threads)``.

A candidate whose median is within ``tie`` (relative) of the best still loses to one
listed earlier: list the preferred implementation (the library's native one) first, so
that noise on a loaded machine never swaps two equal implementations back and forth.
The timer is injectable, so the choice logic is tested deterministically
(``tests/core/test_measured_choice.py``).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Hashable, Mapping

import torch

Timer = Callable[[], float]

_CACHE: dict[Hashable, str] = {}
_LOCK = threading.Lock()


def cache_key(key: Hashable, device: torch.device) -> tuple:
    """``(key, device, threads)``: what a measured choice depends on besides the problem."""
    return (key, str(device), torch.get_num_threads())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pick(medians: Mapping[str, float], tie: float) -> str:
    """The first name (in order) whose median is within ``tie`` of the smallest one."""
    best = min(medians.values())
    return next(name for name, t in medians.items() if t <= best * (1 + tie))


def measure(candidates: Mapping[str, Callable[[], object]], *, device: torch.device,
            repeats: int = 3, timer: Timer = time.perf_counter) -> dict[str, float]:
    """Median seconds of each candidate: one untimed warm-up each, then ``repeats``
    interleaved rounds (every candidate once per round, so a burst of load from other
    jobs falls on all of them)."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            _synchronize(device)
            start = timer()
            run()
            _synchronize(device)
            times[name].append(timer() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def fastest(key: Hashable, candidates: Mapping[str, Callable[[], object]], *, device: torch.device,
            repeats: int = 3, tie: float = 0.05, timer: Timer = time.perf_counter) -> str:
    """The name of the fastest candidate for ``key`` on ``device`` with this process's
    thread count, measured on the first call and cached (see the module docstring).

    Args:
        key: what the timing depends on (shapes, dtypes, grad mode), hashable.
        candidates: name -> a call running one representative workload, preferred first.
        device: where they run (CUDA is synchronised around each call).
        repeats: timed calls of each candidate.
        tie: relative margin within which the earlier candidate is kept.
        timer: seconds, monotonic (tests inject one).
    """
    full = cache_key(key, device)
    with _LOCK:
        if full in _CACHE:
            return _CACHE[full]
    if len(candidates) == 1:
        choice = next(iter(candidates))
    else:
        choice = pick(measure(candidates, device=device, repeats=repeats, timer=timer), tie)
    with _LOCK:
        return _CACHE.setdefault(full, choice)


def cached_choices() -> dict[Hashable, str]:
    """A copy of every choice made so far in this process (benchmarks print them)."""
    with _LOCK:
        return dict(_CACHE)


def clear_cache() -> None:
    """Forget every choice (tests; a process whose thread count changed re-measures anyway)."""
    with _LOCK:
        _CACHE.clear()
