"""The ``ViewSampler`` interface: an example -> the views a model contrasts."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from cpcframe.batch import Example, View, stack_views


class ViewSampler(ABC):
    """Cuts or augments one example into ``num_views`` views, on the data side.

    It runs in data-loader workers, once per example, with a generator seeded from
    ``(seed, epoch, index)`` so that a resumed run sees the very same views. CPC uses one
    view (a window of a sequence or a grid of patches); AMDIM two augmented views.

    Attributes:
        num_views: views produced per example.
    """

    num_views: int = 1

    @abstractmethod
    def sample(self, example: Example, generator: torch.Generator) -> tuple[View, ...]:
        """Return ``num_views`` views of ``example``, each without a batch axis."""

    def collate(self, samples: list[tuple[View, ...]]) -> tuple[View, ...]:
        """Batch per-example views; the default stacks each view position."""
        return tuple(stack_views([s[i] for s in samples]) for i in range(self.num_views))

    def example(self) -> Example:
        """A small valid example for the contract tests."""
        raise NotImplementedError(f"{type(self).__name__} does not implement example()")

    def min_length(self) -> int:
        """Smallest raw example (in the dataset's natural unit) this sampler can use; 0 = any."""
        return 0
