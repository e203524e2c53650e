"""Utterances decoded on access, for a corpus read once in order (``request.access ==
"sequential"``, as ``cpcframe shard`` reads it): no sample cache is built, so sharding
LibriLight needs scratch disk for the shards only, not for a decoded copy of the corpus.

:class:`DecodingDataset` gives item for item what the cached
:class:`~cpcframe_audio.data.base.AudioDataset` of the same utterances gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from cpcframe import Dataset, Example, UnusableItem
from cpcframe_audio.data.base import speaker_order
from cpcframe_audio.data.decode import AudioSource, read_audio
from cpcframe_audio.data.labels import LABEL_HOP, LabelLines


class RowAudio(Sequence):
    """``rows[i][column]`` passed through ``to_source`` (the encoded bytes or path of an
    undecoded audio value), one row read at a time: the encoded corpus is never all in
    memory. ``rows``: anything indexable by row number (a Hugging Face ``Dataset``)."""

    def __init__(self, rows: Any, column: str, to_source: Callable[[Any], AudioSource], count: int):
        self.rows, self.column, self.to_source, self.count = rows, column, to_source, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):  # type: ignore[override]
        return self.to_source(self.rows[int(i)][self.column])


class DecodingDataset(Dataset):
    """Audio decoded in ``__getitem__`` from ``sources[i]`` (a path or encoded bytes, e.g.
    the rows of a Hugging Face dataset read on demand: :class:`RowAudio`).

    ``dataset[i]`` is the :class:`~cpcframe.Example` the cached dataset gives: ``data`` a
    ``(1, S)`` waveform in ``dtype`` (``float16`` by default, the cache's), ``group`` the
    speaker's index in :func:`speaker_order`, ``key`` the utterance id, ``labels`` ``(L,)``
    int64 frame labels or ``None``. A file that does not decode raises
    :class:`~cpcframe_audio.data.decode.AudioDecodeError` (``unreadable``, ``empty``), one
    shorter than ``min_length`` samples an :class:`cpcframe.UnusableItem` (``too_short``):
    the reader skips and counts them, where the cached dataset leaves them out up front.
    Group indices are over the speakers of every file listed, usable or not (they differ
    from the cached dataset's only for a speaker none of whose files is usable).

    Attributes:
        keys, speakers, sources: per item (in the cached dataset's order).
        groups: speaker index per item; speaker_ids: speaker id of each group index.
        sample_rate: Hz; label_hop: samples per label frame (:data:`LABEL_HOP`).
        skipped: always empty: unusable files are found, and counted by the reader, on access.
    """

    label_hop = LABEL_HOP

    def __init__(self, keys: Sequence[str], speakers: Sequence[str], sources: Sequence[AudioSource], *,
                 sample_rate: int, dtype: str = "float16", min_length: int = 0,
                 labels: LabelLines | None = None, test_split_available: bool = False):
        self.keys = list(keys)
        self.speakers = list(speakers)
        self.sources = sources
        self.speaker_ids = speaker_order(self.speakers)
        index = {s: g for g, s in enumerate(self.speaker_ids)}
        self.groups = [index[s] for s in self.speakers]
        self.sample_rate = sample_rate
        self.dtype = np.dtype(dtype)
        self.min_length = min_length
        self.label_lines = labels
        self.skipped = {}
        self.test_split_available = test_split_available

    def __len__(self) -> int:
        return len(self.keys)

    def has_labels(self, i: int) -> bool:
        return self.label_lines is not None and self.keys[int(i)] in self.label_lines.offsets

    def labels(self, i: int) -> torch.Tensor | None:
        values = None if self.label_lines is None else self.label_lines.labels(self.keys[int(i)])
        return None if values is None else torch.from_numpy(values)

    def __getitem__(self, i: int) -> Example:
        i = int(i)
        if not 0 <= i < len(self.keys):
            raise IndexError(f"index {i} out of range for {len(self.keys)} utterances")
        wave = read_audio(self.sources[i], self.sample_rate)  # (S,) float32
        if wave.size < max(self.min_length, 1):
            raise UnusableItem("too_short", f"{self.keys[i]}: {wave.size} samples, fewer than {self.min_length}")
        # Through the cache's dtype, as the cache stores it: the same values bit for bit.
        data = torch.from_numpy(wave.astype(self.dtype))[None]
        return Example(data=data, group=self.groups[i], key=self.keys[i], labels=self.labels(i))

    def describe(self) -> str:
        labels = "phone labels" if self.label_lines is not None else "no phone labels"
        return (f"{len(self)} utterances, {len(self.speaker_ids)} speakers, {labels} "
                "(decoded on access; unusable files counted as they are read)")
