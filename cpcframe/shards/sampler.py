"""A step-indexed, shard-local batch order: the batch of step ``s`` on rank ``r`` is a pure
function of ``(seed, s, r, world_size)``, as in :mod:`cpcframe.data.sampling`, so a kill
and ``--resume`` continue with the very same batches (no loader state to save).

The corpus is read as ``V`` virtual streams (``streams``; MosaicML streaming calls them
canonical nodes): in epoch ``e`` the shards are permuted by ``(seed, e)`` and stream ``v``
takes every ``V``-th of them; within a shard the items are permuted by
``(seed, e, shard)``. Each step takes ``G / V`` items from every stream (``G`` the global
batch), and rank ``r`` of ``W`` reads streams ``r·V/W .. (r+1)·V/W - 1``: disjoint shards
per rank, and a global order that does not depend on ``W``. So a run resumed on another
number of processes (``V`` divisible by both, the global batch kept) continues with the
very same items: no shard of the epoch is repeated or dropped. Consecutive steps therefore read
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
                 rank: int = 0, world_size: int = 1, group_size: int = 0, groups: Sequence[int] | None = None,
                 streams: int = 0):
        self.counts = np.asarray(shard_items, dtype=np.int64)
        self.streams = streams or world_size
        global_batch = batch_size * world_size
        if self.streams % world_size or global_batch % self.streams:
            raise ValueError(f"data.dataset.streams={self.streams} must be a multiple of the {world_size} "
                             f"process(es) and divide the global batch of {global_batch}")
        if len(self.counts) < self.streams:
            raise ValueError(f"{len(self.counts)} shard(s) for {self.streams} streams: every stream needs "
                             "its own shards (write smaller shards)")
        self.per_stream = global_batch // self.streams
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.batch_size, self.seed, self.start, self.stop = batch_size, seed, start, stop
        self.rank, self.world_size = rank, world_size
        self.group_size = group_size
        self.groups = None if groups is None else np.asarray(groups, dtype=np.int64)
        self._epochs: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def my_streams(self) -> range:
        per_rank = self.streams // self.world_size
        return range(self.rank * per_rank, (self.rank + 1) * per_rank)

    def shards_of_epoch(self, epoch: int, stream: int | None = None) -> np.ndarray:
        """The shards of ``stream`` (all of this rank's when ``None``) in epoch ``epoch``."""
        perm = _rng(self.seed, 0x54A2D, epoch).permutation(len(self.counts))
        if stream is None:
            return np.concatenate([perm[v::self.streams] for v in self.my_streams()])
        return perm[stream::self.streams]

    def _epoch_stream(self, epoch: int, stream: int | None = None) -> np.ndarray:
        """Global item indices ``stream`` reads in ``epoch`` (this rank's streams, one after
        the other, when ``None``), in order."""
        if stream is None:
            return np.concatenate([self._epoch_stream(epoch, v) for v in self.my_streams()])
        if (epoch, stream) not in self._epochs:
            parts = []
            for shard in self.shards_of_epoch(epoch, stream):
                order = _rng(self.seed, 0x17E5, epoch, int(shard)).permutation(int(self.counts[shard]))
                parts.append(self.offsets[shard] + order)
            if len(self._epochs) > 4 * self.streams:
                self._epochs.clear()
            self._epochs[(epoch, stream)] = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return self._epochs[(epoch, stream)]

    def _epoch_length(self, epoch: int, stream: int) -> int:
        return int(self.counts[self.shards_of_epoch(epoch, stream)].sum())

    def indices(self, step: int) -> np.ndarray:
        """Global item indices of this rank's batch of ``step``."""
        batch = np.concatenate([self._stream_items(step, v) for v in self.my_streams()])
        if self.group_size and self.groups is not None:
            batch = self._grouped(step, batch)
        return batch

    def _stream_items(self, step: int, stream: int) -> np.ndarray:
        """The ``G / V`` items ``stream`` gives to step ``step``."""
        position = step * self.per_stream
        epoch = 0
        # Epoch lengths differ per rank (shards differ in size); walk them (cheap: per epoch).
        while True:
            length = self._epoch_length(epoch, stream)
            if length == 0:
                raise ValueError("a stream's shards hold no item")
            if position < length:
                break
            position -= length
            epoch += 1
        out: list[int] = []
        while len(out) < self.per_stream:
            items = self._epoch_stream(epoch, stream)
            out.extend(int(i) for i in items[position:position + self.per_stream - len(out)])
            position, epoch = 0, epoch + 1
        return np.asarray(out, dtype=np.int64)

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
