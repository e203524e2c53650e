"""Items a run left out: what the dataset skipped when it was built, and what it skips
while it is read, in the training process or in a loader worker.

A worker reads its own copy of the dataset, so what it counts there never reaches the
training process's ``dataset.skipped``; the loader hands each batch's skips over with
the batch (:class:`cpcframe.data.view_dataset.LoaderBatch`) and :class:`SkipLog` adds
them up. An item a dataset names (``dataset.skipped_items``) counts once, however many
workers met it. ``summary.json`` holds the counts; the run's skipped-items file (see
:mod:`cpcframe.runs.layout`) lists every item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

#: What a loader reports for one item read: (reason -> count added, ((key, reason), ...)).
SkipReport = tuple[dict[str, int], tuple[tuple[str, str], ...]]


def skipped_counts(dataset: Any) -> dict[str, int]:
    """``dataset.skipped`` as a plain dict (empty for a dataset without it)."""
    return dict(getattr(dataset, "skipped", None) or {})


def skipped_items(dataset: Any) -> list[tuple[str, str]]:
    """``dataset.skipped_items``: ``(key, reason)`` of every item it can name."""
    return [(str(k), str(r)) for k, r in getattr(dataset, "skipped_items", None) or ()]


class SkipLog:
    """The skips of one split: counts by reason and the named items.

    Attributes:
        split: ``train`` or ``test``.
        changed: something was added since :meth:`records` was last read.
    """

    def __init__(self, dataset: Any, split: str = "train"):
        self.split = split
        self._counts = Counter(skipped_counts(dataset))
        self._items: dict[str, str] = {}
        for key, reason in skipped_items(dataset):
            self._items.setdefault(key, reason)
        self.changed = True

    @property
    def counts(self) -> dict[str, int]:
        """Reason -> items skipped."""
        return {reason: n for reason, n in self._counts.items() if n}

    def add(self, report: SkipReport) -> None:
        """One item read's skips (from any process)."""
        added, items = report
        new = [(key, reason) for key, reason in items if key not in self._items]
        if items and len(items) == sum(added.values()):  # every skip named: count each item once
            for key, reason in new:
                self._counts[reason] += 1
        else:
            self._counts.update(added)
        for key, reason in new:
            self._items[key] = reason
        self.changed = self.changed or bool(new or added)

    def add_all(self, reports: Iterable[SkipReport]) -> None:
        for report in reports:
            self.add(report)

    def records(self) -> list[dict[str, Any]]:
        """One record per named item, then one ``count`` record per reason for the rest."""
        self.changed = False
        out: list[dict[str, Any]] = [{"split": self.split, "reason": reason, "key": key}
                                     for key, reason in self._items.items()]
        named = Counter(self._items.values())
        for reason, n in self._counts.items():
            if n - named[reason] > 0:
                out.append({"split": self.split, "reason": reason, "count": n - named[reason]})
        return out
