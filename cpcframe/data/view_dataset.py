"""Applies the view sampler to dataset items, with a generator seeded per item and step."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset

from cpcframe.batch import Batch
from cpcframe.data.sampling import ItemKey
from cpcframe.views import ViewSampler


@attrs.frozen(eq=False)
class LoaderBatch(Batch):
    """A loader's batch, with what the dataset skipped while its items were read.

    Attributes:
        skips: one ``(reason -> count, ((key, reason), ...))`` per item read that skipped
            something (an unreadable file replaced by the next one); read in a loader
            worker, these never reach the training process's dataset otherwise (see
            :mod:`cpcframe.training.skips`).
    """

    skips: tuple = ()


def _skip_state(dataset: Any) -> tuple[dict[str, int], int]:
    return dict(getattr(dataset, "skipped", None) or {}), len(getattr(dataset, "skipped_items", None) or ())


class ViewDataset(Dataset):
    """``(step, position, index) -> (views, group, key, skips)``.

    The generator handed to the view sampler is seeded from ``(seed, step, position)``,
    so the views of a step never depend on worker count, order or earlier steps.
    ``skips`` is what reading the item added to ``dataset.skipped`` (and
    ``dataset.skipped_items``), ``None`` when nothing.
    """

    def __init__(self, dataset: Any, view_sampler: ViewSampler, seed: int):
        self.dataset = dataset
        self.view_sampler = view_sampler
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: ItemKey):
        step, position, index = key
        counts, named = _skip_state(self.dataset)
        example = self.dataset[index]
        skips = None
        after, named_after = _skip_state(self.dataset)
        if after != counts or named_after != named:
            added = {r: n - counts.get(r, 0) for r, n in after.items() if n != counts.get(r, 0)}
            items = tuple((str(k), str(r)) for k, r in list(getattr(self.dataset, "skipped_items", None) or ())[named:])
            skips = (added, items)
        state = np.random.SeedSequence([self.seed & 0xFFFFFFFF, 0x7155, step, position]).generate_state(2)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        views = self.view_sampler.sample(example, generator)
        return views, example.group, example.key, skips


class Collator:
    """Batches ``ViewDataset`` items into a :class:`LoaderBatch` with the sampler's ``collate``."""

    def __init__(self, view_sampler: ViewSampler):
        self.view_sampler = view_sampler

    def __call__(self, items: list) -> Batch:
        views = self.view_sampler.collate([item[0] for item in items])
        groups = torch.tensor([item[1] for item in items], dtype=torch.long)
        return LoaderBatch(views=tuple(views), groups=groups, keys=tuple(item[2] for item in items),
                           skips=tuple(item[3] for item in items if len(item) > 3 and item[3]))
