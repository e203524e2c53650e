"""The classifiers a probe can fit on frozen features: ``linear`` (the papers' main
protocol, :mod:`cpcframe.linear_probe`) and ``mlp`` (one hidden layer, the papers' second
row, :mod:`cpcframe.mlp_probe`).

A probe config holds ``classifiers = ["linear"]`` (add ``"mlp"`` for both) and an
``mlp`` table; results of the MLP are reported under ``<features>_mlp`` beside the
linear ones (``cpc``, ``cpc_mlp``, ``random_init``, ``random_init_mlp``, ...).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from cpcframe.linear_probe import LinearClassifier, fit_classifier
from cpcframe.mlp_probe import MLPClassifier, MLPProbeConfig, fit_mlp_classifier

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


__all__ = ["CLASSIFIERS", "classifiers_validator", "fit_probe_classifier", "result_name"]
