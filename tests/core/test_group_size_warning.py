"""Same-group batches on groups smaller than group_size warn instead of silently repeating
items (issue 17, part 6)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cpcframe.data.sampling import StepBatchSampler


def test_groups_smaller_than_group_size_warn():
    groups = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    with pytest.warns(UserWarning, match=r"group_size=4: 1 of 3 groups .* smallest 3\).*group_size <= 3"):
        sampler = StepBatchSampler(groups, 8, seed=0, start=0, stop=20, group_size=4)
    assert any(len(np.unique(sampler.global_indices(s))) < 8 for s in range(20))  # what it warns of


def test_groups_large_enough_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        StepBatchSampler([0] * 4 + [1] * 5, 8, seed=0, start=0, stop=2, group_size=4)
