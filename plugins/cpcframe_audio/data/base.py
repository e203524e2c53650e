"""The map-style dataset every audio source ends in: utterances read from a decoded cache."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from cpcframe import Dataset, Example, describe_skipped
from cpcframe_audio.data.cache import AudioCache
from cpcframe_audio.data.labels import LABEL_HOP, LabelStore


def speaker_order(speakers: Sequence[str]) -> list[str]:
    """Distinct speaker ids, sorted numerically when they are numbers (LibriSpeech's are)."""
    def key(s: str):
        return (0, int(s), s) if s.isdigit() else (1, 0, s)
    return sorted(set(speakers), key=key)


def _examples(keys: list[str], total: int, limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({total} in all)" if total > limit else "")


class AudioDataset(Dataset):
    """Utterances of a cache, optionally with frame labels.

    ``dataset[i]`` is an :class:`~cpcframe.Example` with ``data`` a ``(1, S)`` waveform in
    the cache's dtype (``float16`` by default), ``group`` the speaker's dense index,
    ``key`` the utterance id and ``labels`` a ``(L,)`` int64 tensor of 10 ms frame labels
    (or ``None``). The whole utterance travels in the stored dtype because a view keeps
    only a window of it: ``audio_windows`` converts that window to float32, which gives
    the same values and makes loading about 4x cheaper on LibriSpeech's 13 s utterances
    than converting every sample. :meth:`waveform` gives float32.

    Attributes:
        keys: utterance ids.
        groups: speaker index per item (dense, in :func:`speaker_order`).
        speaker_ids: speaker id of each group index.
        lengths: ``(N,)`` samples per item.
        skipped: reason -> count of utterances left out (``unreadable``, ``empty``, ``too_short``).
        stats: counts worth reporting (``utterances``, ``speakers``, ``hours``,
            ``labelled``, ``audio_without_labels``, ``labels_without_audio``, ...).
        test_split_available: whether the source has a held-out split (``split="test"``).
        sample_rate: Hz.
        label_hop: samples per label frame (:data:`~cpcframe_audio.data.labels.LABEL_HOP`),
            so that ``cpcframe shard --segment`` cuts the labels with the audio.
    """

    label_hop = LABEL_HOP

    def __init__(self, cache: AudioCache, items: np.ndarray, *, labels: LabelStore | None = None,
                 skipped: dict[str, int] | None = None, stats: dict[str, float] | None = None,
                 test_split_available: bool = False):
        self.cache = cache
        self.items = np.asarray(items, dtype=np.int64)
        self.label_store = labels
        self.keys = [cache.keys[i] for i in self.items]
        speakers = [cache.speakers[i] for i in self.items]
        self.speaker_ids = speaker_order(speakers)
        index = {s: g for g, s in enumerate(self.speaker_ids)}
        self.groups = [index[s] for s in speakers]
        self.lengths = cache.lengths[self.items]
        self.skipped = {k: v for k, v in (skipped or {}).items() if v}
        self.stats = dict(stats or {})
        self.test_split_available = test_split_available
        self.sample_rate = cache.sample_rate

    def __len__(self) -> int:
        return len(self.items)

    def has_labels(self, i: int) -> bool:
        return self.label_store is not None and self.label_store.has(int(self.items[i]))

    def labels(self, i: int) -> torch.Tensor | None:
        if self.label_store is None:
            return None
        values = self.label_store.labels(int(self.items[i]))
        return None if values is None else torch.from_numpy(values)

    def waveform(self, i: int, dtype: np.dtype | type | None = np.float32) -> torch.Tensor:
        """``(1, S)`` samples of utterance ``i`` in ``dtype`` (``None``: the cache's)."""
        return torch.from_numpy(self.cache.waveform(int(self.items[i]), dtype=dtype))[None]

    def describe(self) -> str:
        """``"84 utterances, 8 speakers, 0.058 h, 16 label classes (84 labelled); skipped 2 (too_short: 2)"``."""
        hours = float(self.lengths.sum()) / self.sample_rate / 3600
        duration = f"{hours:.1f} h" if hours >= 1 else f"{hours:.3g} h ({hours * 60:.1f} min)"
        parts = [f"{len(self)} utterances", f"{len(self.speaker_ids)} speakers", duration]
        if self.label_store is not None:
            labelled = int(self.stats.get("labelled", 0))
            parts.append(f"{self.label_store.classes} label classes ({labelled} labelled)")
        else:
            parts.append("no phone labels")
        skipped = dict(self.skipped)
        for reason in ("split_ids_without_audio", "duplicate_ids"):
            if self.stats.get(reason):
                skipped[reason] = int(self.stats[reason])
        return ", ".join(parts) + describe_skipped(skipped)

    def __getitem__(self, i: int) -> Example:
        i = int(i)
        if not 0 <= i < len(self.items):
            raise IndexError(f"index {i} out of range for {len(self.items)} utterances")
        return Example(data=self.waveform(i, dtype=None), group=self.groups[i], key=self.keys[i],
                       labels=self.labels(i))


def select(cache: AudioCache, wanted: Sequence[str] | None, *, min_length: int, source: str,
           labels: LabelStore | None = None, test_split_available: bool = False,
           extra_stats: dict[str, float] | None = None) -> AudioDataset:
    """The corpus of ``wanted`` utterance ids (all when ``None``) that decoded and are long enough.

    Counts (and warns once about) unreadable files, too-short files, and, with labels,
    utterances without labels and labels without audio.
    """
    failed = {k: m.split(":", 1)[0] for k, m in cache.failed.items()}
    if wanted is None:
        candidates = np.arange(len(cache))
        failed_here = list(failed)
    else:
        wanted = list(dict.fromkeys(wanted))  # a repeated id counts once
        positions = [cache.position(k) for k in wanted]
        candidates = np.array([p for p in positions if p is not None], dtype=np.int64)
        failed_here = [k for k in wanted if k in failed]
    skipped: dict[str, int] = {}
    for key in failed_here:
        skipped[failed[key]] = skipped.get(failed[key], 0) + 1
    if failed_here:
        details = "; ".join(f"{k}: {cache.failed[k]}" for k in failed_here[:3])
        warnings.warn(f"{source}: skipped {len(failed_here)} unreadable audio file(s) ({details})",
                      stacklevel=3)
    short = cache.lengths[candidates] < max(min_length, 1)
    if short.any():
        skipped["too_short"] = int(short.sum())
        warnings.warn(f"{source}: skipped {int(short.sum())} utterance(s) shorter than "
                      f"{min_length} samples (the view sampler's minimum)", stacklevel=3)
    items = candidates[~short]
    stats: dict[str, float] = dict(extra_stats or {})
    stats["utterances"] = int(len(items))
    stats["speakers"] = len({cache.speakers[i] for i in items})
    stats["hours"] = round(float(cache.lengths[items].sum()) / cache.sample_rate / 3600, 4)
    if labels is not None:
        has = labels.lengths[items] >= 0
        stats["labelled"] = int(has.sum())
        stats["audio_without_labels"] = int((~has).sum())
        stats["labels_without_audio"] = labels.without_audio
        if labels.without_audio:
            warnings.warn(f"{source}: {labels.without_audio} labelled utterance(s) have no audio "
                          f"in the corpus (e.g. {_examples(labels.without_audio_examples, labels.without_audio)}); "
                          "their labels are ignored", stacklevel=3)
        if (~has).any():
            missing = [cache.keys[i] for i in items[~has][:3]]
            warnings.warn(f"{source}: {int((~has).sum())} utterance(s) have no phone labels "
                          f"(e.g. {', '.join(missing)}); they train but are not probed for phones",
                          stacklevel=3)
    return AudioDataset(cache, items, labels=labels, skipped=skipped, stats=stats,
                       test_split_available=test_split_available)
