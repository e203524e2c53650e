"""``make bench``'s useful-FLOP count (the step efficiency's numerator) sees the gathered
scores, and counts the blocked form's sparse products by their stored entries."""

from __future__ import annotations

import sys

import pytest
import torch

from testpaths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from machine_rates import counted_flops  # noqa: E402


def gathered_step(R, U, C, D, seed=0):
    from cpcframe.scoring import gathered_scores

    g = torch.Generator().manual_seed(seed)
    queries = torch.randn(1, R, D, generator=g, requires_grad=True)
    keys = torch.randn(C, D, generator=g, requires_grad=True)
    index = torch.randint(0, C, (1, R, U), generator=g)

    def step():
        gathered_scores(queries, keys, index, 1.0).sum().backward()

    return step


@pytest.mark.parametrize("keys_per_block", [None, 16])
def test_gathered_scores_count_2D_per_used_pair_forward_and_for_each_gradient(monkeypatch, keys_per_block):
    from cpcframe import key_blocks

    R, U, C, D = 40, 9, 64, 8
    if keys_per_block is not None:  # 64 keys in 4 blocks: sparse addmm for the queries' gradient
        monkeypatch.setattr(key_blocks, "KEY_BLOCK_BYTES", keys_per_block * D * 4)
        plans = []
        real_plan = key_blocks.plan
        monkeypatch.setattr(key_blocks, "plan", lambda *a: plans.append(a[2]) or real_plan(*a))
    assert counted_flops(gathered_step(R, U, C, D)) == 3 * 2 * R * U * D
    if keys_per_block is not None:
        assert plans == [keys_per_block]


def test_dense_products_keep_the_counters_formula():
    a = torch.randn(6, 5, requires_grad=True)
    b = torch.randn(5, 4, requires_grad=True)
    bias = torch.randn(4, requires_grad=True)
    assert counted_flops(lambda: torch.addmm(bias, a, b).sum().backward()) == 3 * 2 * 6 * 5 * 4
