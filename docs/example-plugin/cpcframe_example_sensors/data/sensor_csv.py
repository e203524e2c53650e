"""``sensor_csv``: a folder of CSV recordings as a map-style dataset of :class:`cpcframe.Example`.

Layout of the folder (searched recursively)::

    root/
      s01_walk.csv      subject "s01" (the name up to the first "_")
      s01_mixed.csv
      s02_0007.csv      subject "s02"
      ...

Each file: a header row naming the columns, then one row per time step, e.g.
``t,x,y,z,activity``. Item ``i`` is one recording: ``data`` is ``(C, S_i)`` float32
(the configured channel columns), ``group`` its subject's id, ``key`` its file name,
``labels`` ``(S_i,)`` int64 (the label column, ``-1`` where absent).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cpcframe import Dataset, DatasetRequest, Example, UserError
from cpcframe_example_sensors.config import SensorCSVConfig
from cpcframe_example_sensors.data.cache import Recordings, decode, load_cached

SPLITS = ("train", "test")


def split_files(files: list[Path], split: str, test_every: int) -> list[Path]:
    """Every ``test_every``-th file (in name order) is ``test``, the rest ``train``; 0: all in both."""
    if split not in SPLITS:
        raise ValueError(f"sensor_csv has the splits {', '.join(SPLITS)}, not {split!r}")
    if not test_every:
        return files
    is_test = [(i + 1) % test_every == 0 for i in range(len(files))]
    return [f for f, t in zip(files, is_test) if t == (split == "test")]


class SensorCSV(Dataset):
    """Recordings of one split.

    Attributes:
        groups: subject id of every item (for ``data.group_size`` batching and the
            ``same_group`` negative policy).
        subjects: subject name of each group id.
        keys: file of every item, relative to the root.
        skipped: reason -> number of files not used (unreadable, too short, ...).
        test_split_available: whether ``split="test"`` holds other recordings
            (``test_every > 0``); otherwise both splits are every recording.
        num_channels: ``C``.
    """

    def __init__(self, config: SensorCSVConfig, *, request: DatasetRequest):
        root = Path(config.root).expanduser()
        if not root.is_dir():
            raise UserError(f"sensor_csv: data folder {root} does not exist (set data.dataset.root; "
                            "make a demo folder with: python -m cpcframe_example_sensors.data.synthetic DIR)")
        every_file = sorted(root.rglob("*.csv"))
        if not every_file:
            raise UserError(f"sensor_csv: no *.csv file under {root}")
        # Group ids from all files, so a subject has the same id in every split.
        self.subjects = sorted({self.subject_of(f, config) for f in every_file})
        files = split_files(every_file, request.split, config.test_every)
        if config.cache:
            recordings, messages = load_cached(files, root, config, request.cache_dir)
        else:
            recordings, messages = decode(files, root, config)
        for message in messages:
            warnings.warn(f"sensor_csv: skipped {message}", stacklevel=2)

        lengths = np.diff(recordings.offsets)  # (R,)
        usable = lengths >= max(request.min_length, 1)
        self.skipped = dict(recordings.skipped)
        if (~usable).any():
            reason = f"shorter than {max(request.min_length, 1)} steps"
            self.skipped[reason] = int((~usable).sum())
            warnings.warn(f"sensor_csv: skipped {int((~usable).sum())} recording(s) {reason}", stacklevel=2)
        self._items = np.flatnonzero(usable)  # item -> recording
        self._offsets = recordings.offsets
        self.keys = [recordings.keys[r] for r in self._items]
        subject_id = {s: i for i, s in enumerate(self.subjects)}
        self.groups: list[int] = [subject_id[self.subject_of(root / k, config)] for k in self.keys]
        self.test_split_available = config.test_every > 0
        self.num_channels = len(config.channels)
        self._recordings: Recordings | None = recordings
        self._load_args = (files, root, config, request.cache_dir) if config.cache else None

    @staticmethod
    def subject_of(path: Path, config: SensorCSVConfig) -> str:
        return path.stem.split(config.subject_separator, 1)[0]

    def _data(self) -> Recordings:
        if self._recordings is None:  # in a loader worker: map the cache again
            assert self._load_args is not None
            self._recordings = load_cached(*self._load_args)[0]
        return self._recordings

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps would be pickled as full copies; workers re-map the cache instead.
        state = dict(self.__dict__)
        if self._load_args is not None:
            state["_recordings"] = None
        return state

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Example:
        r = int(self._items[index])
        start, stop = int(self._offsets[r]), int(self._offsets[r + 1])
        data = self._data()
        # np.array copies the slice out of the (read-only) memory map.
        values = torch.from_numpy(np.array(data.values[:, start:stop]))  # (C, S)
        labels = torch.from_numpy(np.array(data.labels[start:stop]))  # (S,)
        return Example(values, group=self.groups[index], key=self.keys[index], labels=labels)
