"""Assemble a model, a view sampler, datasets and loaders from a validated recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from cpcframe.config.recipe import Recipe
from cpcframe.data.cache_dir import cache_key, exclusive
from cpcframe.data.request import DatasetRequest, default_cache_dir
from cpcframe.data.sampling import StepBatchSampler
from cpcframe.data.view_dataset import Collator, ViewDataset
from cpcframe.errors import UserError
from cpcframe.model import ContrastiveModel
from cpcframe.registry import Registry
from cpcframe.views import ViewSampler


def build_model(recipe: Recipe, registry: Registry) -> ContrastiveModel:
    """Encoder, context model and critic, wired by their ``output_dim``s."""
    model = recipe.model
    encoder = model.encoder.build(registry)
    context = model.context.build(registry, input_dim=encoder.output_dim)
    critic = model.critic.build(registry, latent_dim=encoder.output_dim, context_dim=context.output_dim)
    return ContrastiveModel(encoder, context, critic)


def build_view_sampler(recipe: Recipe, registry: Registry) -> ViewSampler:
    return recipe.data.views.build(registry)


def build_dataset(recipe: Recipe, registry: Registry, *, split: str = "train",
                  run_dir: Path | None = None, view_sampler: ViewSampler | None = None,
                  min_length: int | None = None) -> Any:
    """The recipe's dataset for ``split`` (items of at least ``min_length``, by default the
    view sampler's); a missing corpus is the plugin's UserError."""
    view_sampler = view_sampler or build_view_sampler(recipe, registry)
    min_length = view_sampler.min_length() if min_length is None else min_length
    context = DatasetRequest(split=split, cache_dir=default_cache_dir(), seed=recipe.seed,
                             min_length=min_length, run_dir=run_dir)
    spec = recipe.data.dataset
    # One preparation at a time per dataset (cache folder): the processes of a torchrun
    # job, or runs started together, would otherwise all decode the same corpus at once.
    lock = context.cache_dir / "locks" / f"{spec.name}-{cache_key([spec.name, spec.config], 16)}.lock"
    with exclusive(lock, waiting=f"waiting for another process preparing dataset {spec.name!r} ({lock})"):
        dataset = spec.build(registry, context=context)
    if len(dataset) == 0:
        skipped = getattr(dataset, "skipped", {}) or {}
        detail = f" ({', '.join(f'{k}: {v}' for k, v in skipped.items())} skipped)" if skipped else ""
        raise UserError(f"dataset {recipe.data.dataset.name!r} has no usable item{detail}")
    return dataset


def dataset_groups(dataset: Any) -> list[int]:
    groups = getattr(dataset, "groups", None)
    if groups is None:
        return [0] * len(dataset)
    if len(groups) != len(dataset):
        raise ValueError(f"dataset.groups has {len(groups)} entries for {len(dataset)} items")
    return list(groups)


def build_loader(recipe: Recipe, dataset: Any, view_sampler: ViewSampler, *, start: int, stop: int,
                 rank: int = 0, world_size: int = 1, num_workers: int | None = None) -> DataLoader:
    """A loader whose ``i``-th batch is the one of step ``start + i`` (``num_workers``:
    the recipe's ``data.num_workers`` unless given)."""
    data = recipe.data
    try:
        sampler = StepBatchSampler(dataset_groups(dataset), data.batch_size, seed=recipe.seed,
                                   start=start, stop=stop, group_size=data.group_size,
                                   rank=rank, world_size=world_size)
    except ValueError as exc:
        raise UserError(f"data: {exc}") from None
    workers = data.num_workers if num_workers is None else num_workers
    return DataLoader(
        ViewDataset(dataset, view_sampler, recipe.seed),
        batch_sampler=sampler,
        collate_fn=Collator(view_sampler),
        num_workers=workers,
        pin_memory=data.pin_memory and torch.cuda.is_available(),
        prefetch_factor=data.prefetch_factor if workers else None,
        persistent_workers=False,
        # Its own generator: creating the iterator must not draw from the global RNG,
        # or a resumed run would see different negatives than an uninterrupted one.
        generator=torch.Generator().manual_seed(recipe.seed),
    )
