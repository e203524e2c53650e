"""What every image dataset of this plugin shares: the ``Example`` it yields, skip counting
with a fallback on read errors, and a deterministic held-out split.

Items are ``Example(data=(3, H, W) uint8, group=0, key, labels=class)``. The group is 0:
self-supervised training must not see classes (a recipe using ``same_group`` negatives
would otherwise learn from labels). ``targets`` holds every item's class (``-1`` =
unlabelled) so probes can pick labelled items without decoding images.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections import defaultdict

from torch import Tensor

from cpcframe import Dataset, Example, hold_out

#: What ``load`` raises for bad data (skipped and counted); anything else is a bug and propagates.
READ_ERRORS = (OSError,)  # UnreadableImage is an OSError


class ImageDataset(Dataset):
    """Map-style dataset of images.

    Attributes:
        keys: stable identifier of each item (relative path, ``train/123``).
        targets: class index of each item, ``-1`` when unlabelled.
        classes: class names (index = class id).
        groups: one group id per item (all 0).
        skipped: reason -> count of items left out (at index time) or replaced (on read).
        test_split_available: ``True``: every source has a test split, its own or a
            held-out share of each class.
    """

    test_split_available = True

    def __init__(self, keys: list[str], targets: list[int], classes: list[str],
                 skipped: dict[str, int] | None = None):
        self.keys = keys
        self.targets = targets
        self.classes = classes
        self.groups = [0] * len(keys)
        self.skipped: dict[str, int] = dict(skipped or {})
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.keys)

    @abstractmethod
    def load(self, index: int) -> Tensor:
        """The ``(3, H, W)`` ``uint8`` image of ``index``.

        Raises ``UnreadableImage`` (an ``OSError``) when the item's data cannot be read.
        """

    def __getitem__(self, index: int) -> Example:
        """Item ``index``; an image that fails to decode is counted once under
        ``skipped["unreadable image"]`` and replaced by the next readable item."""
        n = len(self)
        for attempt in range(n):
            i = (index + attempt) % n
            if i in self._bad:
                continue
            try:
                image = self.load(i)
            except READ_ERRORS as exc:
                self._bad.add(i)
                self.skipped["unreadable image"] = self.skipped.get("unreadable image", 0) + 1
                warnings.warn(f"skipping unreadable image {self.keys[i]!r}: {exc}", stacklevel=2)
                continue
            return Example(data=image, group=0, key=self.keys[i], labels=self.targets[i])
        raise RuntimeError("no item of the dataset could be read")


def warn_skipped(name: str, skipped: dict[str, int]) -> None:
    if skipped:
        detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(skipped.items()))
        warnings.warn(f"{name}: skipped {sum(skipped.values())} files ({detail})", stacklevel=3)


def held_out(keys: list[str], targets: list[int], fraction: float, salt: str = "test") -> set[int]:
    """Indices of a deterministic held-out share of each class (:func:`cpcframe.hold_out`:
    ``round(fraction·n)`` items, 1 to n-1 when the class has 2 or more, chosen by a hash of
    the key, so adding files moves few others)."""
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, t in enumerate(targets):
        by_class[t].append(i)
    out: set[int] = set()
    for members in by_class.values():
        out.update(members[p] for p in hold_out([keys[i] for i in members], fraction, salt))
    return out


def split_rows(keys: list[str], targets: list[int], fraction: float, split: str) -> list[int]:
    """Indices (in order) of ``split``: the :func:`held_out` share for ``"test"``, the rest
    for any other split."""
    test = held_out(keys, targets, fraction)
    return [i for i in range(len(keys)) if (i in test) == (split == "test")]
