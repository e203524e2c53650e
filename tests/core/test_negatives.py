"""The negative sampler and the negative policies.

``sample_negatives`` must never draw a query's positive (any of them, listed twice or
not even allowed), must draw uniformly over the allowed, non-positive candidates, and
must fail clearly when nothing is left; ``allowed_items`` must implement each policy.
"""

from __future__ import annotations

import pytest
import torch

from cpcframe.negatives import POLICIES, allowed_items, sample_negatives
from reference_infonce import item_allowed


def random_problem(B, C, Q, P, seed, density=0.6):
    """Random allowed sets and excluded lists with padding (-1), duplicates and excluded
    candidates that are not allowed."""
    g = torch.Generator().manual_seed(seed)
    allowed = torch.rand(B, C, generator=g) < density
    allowed[:, 0] = True  # at least one allowed candidate
    excluded = torch.randint(0, C, (B, Q, P), generator=g)
    excluded[torch.rand(B, Q, P, generator=g) < 0.2] = -1
    if P > 1:
        excluded[:, :, 1] = excluded[:, :, 0]  # a positive listed twice
    # Keep something to draw: a query excluding every allowed candidate is the error case.
    for b in range(B):
        allowed_b = allowed[b].nonzero().flatten().tolist()
        for q in range(Q):
            left = set(allowed_b) - set(excluded[b, q].tolist())
            if not left:
                excluded[b, q, :] = -1
    return allowed, excluded, g


def check_draws(allowed, excluded, drawn):
    B, Q, num = drawn.shape
    assert drawn.dtype == torch.long
    assert ((drawn >= 0) & (drawn < allowed.shape[1])).all()
    # Only allowed candidates are drawn.
    assert allowed.gather(1, drawn.view(B, Q * num)).all()
    # No excluded candidate (padding -1 never matches a drawn index >= 0).
    hit = (drawn[..., :, None] == excluded[..., None, :]).any(-1)
    assert not hit.any(), f"{int(hit.sum())} draws hit a positive"


@pytest.mark.parametrize("B, C, Q, P", [(1, 1 + 1, 1, 1), (3, 10, 4, 1), (2, 37, 5, 3),
                                        (4, 64, 8, 6), (2, 200, 3, 25), (5, 12, 7, 11)])
@pytest.mark.parametrize("seed", range(4))
def test_positives_are_never_drawn(B, C, Q, P, seed):
    allowed, excluded, g = random_problem(B, C, Q, P, seed)
    drawn = sample_negatives(allowed, excluded, 300, generator=g)
    assert drawn.shape == (B, Q, 300)
    check_draws(allowed, excluded, drawn)


def test_draws_reach_every_remaining_candidate():
    """With few candidates left, every one of them is drawn (nothing is skipped)."""
    allowed, excluded, g = random_problem(3, 30, 4, 5, seed=7)
    drawn = sample_negatives(allowed, excluded, 2000, generator=g)
    for b in range(3):
        for q in range(4):
            expected = set(allowed[b].nonzero().flatten().tolist()) - set(excluded[b, q].tolist())
            assert set(drawn[b, q].tolist()) == expected


def chi_square(counts: torch.Tensor) -> float:
    expected = counts.sum() / counts.numel()
    return float(((counts - expected) ** 2 / expected).sum())


