"""Assemble a model, a view sampler, datasets and loaders from a validated recipe."""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from cpcframe.config.recipe import Recipe
from cpcframe.data.cache_dir import cache_key, exclusive
from cpcframe.data.request import DatasetRequest, default_cache_dir
from cpcframe.data.sampling import StepBatchSampler
from cpcframe.data.view_dataset import Collator, ViewDataset
from cpcframe.data.workers import WorkerSignals
from cpcframe.dataset import Dataset, DatasetAdapter
from cpcframe.errors import UserError
from cpcframe.model import ContrastiveModel
from cpcframe.registry import Component, Registry
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
                  min_length: int | None = None, access: str = "random") -> Dataset:
    """The recipe's dataset for ``split``, checked (:func:`make_dataset`); a missing corpus
    is the plugin's UserError, an empty one the core's. ``min_length`` defaults to the view
    sampler's :meth:`~cpcframe.ViewSampler.min_length` (probes that read whole items pass 0);
    ``access`` is :attr:`cpcframe.DatasetRequest.access` (``"sequential"``: each item read
    once in order, as ``cpcframe shard`` does, so sources that can decode on access build
    no cache)."""
    if min_length is None:
        min_length = (view_sampler or build_view_sampler(recipe, registry)).min_length()
    request = DatasetRequest(split=split, cache_dir=default_cache_dir(), seed=recipe.seed,
                             min_length=min_length, run_dir=run_dir, access=access)
    spec = recipe.data.dataset
    # One preparation at a time per dataset (cache folder): the processes of a torchrun
    # job, or runs started together, would otherwise all decode the same corpus at once.
    lock = request.cache_dir / "locks" / f"{spec.name}-{cache_key([spec.name, spec.config], 16)}.lock"
    with exclusive(lock, waiting=f"waiting for another process preparing dataset {spec.name!r} ({lock})"):
        dataset = make_dataset(spec.component(registry), spec.config, request)
    if len(dataset) == 0:
        skipped = dataset.skipped
        detail = f" ({', '.join(f'{k}: {v}' for k, v in skipped.items())} skipped)" if skipped else ""
        raise UserError(f"dataset {spec.name!r} has no usable item{detail}")
    return dataset


def make_dataset(component: Component, config: Any, request: DatasetRequest) -> Dataset:
    """``component``'s factory called as ``factory(config, request=request)``, its result
    checked (:func:`checked_dataset`).

    A factory of an earlier release that takes ``context=`` instead still works, with a
    :class:`DeprecationWarning`.
    """
    keyword = _request_keyword(component.factory)
    if keyword == "context":
        warnings.warn(f"dataset {component.name!r} of plugin {component.plugin!r}: its factory takes "
                      "`context=`; dataset factories now take `request=` (a cpcframe.DatasetRequest)",
                      DeprecationWarning, stacklevel=2)
    return checked_dataset(component.build(config, **{keyword: request}), component)


def _request_keyword(factory: Any) -> str:
    """``"request"``, or ``"context"`` for a factory that takes only the old keyword."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a callable without a signature: assume the current one
        return "request"
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return "context" if "context" in parameters and "request" not in parameters and not takes_any else "request"


def checked_dataset(dataset: Any, component: Component) -> Dataset:
    """``dataset`` if it is a valid :class:`cpcframe.Dataset`; a map-style dataset that does
    not subclass it, wrapped in a :class:`~cpcframe.dataset.DatasetAdapter` (with a
    :class:`DeprecationWarning`); otherwise a ``TypeError`` naming the dataset, its plugin
    and what is missing."""
    where = f"dataset {component.name!r} of plugin {component.plugin!r}"
    if not isinstance(dataset, Dataset):
        missing = [m for m in ("__len__", "__getitem__") if not callable(getattr(type(dataset), m, None))]
        if missing:
            raise TypeError(f"{where}: the factory returned {type(dataset).__name__}, not a cpcframe.Dataset "
                            f"(it has no {' and no '.join(missing)})")
        warnings.warn(f"{where}: {type(dataset).__name__} does not subclass cpcframe.Dataset; it is read "
                      "through an adapter, which a later release will remove (subclass cpcframe.Dataset)",
                      DeprecationWarning, stacklevel=3)
        dataset = DatasetAdapter(dataset)
    groups, skipped = dataset.groups, dataset.skipped
    if groups is not None and (not hasattr(groups, "__len__") or len(groups) != len(dataset)):
        got = f"{len(groups)} entries" if hasattr(groups, "__len__") else f"a {type(groups).__name__}"
        raise TypeError(f"{where}: groups must be None or a sequence of {len(dataset)} group ids "
                        f"(one per item), got {got}")
    if not isinstance(skipped, Mapping) or not all(isinstance(v, numbers.Integral) for v in skipped.values()):
        raise TypeError(f"{where}: skipped must map reasons to counts (dict[str, int]), got {skipped!r}")
    if dataset.test_split_available not in (True, False):
        raise TypeError(f"{where}: test_split_available must be True or False, "
                        f"got {dataset.test_split_available!r}")
    return dataset


def dataset_groups(dataset: Dataset) -> list[int]:
    """``dataset.groups`` as a list, ``[0, 0, ...]`` when it has none."""
    return [0] * len(dataset) if dataset.groups is None else list(dataset.groups)


def build_loader(recipe: Recipe, dataset: Dataset, view_sampler: ViewSampler, *, start: int, stop: int,
                 rank: int = 0, world_size: int = 1, num_workers: int | None = None) -> DataLoader:
    """A loader whose ``i``-th batch is the one of step ``start + i`` (``num_workers``:
    the recipe's ``data.num_workers`` unless given)."""
    data = recipe.data
    try:
        if getattr(dataset, "shard_items", None) is not None:  # a sharded corpus: shard-local order
            from cpcframe.shards.sampler import ShardStepSampler

            sampler = ShardStepSampler(dataset.shard_items, data.batch_size, seed=recipe.seed, start=start,
                                       stop=stop, rank=rank, world_size=world_size,
                                       group_size=data.group_size, groups=dataset.groups,
                                       streams=getattr(dataset, "streams", 0))
        else:
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
        # Workers leave a job's SIGTERM / Ctrl-C to the main process (it checkpoints first).
        worker_init_fn=WorkerSignals() if workers else None,
        # Its own generator: creating the iterator must not draw from the global RNG,
        # or a resumed run would see different negatives than an uninterrupted one.
        generator=torch.Generator().manual_seed(recipe.seed),
    )
