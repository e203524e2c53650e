"""The classifiers a probe can fit on frozen features: ``linear`` (the papers' main
protocol, :mod:`cpcframe.probing.linear`) and ``mlp`` (one hidden layer, the papers' second
row, :mod:`cpcframe.probing.mlp`).

A probe config holds ``classifiers = ["linear"]`` (add ``"mlp"`` for both) and an
``mlp`` table; results of the MLP are reported under ``<features>_mlp`` beside the
linear ones (``cpc``, ``cpc_mlp``, ``random_init``, ``random_init_mlp``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from cpcframe.probing.linear import LinearClassifier, cross_validate, fit_classifier, fold_masks, train_test
from cpcframe.probing.mlp import MLPClassifier, MLPProbeConfig, fit_mlp_classifier

CLASSIFIERS = ("linear", "mlp")


def classifiers_validator(_instance: Any, attribute: Any, value: tuple[str, ...]) -> None:
    """attrs validator: a non-empty list of distinct names from :data:`CLASSIFIERS`."""
    if not value:
        raise ValueError(f"must name at least one of {', '.join(CLASSIFIERS)}")
    for name in value:
        if name not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}")
    if len(set(value)) != len(value):
        raise ValueError(f"names a classifier twice: {list(value)}")


def result_name(features: str, classifier: str) -> str:
    """``cpc`` for the linear probe of ``cpc`` features, ``cpc_mlp`` for the MLP."""
    return features if classifier == "linear" else f"{features}_{classifier}"


def fit_probe_classifier(classifier: str, x: Tensor, y: Tensor, num_classes: int, *, l2: float,
                         iterations: int, mlp: MLPProbeConfig, seed: int = 0) -> LinearClassifier | MLPClassifier:
    """Fit ``classifier`` on ``x (N, D)``, ``y (N,)``; both kinds have ``predict`` and ``accuracy``."""
    if classifier == "linear":
        return fit_classifier(x, y, num_classes, [l2], iterations=iterations, seed=seed)
    if classifier == "mlp":
        return fit_mlp_classifier(x, y.long(), num_classes, mlp, seed=seed)
    raise ValueError(f"unknown classifier {classifier!r}; choose from {', '.join(CLASSIFIERS)}")


def cross_validate_probe(classifier: str, x: Tensor, y: Tensor, folds: int, *, l2_grid: Sequence[float],
                         validation_fraction: float, iterations: int, mlp: MLPProbeConfig, seed: int = 0) -> float:
    """Mean test accuracy over ``folds`` folds (skip-thought's protocol for MR, CR, SUBJ,
    MPQA); the linear probe picks its penalty from ``l2_grid`` per fold, the MLP trains
    on each fold's training part. Both see the same folds for a given ``seed``."""
    if classifier == "linear":
        return cross_validate(x, y, folds, l2_grid, seed=seed, validation_fraction=validation_fraction,
                              iterations=iterations)
    test = fold_masks(x.shape[0], folds, torch.Generator().manual_seed(seed), x.device)
    num_classes = int(y.max()) + 1
    accuracies = [fit_probe_classifier(classifier, x[~mask], y[~mask], num_classes, l2=0.0, iterations=iterations,
                                       mlp=mlp, seed=seed).accuracy(x[mask], y[mask]) for mask in test]
    return sum(accuracies) / len(accuracies)


def train_test_probe(classifier: str, x: Tensor, y: Tensor, x_test: Tensor, y_test: Tensor, *,
                     l2_grid: Sequence[float], validation_fraction: float, iterations: int,
                     mlp: MLPProbeConfig, seed: int = 0) -> float:
    """Accuracy on a fixed test set of one model fitted on all of ``x`` (TREC's protocol)."""
    if classifier == "linear":
        return train_test(x, y, x_test, y_test, l2_grid, seed=seed, validation_fraction=validation_fraction,
                          iterations=iterations)
    num_classes = int(max(int(y.max()), int(y_test.max()))) + 1
    return fit_probe_classifier(classifier, x, y, num_classes, l2=0.0, iterations=iterations, mlp=mlp,
                                seed=seed).accuracy(x_test, y_test)

