"""The ``Probe`` interface: evaluate frozen features of a trained model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

if TYPE_CHECKING:
    from cpcframe.model import ContrastiveModel

#: ``{task: {feature_set: accuracy}}``, e.g. ``{"phone": {"cpc": 0.61, "random_init": 0.28}}``.
ProbeResults = dict[str, dict[str, float]]


@attrs.frozen(eq=False)
class ProbeContext:
    """What a probe gets besides the trained model.

    Attributes:
        run_dir: the run directory (probes may write files there).
        recipe: the resolved :class:`cpcframe.config.Recipe` of the run.
        device: where to compute features.
        baselines: also score the baselines (random-init model, hand-made features).
        random_model: an untrained model of the same architecture when ``baselines``.
        seed: seed for the probe's own randomness.
    """

    run_dir: Path
    recipe: Any
    device: torch.device
    baselines: bool = False
    random_model: "ContrastiveModel | None" = None
    seed: int = 0


class Probe(ABC):
    """Linear (or other) evaluation of frozen features."""

    @abstractmethod
    def run(self, model: "ContrastiveModel", context: ProbeContext) -> ProbeResults:
        """Score ``model`` (and baselines when asked); return task -> feature set -> accuracy."""
