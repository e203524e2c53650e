"""Reading CSV recordings and caching them decoded, as one array for all files.

Parsing text is slow and a training step must be cheap, so the recordings of a split
are decoded once into ``values.npy`` (``(C, total_steps)`` float32, recordings one
after another along time) and ``labels.npy`` (``(total_steps,)`` int64, ``-1`` where
unknown), stored under ``DatasetRequest.cache_dir`` and memory-mapped afterwards.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from cpcframe import cache_key, publish_dir
from cpcframe_example_sensors.config import SensorCSVConfig

#: Bump when the cached layout changes, so old caches are not misread.
FORMAT_VERSION = 1


class UnreadableRecording(Exception):
    """A file that cannot be used; ``reason`` is the key counted in ``dataset.skipped``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def read_recording(path: Path, channels: Sequence[str], label_column: str) -> tuple[np.ndarray, np.ndarray]:
    """One CSV file -> ``values (C, S)`` float32 and ``labels (S,)`` int64 (``-1``: none).

    The first row names the columns; ``channels`` picks (and orders) the channel columns.
    """
    try:
        with open(path, encoding="utf-8") as f:
            names = [n.strip() for n in f.readline().split(",")]
        with warnings.catch_warnings():  # a header without rows is "too short", counted later
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UnreadableRecording("unreadable", f"{path}: {exc}") from None
    missing = [c for c in channels if c not in names]
    if missing:
        raise UnreadableRecording("missing channel columns", f"{path}: no column {', '.join(missing)}")
    if table.size == 0:
        table = np.zeros((0, len(names)))
    if table.shape[1] != len(names):
        raise UnreadableRecording("unreadable", f"{path}: {table.shape[1]} values per row, "
                                                f"{len(names)} column names")
    values = table[:, [names.index(c) for c in channels]].T.astype(np.float32)  # (C, S)
    if not np.isfinite(values).all():
        raise UnreadableRecording("non-finite values", f"{path}: NaN or infinite values")
    if label_column and label_column in names:
        labels = table[:, names.index(label_column)].astype(np.int64)
    else:
        labels = np.full(table.shape[0], -1, dtype=np.int64)
    return values, labels


def standardize(values: np.ndarray) -> np.ndarray:
    """``(C, S)`` -> each channel at zero mean and unit variance (constant channels: zero)."""
    mean = values.mean(axis=1, keepdims=True)
    std = values.std(axis=1, keepdims=True)
    return ((values - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


@attrs.frozen(eq=False)
class Recordings:
    """Decoded recordings of one split, back to back along time.

    Attributes:
        values: ``(C, total)`` float32 (a memory map when cached).
        labels: ``(total,)`` int64, ``-1`` where unknown.
        offsets: ``(R + 1,)`` start of each recording in ``values``; recording ``r``
            is ``values[:, offsets[r]:offsets[r + 1]]``.
        keys: file path relative to the root, one per recording.
        skipped: reason -> number of files that could not be read.
    """

    values: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    keys: list[str]
    skipped: dict[str, int]


def decode(files: Sequence[Path], root: Path, config: SensorCSVConfig) -> tuple[Recordings, list[str]]:
    """Read every file; returns the recordings and one message per skipped file."""
    parts, label_parts, keys, messages = [], [], [], []
    skipped: dict[str, int] = {}
    for path in files:
        try:
            values, labels = read_recording(path, config.channels, config.label_column)
        except UnreadableRecording as exc:
            skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
            messages.append(str(exc))
            continue
        parts.append(standardize(values) if config.standardize and values.shape[1] else values)
        label_parts.append(labels)
        keys.append(path.relative_to(root).as_posix())
    lengths = [p.shape[1] for p in parts]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    values = np.concatenate(parts, axis=1) if parts else np.zeros((len(config.channels), 0), np.float32)
    labels = np.concatenate(label_parts) if label_parts else np.zeros(0, np.int64)
    return Recordings(values, labels, offsets, keys, skipped), messages


def recordings_key(files: Sequence[Path], root: Path, config: SensorCSVConfig) -> str:
    """Changes when a file is added, removed or modified, or a decoding option changes."""
    stats = [(p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    options = [list(config.channels), config.label_column, config.standardize, FORMAT_VERSION]
    return cache_key([str(root.resolve()), stats, options], 16)


def load_cached(files: Sequence[Path], root: Path, config: SensorCSVConfig,
                cache_dir: Path) -> tuple[Recordings, list[str]]:
    """:func:`decode`, through a cache directory (published atomically by the core's
    ``publish_dir``, so a crash leaves no half-written cache and concurrent runs are safe)."""
    target = cache_dir / "example_sensors" / recordings_key(files, root, config)
    if not (target / "index.json").is_file():
        recordings, messages = decode(files, root, config)

        def fill(tmp: Path) -> None:
            np.save(tmp / "values.npy", recordings.values)
            np.save(tmp / "labels.npy", recordings.labels)
            index = {"offsets": recordings.offsets.tolist(), "keys": recordings.keys,
                     "skipped": recordings.skipped, "messages": messages}
            (tmp / "index.json").write_text(json.dumps(index))

        publish_dir(target, fill, marker="index.json")  # another process's identical copy may win
    index = json.loads((target / "index.json").read_text())
    recordings = Recordings(
        values=np.load(target / "values.npy", mmap_mode="r"),
        labels=np.load(target / "labels.npy", mmap_mode="r"),
        offsets=np.asarray(index["offsets"], dtype=np.int64),
        keys=list(index["keys"]),
        skipped=dict(index["skipped"]),
    )
    return recordings, list(index["messages"])
