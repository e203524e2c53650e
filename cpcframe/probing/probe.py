"""The ``Probe`` interface: evaluate frozen features of a trained model (a linear phone
classifier, a kNN over images, ABX); probes run inside a :class:`~cpcframe.ProbeHarness`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

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
