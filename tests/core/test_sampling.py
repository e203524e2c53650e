"""Step-indexed batch sampling: determinism, grouping, process slices."""

from __future__ import annotations

import numpy as np
import pytest

from cpcframe.data.sampling import StepBatchSampler


def batches(**kw):
    return [[k[2] for k in b] for b in StepBatchSampler(**kw)]


def test_batches_are_a_function_of_seed_and_step():
    groups = list(range(10)) * 3
    full = batches(groups=groups, batch_size=4, seed=1, start=0, stop=12)
    tail = batches(groups=groups, batch_size=4, seed=1, start=5, stop=12)
    assert full[5:] == tail
    assert full != batches(groups=groups, batch_size=4, seed=2, start=0, stop=12)


def test_ungrouped_epochs_visit_every_item_once():
    n = 12
    seen = np.concatenate(batches(groups=[0] * n, batch_size=4, seed=0, start=0, stop=3))
    assert sorted(seen) == list(range(n))


def test_grouped_batches_hold_group_size_items_of_distinct_groups():
    groups = [i % 6 for i in range(60)]
    for batch in batches(groups=groups, batch_size=8, seed=0, start=0, stop=20, group_size=4):
        labels = [groups[i] for i in batch]
        assert len(set(labels)) == 2
        assert labels[:4] == [labels[0]] * 4 and labels[4:] == [labels[4]] * 4
        assert len(set(batch)) == 8  # no repeats while groups are large enough


def test_process_slices_partition_the_global_batch():
    groups = [i % 5 for i in range(40)]
    kw = dict(groups=groups, batch_size=3, seed=4, start=0, stop=6, world_size=2)
    r0, r1 = batches(rank=0, **kw), batches(rank=1, **kw)
    single = batches(groups=groups, batch_size=6, seed=4, start=0, stop=6)
    assert [a + b for a, b in zip(r0, r1)] == single


def test_too_few_groups_is_an_error():
    with pytest.raises(ValueError, match="needs 4 groups"):
        StepBatchSampler([0, 1, 0, 1], 8, seed=0, start=0, stop=1, group_size=2)
