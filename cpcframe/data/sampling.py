"""Step-indexed batch sampling: the batch of step ``s`` is a pure function of ``(seed, s)``.

That makes resuming exact (no loader state to save), lets several processes take
disjoint slices of one global batch, and keeps a resumed run with a different number
of processes well defined.
"""

from __future__ import annotations

import warnings

from collections.abc import Iterator, Sequence

import numpy as np

#: One item of a batch: (step, position in the global batch, dataset index).
ItemKey = tuple[int, int, int]


def _rng(*words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([w & 0xFFFFFFFF for w in words]))


class StepBatchSampler:
    """Yields, for steps ``start..stop-1``, this process's slice of the global batch.

    Ungrouped: epochs of a seeded permutation, ``global_batch`` items a step, no
    replacement within an epoch. Grouped (``group_size > 0``): each global batch holds
    ``global_batch / group_size`` distinct groups drawn at random, ``group_size``
    items from each (without replacement while the group has enough), as needed for
    same-speaker negatives (CPC, Table 2).
    """

    def __init__(self, groups: Sequence[int], batch_size: int, *, seed: int, start: int, stop: int,
                 group_size: int = 0, rank: int = 0, world_size: int = 1):
        if len(groups) == 0:
            raise ValueError("the dataset is empty")
        self.groups = np.asarray(groups, dtype=np.int64)
        self.batch_size = batch_size
        self.global_batch = batch_size * world_size
        self.seed, self.start, self.stop = seed, start, stop
        self.group_size = group_size
        self.rank = rank
        if group_size:
            labels, inverse = np.unique(self.groups, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(labels) + 1))
            self.members = [order[bounds[i]:bounds[i + 1]] for i in range(len(labels))]
            needed = self.global_batch // group_size
            if len(self.members) < needed:
                raise ValueError(f"group_size={group_size} with a global batch of {self.global_batch} "
                                 f"needs {needed} groups, but the dataset has {len(self.members)}")
            small = [len(m) for m in self.members if len(m) < group_size]
            if small:
                # Such a group's batches repeat items: the same utterance twice, one window
                # a same-group negative of the other's.
                warnings.warn(f"data.group_size={group_size}: {len(small)} of {len(self.members)} groups "
                              f"(speakers) have fewer items than that (the smallest {min(small)}); "
                              f"their batches repeat items. Use data.group_size <= {min(small)} "
                              "(batch_size a multiple of it), or a split with more items per group",
                              stacklevel=2)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def global_indices(self, step: int) -> np.ndarray:
        """Dataset indices of the whole global batch of ``step``."""
        if self.group_size:
            return self._grouped(step)
        n = len(self.groups)
        first = step * self.global_batch
        out = np.empty(self.global_batch, dtype=np.int64)
        filled = 0
        while filled < self.global_batch:
            epoch, offset = divmod(first + filled, n)
            perm = _rng(self.seed, 0x5EED, epoch).permutation(n)
            take = min(n - offset, self.global_batch - filled)
            out[filled:filled + take] = perm[offset:offset + take]
            filled += take
        return out

    def _grouped(self, step: int) -> np.ndarray:
        rng = _rng(self.seed, 0x6A0F, step)
        chosen = rng.choice(len(self.members), self.global_batch // self.group_size, replace=False)
        parts = []
        for g in chosen:
            members = self.members[g]
            replace = len(members) < self.group_size
            parts.append(rng.choice(members, self.group_size, replace=replace))
        return np.concatenate(parts)

    def __iter__(self) -> Iterator[list[ItemKey]]:
        lo = self.rank * self.batch_size
        for step in range(self.start, self.stop):
            indices = self.global_indices(step)[lo:lo + self.batch_size]
            yield [(step, lo + i, int(idx)) for i, idx in enumerate(indices)]
