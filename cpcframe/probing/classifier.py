"""The ``ProbeClassifier`` interface: one way of scoring frozen features (``linear``,
``mlp``, a plugin's kNN), registered through ``register_probe_classifiers``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

import torch
from torch import Tensor


class Predictor(Protocol):
    """A fitted classifier."""

    def predict(self, x: Tensor) -> Tensor:
        """``(N, D)`` features -> ``(N,)`` predicted classes."""


def accuracy(predictor: Predictor, x: Tensor, y: Tensor) -> float:
    """Share of ``(N, D)`` examples whose predicted class is ``y (N,)``; NaN when ``N = 0``."""
    if len(y) == 0:
        return float("nan")
    predicted = predictor.predict(x)
    return float((predicted == y.to(predicted.device)).float().mean())


class ProbeClassifier(ABC):
    """A classifier a probe fits on frozen features, registered through
    ``register_probe_classifiers`` and named in a probe's ``classifiers = [...]``.

    Subclasses implement :meth:`fit`; :meth:`cross_validate` has a generic version (one
    fit per fold) that a classifier may replace with a faster one.
    """

    @abstractmethod
    def fit(self, x: Tensor, y: Tensor, num_classes: int, *, seed: int = 0) -> Predictor:
        """Fit on ``x (N, D)`` float features and ``y (N,)`` long classes in
        ``[0, num_classes)``; deterministic for a given ``seed``."""

    def cross_validate(self, x: Tensor, y: Tensor, folds: int, *, seed: int = 0) -> float:
        """Mean test accuracy over ``folds`` folds of a random permutation drawn from
        ``seed`` (skip-thought's protocol for MR, CR, SUBJ, MPQA); every classifier sees
        the same folds for a given seed."""
        from cpcframe.probing.linear import fold_masks

        test = fold_masks(x.shape[0], folds, torch.Generator().manual_seed(seed), x.device)
        num_classes = int(y.max()) + 1
        scores = [accuracy(self.fit(x[~mask], y[~mask], num_classes, seed=seed), x[mask], y[mask]) for mask in test]
        return sum(scores) / len(scores)
