"""The built-in probe classifiers, registered through ``register_probe_classifiers`` like
any plugin's (this module is one of :data:`cpcframe.plugins.CORE_PLUGINS`):

* ``linear``: multinomial logistic regression on standardised features, the linear
  evaluation of CPC and AMDIM (:mod:`cpcframe.probing.linear`); options ``l2``,
  ``validation_fraction`` and ``iterations`` of the probe's own section;
* ``mlp``: one hidden layer, the papers' second row (:mod:`cpcframe.probing.mlp`);
  options in ``[probe.mlp]``.

Results of ``linear`` are named after the feature set (``cpc``), every other classifier's
``<features>_<classifier>`` (``cpc_mlp``, ``random_init_knn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor

from cpcframe.hookspecs import hookimpl
from cpcframe.probing.classifier import Predictor, ProbeClassifier
from cpcframe.probing.linear import cross_validate, fit_classifier
from cpcframe.probing.mlp import MLPProbeConfig, fit_mlp_classifier

if TYPE_CHECKING:
    from cpcframe.probing.options import ProbeOptions


def result_name(features: str, classifier: str) -> str:
    """``cpc`` for the linear probe of ``cpc`` features, ``cpc_mlp`` for the MLP."""
    return features if classifier == "linear" else f"{features}_{classifier}"


class LinearProbeClassifier(ProbeClassifier):
    """Logistic regression; with several ``l2`` candidates each fit (each fold) picks its
    penalty on a held-out ``validation_fraction`` of its own training data."""

    def __init__(self, l2: Sequence[float] = (1e-4,), *, validation_fraction: float = 0.1, iterations: int = 100):
        self.l2, self.validation_fraction, self.iterations = tuple(l2), validation_fraction, iterations

    def fit(self, x: Tensor, y: Tensor, num_classes: int, *, seed: int = 0) -> Predictor:
        return fit_classifier(x, y, num_classes, self.l2, seed=seed, validation_fraction=self.validation_fraction,
                              iterations=self.iterations)

    def cross_validate(self, x: Tensor, y: Tensor, folds: int, *, seed: int = 0) -> float:
        # Every fold and penalty in one batched L-BFGS run.
        return cross_validate(x, y, folds, self.l2, seed=seed, validation_fraction=self.validation_fraction,
                              iterations=self.iterations)


class MLPProbeClassifier(ProbeClassifier):
    """AMDIM's one-hidden-layer MLP, trained with AdamW on mini-batches."""

    def __init__(self, config: MLPProbeConfig = MLPProbeConfig()):
        self.config = config

    def fit(self, x: Tensor, y: Tensor, num_classes: int, *, seed: int = 0) -> Predictor:
        return fit_mlp_classifier(x, y.long(), num_classes, self.config, seed=seed)


def build_linear(*, options: "ProbeOptions") -> LinearProbeClassifier:
    """Logistic regression on standardised features (L-BFGS): the papers' linear evaluation."""
    return LinearProbeClassifier(options.l2, validation_fraction=options.validation_fraction,
                                 iterations=options.iterations)


def build_mlp(*, options: "ProbeOptions") -> MLPProbeClassifier:
    """One hidden layer (AMDIM's MLPClassifier; CPC's and AMDIM's second row); [probe.mlp]."""
    return MLPProbeClassifier(options.mlp)


@hookimpl
def register_probe_classifiers(register) -> None:
    # No config class of their own: both read the probe's shared options.
    register("linear", build_linear)
    register("mlp", build_mlp)
