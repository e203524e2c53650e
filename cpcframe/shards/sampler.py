"""A step-indexed, shard-local batch order: the batch of step ``s`` on rank ``r`` is a pure
function of ``(seed, s, r, world_size)``, as in :mod:`cpcframe.data.sampling`, so a kill
and ``--resume`` continue with the very same batches (no loader state to save).

Each rank reads its own stream: in epoch ``e`` the shards are permuted by ``(seed, e)``
and rank ``r`` takes every ``world_size``-th of them (disjoint shards per rank); within a
shard the items are permuted by ``(seed, e, shard)``. Consecutive steps therefore read
from one or two shards at a time, which keeps the decoded-shard cache small and flat
whatever the corpus size. With ``group_size > 0`` a batch is cut from the current shard's
groups (same-speaker negatives where a shard holds several utterances of a speaker).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from cpcframe.data.sampling import ItemKey


def _rng(*words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([w & 0xFFFFFFFF for w in words]))


class ShardStepSampler:
    """Yields this rank's batch of steps ``start..stop-1`` as ``(step, position, index)``.

    Args:
        shard_items: items per shard (shard ``k`` holds global indices
            ``offsets[k] .. offsets[k] + shard_items[k] - 1``).
    """

    def __init__(self, shard_items: Sequence[int], batch_size: int, *, seed: int, start: int, stop: int,
                 rank: int = 0, world_size: int = 1, group_size: int = 0, groups: Sequence[int] | None = None):
        self.counts = np.asarray(shard_items, dtype=np.int64)
        if len(self.counts) < world_size:
            raise ValueError(f"{len(self.counts)} shard(s) for {world_size} processes: every process needs "
                             "its own shards (write smaller shards)")
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.batch_size, self.seed, self.start, self.stop = batch_size, seed, start, stop
        self.rank, self.world_size = rank, world_size
        self.group_size = group_size
        self.groups = None if groups is None else np.asarray(groups, dtype=np.int64)
        self._epochs: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def shards_of_epoch(self, epoch: int) -> np.ndarray:
        """This rank's shards in epoch ``epoch``, in reading order."""
        perm = _rng(self.seed, 0x54A2D, epoch).permutation(len(self.counts))
        return perm[self.rank::self.world_size]

    def _epoch_stream(self, epoch: int) -> np.ndarray:
        """Global item indices this rank reads in ``epoch``, in order."""
        if epoch not in self._epochs:
            parts = []
            for shard in self.shards_of_epoch(epoch):
                order = _rng(self.seed, 0x17E5, epoch, int(shard)).permutation(int(self.counts[shard]))
                parts.append(self.offsets[shard] + order)
            self._epochs = {epoch: np.concatenate(parts) if parts else np.zeros(0, np.int64)}
        return self._epochs[epoch]

    def _epoch_length(self, epoch: int) -> int:
        return int(self.counts[self.shards_of_epoch(epoch)].sum())

    def indices(self, step: int) -> np.ndarray:
        """Global item indices of this rank's batch of ``step``."""
        position = step * self.batch_size
        epoch = 0
        # Epoch lengths differ per rank (shards differ in size); walk them (cheap: per epoch).
        while True:
            length = self._epoch_length(epoch)
            if length == 0:
                raise ValueError("this process's shards hold no item")
            if position < length:
                break
            position -= length
            epoch += 1
        out = []
        while len(out) < self.batch_size:
            stream = self._epoch_stream(epoch)
            take = stream[position:position + self.batch_size - len(out)]
            out.extend(int(i) for i in take)
            position, epoch = 0, epoch + 1
        batch = np.asarray(out, dtype=np.int64)
        if self.group_size and self.groups is not None:
            batch = self._grouped(step, batch)
        return batch

    def _grouped(self, step: int, batch: np.ndarray) -> np.ndarray:
        """Regroup ``batch``: ``group_size`` items of each of ``batch_size/group_size``
        groups present in it (drawn from the batch's own items, so from its shards)."""
        rng = _rng(self.seed, 0x6A0F, step, self.rank)
        labels = self.groups[batch]
        present = np.unique(labels)
        chosen = rng.choice(present, min(len(present), self.batch_size // self.group_size), replace=False)
        parts = [rng.choice(batch[labels == g], self.group_size, replace=(labels == g).sum() < self.group_size)
                 for g in chosen]
        out = np.concatenate(parts)
        if len(out) < self.batch_size:  # too few groups here: fill with the batch's own items
            out = np.concatenate([out, batch[:self.batch_size - len(out)]])
        return out

    def __iter__(self) -> Iterator[list[ItemKey]]:
        lo = self.rank * self.batch_size
        for step in range(self.start, self.stop):
            yield [(step, lo + i, int(idx)) for i, idx in enumerate(self.indices(step))]
