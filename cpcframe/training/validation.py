"""Held-out InfoNCE loss and accuracy during training (``train.validate_every``).

CPC_audio reports the criterion's loss and accuracy on its validation split after every
epoch; without it, overfitting a small corpus looks like progress. Every
``validate_every`` steps the trainer evaluates the model on the same
``validate_batches`` batches of the dataset's ``"test"`` split and logs ``val/loss``,
``val/acc`` and the per-step ``val/acc/k1 ...`` beside the training metrics.

Comparable across steps and harmless to training:

* the batches are the same every time (the step-indexed sampler from step 0, the view
  sampler seeded by the recipe's seed);
* the negatives are drawn from a generator seeded the same way every time, inside
  ``torch.random.fork_rng``, so validating never moves the training RNG and a resumed
  run still equals an uninterrupted one;
* the model runs in eval mode under ``no_grad`` (batch norm uses its running statistics),
  with its negatives from the local batch only (no cross-process gather): each process
  validates its share of the batches and the metrics are averaged over processes.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any, Protocol

import numpy as np
import torch

from cpcframe.batch import Batch
from cpcframe.build import build_dataset, build_loader
from cpcframe.config.recipe import Recipe
from cpcframe.errors import UserError
from cpcframe.model import ContrastiveModel, contrastive_loss
from cpcframe.negatives import resolve_policy
from cpcframe.preflight import check_batch_fits
from cpcframe.registry import Registry
from cpcframe.training.distributed import DistributedRuntime
from cpcframe.views import ViewSampler

#: Added to the recipe's seed for the validation negatives (any fixed offset would do).
NEGATIVES_SEED_OFFSET = 7919


class ModelRunner(Protocol):
    """What validation shares with training (:class:`cpcframe.training.trainer.Trainer`):
    the model, and how a batch is put on the device and run."""

    @property
    def model(self) -> ContrastiveModel:
        """The model being trained."""

    def prepare(self, batch: Batch) -> Batch:
        """A loader's batch on the device, in the training memory format."""

    def autocast(self) -> contextlib.AbstractContextManager:
        """The training precision's autocast context."""


class Validator:
    """Evaluates a model on the fixed validation batches; see the module docstring."""

    def __init__(self, recipe: Recipe, registry: Registry, view_sampler: ViewSampler, *,
                 dist: DistributedRuntime, device: torch.device, run_dir: Any = None):
        self.recipe = recipe
        self.view_sampler = view_sampler
        self.dist = dist
        self.device = device
        self.negative_policy = resolve_policy(recipe.loss.negatives, registry)
        try:
            self.dataset = build_dataset(recipe, registry, split="test", run_dir=run_dir,
                                         view_sampler=view_sampler)
        except UserError as exc:
            raise UserError(f"train.validate_every needs the dataset's 'test' split: {exc} "
                            "(or set train.validate_every = 0)") from None
        check_batch_fits(recipe, len(self.dataset), split="test", world_size=dist.world_size)
        self._loader()  # fail now, not after hours of training, when the split cannot be batched
        self.probe, self.harness = None, None
        if recipe.train.validate_probe is not None:  # e.g. ABX on a subsample of the items
            from cpcframe.probing.harness import ProbeHarness

            spec = recipe.train.validate_probe
            self.probe = spec.build(registry)
            self.harness = ProbeHarness(None, recipe, device, baselines=False, registry=registry,
                                        options=spec.config)

    def _loader(self):
        train = self.recipe.train
        try:
            return build_loader(self.recipe, self.dataset, self.view_sampler, start=0,
                                stop=train.validate_batches, rank=self.dist.rank,
                                world_size=self.dist.world_size, num_workers=0)
        except UserError as exc:
            raise UserError(f"train.validate_every: the 'test' split cannot be batched: {exc}") from None

    @torch.no_grad()
    def run(self, trainer: ModelRunner) -> dict[str, float]:
        """``{"val/loss": ..., "val/acc": ..., "val/acc/k1": ...}`` of ``trainer.model``, run
        as training runs it; means over the batches and the processes."""
        model = trainer.model
        was_training = model.training
        model.eval()
        values: dict[str, list[float]] = defaultdict(list)  # metric -> one value per batch
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.recipe.seed + NEGATIVES_SEED_OFFSET)
                for batch in self._loader():
                    batch = trainer.prepare(batch)
                    with trainer.autocast():
                        out = contrastive_loss(model(batch), self.recipe.loss, policy=self.negative_policy)
                    for key, value in out.metrics.items():
                        values[key].append(value)
        finally:
            model.train(was_training)
        local = {f"val/{k}": float(np.mean(v)) for k, v in values.items()}
        if self.probe is not None:
            local.update(self._probe(model))
        return self.dist.mean_metrics(local)

    def _probe(self, model: ContrastiveModel) -> dict[str, float]:
        """``train.validate_probe``'s results as ``val/<task>/<features>``; every process runs it
        (deterministic), in eval mode, with the random number generators left as they were."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self.harness.eval_mode(model):
            results = self.probe.run(model, self.harness)
        return {f"val/{task}/{name}": float(value) for task, scores in results.items()
                for name, value in scores.items()}
