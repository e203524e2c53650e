"""A test plugin that adds a probe classifier through the public hook: weighted
k-nearest neighbours on cosine similarity, the kNN evaluation solo-learn and lightly report
(Wu et al. 2018, "Unsupervised feature learning via non-parametric instance
discrimination", section 3.4): the ``k`` most similar training features vote for their
class with weight ``exp(similarity / temperature)``.

Register it with ``make_plugin_manager([knn_classifier_plugin])``; a recipe then names it
in ``[probe] classifiers = ["linear", "knn"]`` and sets it in ``[probe.knn]``.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

import cpcframe


@attrs.frozen
class KNNOptions:
    """Options of ``knn`` (``[probe.knn]``).

    Attributes:
        k: neighbours that vote.
        temperature: each vote weighs exp(cosine similarity / temperature).
    """

    k: int = attrs.field(default=20, validator=cpcframe.validators.positive)
    temperature: float = attrs.field(default=0.07, validator=cpcframe.validators.positive)


class NearestNeighbours:
    """A fitted kNN: the training features (unit length) and their classes."""

    def __init__(self, x: Tensor, y: Tensor, num_classes: int, options: KNNOptions):
        self.bank, self.classes = F.normalize(x.float(), dim=1), y.long()
        self.num_classes, self.options = num_classes, options

    def predict(self, x: Tensor) -> Tensor:
        """``(M, D) -> (M,)``: the class with the largest weighted vote (the first on ties)."""
        similarity = F.normalize(x.float(), dim=1) @ self.bank.T  # (M, N)
        top, index = similarity.topk(min(self.options.k, len(self.classes)), dim=1)  # (M, k)
        votes = torch.zeros(len(x), self.num_classes, device=x.device)
        votes.scatter_add_(1, self.classes[index], (top / self.options.temperature).exp())
        return votes.argmax(1)


class KNNClassifier(cpcframe.ProbeClassifier):
    def __init__(self, options: KNNOptions):
        self.options = options

    def fit(self, x: Tensor, y: Tensor, num_classes: int, *, seed: int = 0) -> NearestNeighbours:
        return NearestNeighbours(x, y, num_classes, self.options)  # nothing to train, nothing random


def build_knn(config: KNNOptions, *, options: cpcframe.ProbeOptions) -> KNNClassifier:
    """Weighted k-nearest neighbours on cosine similarity (solo-learn's and lightly's kNN)."""
    return KNNClassifier(config)


@cpcframe.hookimpl
def register_probe_classifiers(register):
    register("knn", build_knn, KNNOptions)
