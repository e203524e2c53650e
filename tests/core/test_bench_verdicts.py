"""``make bench`` tells a slower machine from a regression (issue 13 part 3), with injected
figures: no timing here."""

from __future__ import annotations

import sys

import pytest

from testpaths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from verdicts import REGRESSION_FLOOR, exit_status, judge  # noqa: E402


def test_a_met_target_is_met_whatever_the_efficiency():
    assert judge("train_step_speedup", 8.7, 6.0, efficiency=0.1).status == "met"
    assert judge("engine_memory_ratio", 1.0, 1.0, efficiency=0.9, strict=True, machine_bound=False).status == "REGRESSION"


@pytest.mark.parametrize("efficiency, status", [
    (0.57, "missed (machine)"),        # the EPYC: 3.8x against the loop, the step at 57 % of its GEMM rate
    (REGRESSION_FLOOR, "missed (machine)"),
    (0.25, "REGRESSION"),              # the step itself got slower on the machine it runs on
    (None, "REGRESSION"),              # no yardstick: a miss cannot be excused
])
def test_a_missed_ratio_is_the_machine_or_a_regression_by_the_steps_efficiency(efficiency, status):
    verdict = judge("train_step_speedup", 3.8, 6.0, efficiency=efficiency)
    assert verdict.status == status and verdict.value == 3.8 and verdict.target == 6.0


def test_the_loaders_target_has_no_machine_excuse_and_only_regressions_fail_the_run():
    loader = judge("loader_ratio", 4.0, 10.0, efficiency=0.9, machine_bound=False)
    assert loader.status == "REGRESSION"
    slow_host = [judge("train_step_speedup", 3.8, 6.0, efficiency=0.57),
                 judge("step_efficiency", 0.57, 0.85, efficiency=0.57), judge("engine_speedup", 30.0, 10.0, efficiency=0.57)]
    assert exit_status(slow_host) == 0
    assert exit_status(slow_host + [loader]) == 1


def test_a_cost_ratio_must_stay_at_most_its_target():
    assert judge("head_batch_ratio", 1.19, 1.2, efficiency=0.1, at_most=True).status == "met"
    assert judge("head_batch_ratio", 1.2, 1.2, efficiency=0.1, at_most=True).status == "met"
    assert judge("head_batch_ratio", 1.44, 1.2, efficiency=0.9, at_most=True).status == "missed (machine)"
    assert judge("head_batch_ratio", 1.44, 1.2, efficiency=0.2, at_most=True).status == "REGRESSION"
