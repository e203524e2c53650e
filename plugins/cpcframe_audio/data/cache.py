"""Decode a corpus once into a memory-mapped sample array that every later epoch and run reuses.

Layout of one cache (a folder under ``<cache_dir>/audio/``, named by a hash of what went
into it, so a changed corpus or option gets a new folder and never reads a stale one)::

    samples.bin     every utterance's samples back to back (float16 or float32, mono)
    index.json      keys, speakers, offsets, lengths, files that failed and why
    fingerprint.json what the hash covers (file list with sizes and mtimes, options)

It is built in a temporary folder and renamed into place, so an interrupted build
leaves nothing a later run would trust, and concurrent builders do not collide.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from cpcframe import cache_key, publish_dir
from cpcframe_audio.data.decode import AudioDecodeError, AudioSource, read_audio

CACHE_VERSION = 1
DTYPES = ("float16", "float32")


@attrs.frozen
class SourceItem:
    """One utterance to decode.

    Attributes:
        key: utterance id (unique within the corpus).
        speaker: speaker id (a string; datasets map them to dense group indices).
        source: a path, encoded bytes, or a callable returning either (read lazily,
            in a decoding thread).
    """

    key: str
    speaker: str
    source: AudioSource | Callable[[], AudioSource]


class AudioCache:
    """A built cache, opened read-only. The memory map is opened lazily per process
    (and dropped when pickled into loader workers, which reopen it).

    Attributes:
        path: the cache folder.
        keys, speakers: per item.
        offsets, lengths: ``(N,)`` int64, in samples.
        failed: key -> ``"reason: message"`` of items that could not be decoded.
        sample_rate: Hz.
        dtype: storage dtype of ``samples.bin``.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        index = json.loads((self.path / "index.json").read_text())
        self.keys: list[str] = index["keys"]
        self.speakers: list[str] = index["speakers"]
        self.offsets = np.asarray(index["offsets"], dtype=np.int64)
        self.lengths = np.asarray(index["lengths"], dtype=np.int64)
        self.failed: dict[str, str] = index["failed"]
        self.sample_rate: int = index["sample_rate"]
        self.dtype = np.dtype(index["dtype"])
        self.total = int(index["total"])
        self._samples: np.ndarray | None = None
        self._position = {k: i for i, k in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_samples"] = None  # a memmap would be pickled as a full copy
        return state

    @property
    def samples(self) -> np.ndarray:
        if self._samples is None:
            if self.total == 0:
                self._samples = np.zeros(0, dtype=self.dtype)
            else:
                self._samples = np.memmap(self.path / "samples.bin", dtype=self.dtype, mode="r",
                                          shape=(self.total,))
        return self._samples

    def position(self, key: str) -> int | None:
        return self._position.get(key)

    def waveform(self, i: int, start: int = 0, stop: int | None = None,
                 dtype: np.dtype | type | None = np.float32) -> np.ndarray:
        """``(n,)`` samples of item ``i`` (optionally a ``[start, stop)`` slice), as a
        writable copy in ``dtype`` (``None``: the cache's own dtype, no conversion)."""
        length = int(self.lengths[i])
        stop = length if stop is None else min(stop, length)
        off = int(self.offsets[i])
        return np.array(self.samples[off + start:off + stop], dtype=dtype)


def _decode(item: SourceItem, sample_rate: int) -> np.ndarray:
    source = item.source() if callable(item.source) else item.source
    return read_audio(source, sample_rate)


def _decoded(items: Iterable[SourceItem], sample_rate: int, workers: int,
             chunk: int = 64) -> Iterator[tuple[SourceItem, np.ndarray | AudioDecodeError]]:
    """Decode in order; several threads at a time (libsndfile releases the GIL).

    Items are submitted ``chunk`` at a time so memory stays bounded on any corpus size.
    """
    def one(item: SourceItem):
        try:
            return item, _decode(item, sample_rate)
        except AudioDecodeError as exc:
            return item, exc

    iterator = iter(items)
    if workers <= 1:
        for item in iterator:
            yield one(item)
        return
    with ThreadPoolExecutor(workers) as pool:
        while True:
            batch = [item for _, item in zip(range(chunk), iterator)]
            if not batch:
                break
            yield from pool.map(one, batch)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def build_cache(root: Path, name: str, fingerprint: Any, items: Callable[[], Iterable[SourceItem]], *,
                sample_rate: int, dtype: str = "float16", workers: int = 0,
                progress: Callable[[int], None] | None = None) -> AudioCache:
    """Open the cache for ``fingerprint``, decoding ``items()`` into it first if it does not exist.

    Args:
        root: folder holding caches (``<request.cache_dir>/audio``).
        name: readable prefix of the cache folder's name.
        fingerprint: JSON-able description of everything the samples depend on
            (file list with sizes and mtimes, options); its hash names the folder.
        items: called only when the cache must be built.
        sample_rate: every item is resampled to this rate.
        dtype: ``float16`` (half the disk; 11-bit mantissa, far below 16-bit PCM's noise
            floor for CPC's purposes) or ``float32``.
        workers: decoding threads (0 = up to 8, one per CPU).
    """
    if dtype not in DTYPES:
        raise ValueError(f"cache dtype must be one of {DTYPES}, got {dtype!r}")
    full = {"version": CACHE_VERSION, "sample_rate": sample_rate, "dtype": dtype, "corpus": fingerprint}
    final = Path(root) / f"{name}-{cache_key(full)}"
    if (final / "index.json").is_file():
        return AudioCache(final)

    def fill(tmp: Path) -> None:
        keys, speakers, offsets, lengths = [], [], [], []
        failed: dict[str, str] = {}
        seen: set[str] = set()
        total = 0
        np_dtype = np.dtype(dtype)
        with open(tmp / "samples.bin", "wb") as out:
            for n, (item, result) in enumerate(_decoded(items(), sample_rate, workers or default_workers())):
                if progress is not None:
                    progress(n + 1)
                if item.key in seen:
                    raise ValueError(f"duplicate utterance key {item.key!r}")
                seen.add(item.key)
                if isinstance(result, AudioDecodeError):
                    failed[item.key] = f"{result.reason}: {result}"
                    continue
                out.write(result.astype(np_dtype).tobytes())
                keys.append(item.key)
                speakers.append(item.speaker)
                offsets.append(total)
                lengths.append(int(result.size))
                total += int(result.size)
        index = {"keys": keys, "speakers": speakers, "offsets": offsets, "lengths": lengths,
                 "failed": failed, "sample_rate": sample_rate, "dtype": dtype, "total": total}
        (tmp / "fingerprint.json").write_text(json.dumps(full, sort_keys=True, default=str))
        (tmp / "index.json").write_text(json.dumps(index))

    publish_dir(final, fill, marker="index.json")
    return AudioCache(final)
