"""The probing interfaces: a ``Probe`` evaluates frozen features of a trained model; a
``ProbeClassifier`` is one way of scoring them (``linear``, ``mlp``, a plugin's kNN)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from cpcframe.model import ContrastiveModel
    from cpcframe.probing.harness import ProbeHarness

#: ``{task: {feature_set: accuracy}}``, e.g. ``{"phone": {"cpc": 0.61, "random_init": 0.28}}``.
ProbeResults = dict[str, dict[str, float]]


class Probe(ABC):
    """Linear (or other) evaluation of frozen features; ``config`` is the probe's options
    (its registered config class, usually a :class:`cpcframe.ProbeOptions`)."""

    def __init__(self, config: Any = None):
        self.config = config

    @abstractmethod
    def run(self, model: "ContrastiveModel", harness: "ProbeHarness") -> ProbeResults:
        """Score ``model`` (and baselines when ``harness.baselines``); return task ->
        feature set -> accuracy. ``harness`` gives the run's data, the random-init twin
        and the scoring of every classifier the probe's options name."""


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