def test_draws_are_uniform_over_the_allowed_set():
    """Per query, counts over the allowed non-excluded candidates pass a chi-square test.

    Candidates 0..19, allowed: the even ones and 15 (11 candidates); query 0 excludes 4 and
    15 (and lists 4 twice), query 1 excludes 7, which is not allowed, query 2 nothing. The
    seed is fixed, so the test is deterministic; the bound is the 1e-4 tail of chi-square.
    """
    C = 20
    allowed = torch.zeros(1, C, dtype=torch.bool)
    allowed[0, 0::2] = True
    allowed[0, 15] = True
    excluded = torch.tensor([[[4, 15, 4], [7, -1, -1], [-1, -1, -1]]])
    num = 60_000
    drawn = sample_negatives(allowed, excluded, num, generator=torch.Generator().manual_seed(0))
    # chi-square critical values at p = 1e-4 for 8 and 10 degrees of freedom.
    critical = {9: 31.8, 11: 35.6}
    for q, excl in enumerate(({4, 15}, {7}, set())):
        support = [c for c in range(C) if allowed[0, c] and c not in excl]
        counts = torch.bincount(drawn[0, q], minlength=C).double()
        assert counts[[c for c in range(C) if c not in support]].sum() == 0
        stat = chi_square(counts[support])
        assert stat < critical[len(support)], (q, stat, counts[support].tolist())
        # And not suspiciously perfect either (a deterministic round-robin would be 0).
        assert stat > 0.5


def test_uniform_with_the_global_rng_is_reproducible():
    allowed, excluded, _ = random_problem(2, 16, 3, 2, seed=1)
    torch.manual_seed(123)
    first = sample_negatives(allowed, excluded, 50)
    torch.manual_seed(123)
    second = sample_negatives(allowed, excluded, 50)
    torch.manual_seed(124)
    third = sample_negatives(allowed, excluded, 50)
    assert torch.equal(first, second) and not torch.equal(first, third)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("item_offset", [0, 2])
def test_allowed_items_follow_the_policy(policy, item_offset):
    B, N = 3, 6
    groups = torch.tensor([0, 1, 1, 0, 2, 1])
    allowed = allowed_items(policy, B, N, item_offset, groups, torch.device("cpu"))
    assert allowed.shape == (B, N) and allowed.dtype == torch.bool
    for b in range(B):
        for n in range(N):
            assert bool(allowed[b, n]) == item_allowed(policy, item_offset + b, n, groups), (b, n)


@pytest.mark.parametrize("policy", POLICIES)
def test_only_allowed_items_are_drawn_per_policy(policy):
    """Through the engine's own path: item policy -> (B, C) candidates -> draws."""
    B, N, L, Q = 3, 5, 4, 6
    groups = torch.tensor([0, 1, 0, 1, 0])
    items = allowed_items(policy, B, N, 1, groups, torch.device("cpu"))
    allowed = items[:, :, None].expand(B, N, L).reshape(B, N * L)
    own = (torch.arange(B) + 1) * L
    excluded = (own[:, None] + torch.arange(Q)[None, :] % L)[:, :, None]  # one positive each
    excluded = torch.where(allowed.gather(1, excluded[..., 0])[..., None], excluded, -1)
    drawn = sample_negatives(allowed, excluded, 500, generator=torch.Generator().manual_seed(2))
    check_draws(allowed, excluded, drawn)
    drawn_items = drawn // L
    for b in range(B):
        seen = set(drawn_items[b].flatten().tolist())
        expected = {n for n in range(N) if item_allowed(policy, b + 1, n, groups)}
        assert seen == expected, (policy, b, seen, expected)


def test_nothing_left_to_draw_is_a_clear_error():
    allowed = torch.tensor([[True, False, True], [True, True, True]])
    excluded = torch.tensor([[[0, 2]], [[1, -1]]])  # item 0's query excludes both allowed
    with pytest.raises(ValueError, match=r"no negatives left to sample for item 0, query 0: "
                                         r"the policy allows 2 candidates and 2 are positives"):
        sample_negatives(allowed, excluded, 4)
    # An inactive query may have nothing left: its draws are never used.
    drawn = sample_negatives(allowed, excluded, 4, active=torch.tensor([[False], [True]]))
    assert drawn.shape == (2, 1, 4)
    assert not (drawn[1] == 1).any()


def test_same_group_needs_groups_and_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="'same_group' needs group ids"):
        allowed_items("same_group", 2, 2, 0, None, torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown negative policy 'speaker'; choose one of batch"):
        allowed_items("speaker", 2, 2, 0, None, torch.device("cpu"))
