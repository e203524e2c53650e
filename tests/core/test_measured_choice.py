"""Measured choices between equivalent implementations (cpcframe.measured_choice), with injected
timings: the choice follows the timings, not the device type, and is cached per key,
device and thread count."""

from __future__ import annotations

import pytest
import torch

from cpcframe import measured_choice as mc

CPU = torch.device("cpu")


class FakeClock:
    """A timer whose clock advances only when a candidate runs, by that candidate's cost."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def candidate(self, *costs: float):
        """A candidate that costs ``costs[i]`` seconds on its i-th call (the last one repeats)."""
        calls = []

        def run():
            self.now += costs[min(len(calls), len(costs) - 1)]
            calls.append(1)

        run.calls = calls
        return run


@pytest.fixture(autouse=True)
def empty_cache():
    mc.clear_cache()
    yield
    mc.clear_cache()


def test_the_faster_candidate_wins_whichever_is_listed_first():
    clock = FakeClock()
    assert mc.fastest("a", {"native": clock.candidate(2.0), "gemm": clock.candidate(1.0)},
                           device=CPU, timer=clock) == "gemm"
    clock = FakeClock()
    assert mc.fastest("b", {"native": clock.candidate(1.0), "gemm": clock.candidate(2.0)},
                           device=CPU, timer=clock) == "native"


def test_a_tie_keeps_the_first_listed_candidate():
    clock = FakeClock()
    choice = mc.fastest("k", {"native": clock.candidate(1.00), "gemm": clock.candidate(0.97)},
                             device=CPU, timer=clock, tie=0.05)
    assert choice == "native"  # 3 % faster is within the 5 % tie margin
    assert mc.pick({"native": 1.0, "gemm": 0.90}, tie=0.05) == "gemm"


def test_warm_up_is_not_timed_and_the_median_resists_one_slow_call():
    clock = FakeClock()
    # native: a very slow first (warm-up) call, then fast; one slow outlier among the timed.
    native = clock.candidate(100.0, 1.0, 9.0, 1.0)
    gemm = clock.candidate(1.5)
    medians = mc.measure({"native": native, "gemm": gemm}, device=CPU, repeats=3, timer=clock)
    assert medians == {"native": 1.0, "gemm": 1.5}
    assert len(native.calls) == len(gemm.calls) == 4  # 1 warm-up + 3 timed each


def test_the_choice_is_measured_once_per_key_and_cached():
    clock = FakeClock()
    native, gemm = clock.candidate(2.0), clock.candidate(1.0)
    first = mc.fastest(("conv", 8, 20480), {"native": native, "gemm": gemm}, device=CPU, timer=clock)
    calls = len(native.calls)
    # Later timings would say otherwise, but the cached choice stands: nothing runs again.
    slow_gemm = clock.candidate(50.0)
    again = mc.fastest(("conv", 8, 20480), {"native": native, "gemm": slow_gemm}, device=CPU, timer=clock)
    assert first == again == "gemm"
    assert len(native.calls) == calls and not slow_gemm.calls
    assert mc.cached_choices() == {mc.cache_key(("conv", 8, 20480), CPU): "gemm"}


def test_another_shape_or_thread_count_is_measured_again(monkeypatch):
    clock = FakeClock()
    assert mc.fastest("shape1", {"native": clock.candidate(2.0), "gemm": clock.candidate(1.0)},
                           device=CPU, timer=clock) == "gemm"
    assert mc.fastest("shape2", {"native": clock.candidate(1.0), "gemm": clock.candidate(2.0)},
                           device=CPU, timer=clock) == "native"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 97)
    assert mc.fastest("shape1", {"native": clock.candidate(1.0), "gemm": clock.candidate(2.0)},
                           device=CPU, timer=clock) == "native"


def test_a_single_candidate_is_not_run():
    clock = FakeClock()
    only = clock.candidate(1.0)
    assert mc.fastest("one", {"native": only}, device=CPU, timer=clock) == "native"
    assert not only.calls
