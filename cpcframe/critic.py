"""The ``Critic`` interface: features of all views -> the :class:`Contrast` problems to solve."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from torch import nn

from cpcframe.batch import Batch
from cpcframe.contrast import Contrast
from cpcframe.encoder import Features


class Critic(nn.Module, ABC):
    """Turns latents and contexts into queries, keys and positives.

    The critic owns the prediction maps (CPC's ``W_k``) and decides what is predicted
    from what; scoring, negatives and the loss are the InfoNCE engine's job, so every
    critic gets every negative policy and score option for free.

    * CPC sequences: queries ``W_k c_t``, keys ``z``, positive ``t + k``.
    * CPC grids: queries from context row ``i``, positives in row ``i + k``.
    * AMDIM: queries are one view's global (or sampled local) features, keys the other
      view's local maps; every location of the same image is a positive.
    """

    @abstractmethod
    def forward(self, latents: Sequence[Features], contexts: Sequence[Features],
                batch: Batch) -> list[Contrast]:
        """One entry per view in ``latents`` and ``contexts``; returns the contrasts."""

    def example_input(self, batch_size: int = 4) -> tuple[list[Features], list[Features], Batch]:
        """Small valid ``(latents, contexts, batch)`` for the contract tests."""
        raise NotImplementedError(f"{type(self).__name__} does not implement example_input()")
