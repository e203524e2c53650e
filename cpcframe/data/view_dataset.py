"""Applies the view sampler to dataset items, with a generator seeded per item and step."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cpcframe.batch import Batch
from cpcframe.data.sampling import ItemKey
from cpcframe.views import ViewSampler


class ViewDataset(Dataset):
    """``(step, position, index) -> (views, group, key)``.

    The generator handed to the view sampler is seeded from ``(seed, step, position)``,
    so the views of a step never depend on worker count, order or earlier steps.
    """

    def __init__(self, dataset: Any, view_sampler: ViewSampler, seed: int):
        self.dataset = dataset
        self.view_sampler = view_sampler
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: ItemKey):
        step, position, index = key
        example = self.dataset[index]
        state = np.random.SeedSequence([self.seed & 0xFFFFFFFF, 0x7155, step, position]).generate_state(2)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        views = self.view_sampler.sample(example, generator)
        return views, example.group, example.key


class Collator:
    """Batches ``ViewDataset`` items into a :class:`Batch` with the sampler's ``collate``."""

    def __init__(self, view_sampler: ViewSampler):
        self.view_sampler = view_sampler

    def __call__(self, items: list) -> Batch:
        views = self.view_sampler.collate([item[0] for item in items])
        groups = torch.tensor([item[1] for item in items], dtype=torch.long)
        return Batch(views=tuple(views), groups=groups, keys=tuple(item[2] for item in items))
