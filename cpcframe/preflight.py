"""What can be known before training: settings that only make sense together.

:func:`check_model_on_views` runs the recipe's model once, without gradient, on two
views the view sampler cuts from its own example (:meth:`cpcframe.ViewSampler.example`)
and reads the critic's contrasts. It finds, as a located :class:`~cpcframe.RecipeError`:

* a view the model cannot run on (a window shorter than the encoder's receptive field),
  located at the stage that failed (``data.views``, ``model.encoder``, ``model.context``,
  ``model.critic``);
* prediction steps without a single target (4 steps ahead in a window of 3 latents),
  whose loss would be logged as 0 however long the run trains;
* ``loss.num_negatives`` above the candidates a query has (sampling would repeat
  them), or a negative policy that leaves a query none;
* ``loss.share_negatives`` with a critic whose contrasts have no query groups (it would
  change nothing).

``cpcframe check --build`` and the trainer (before its first step) run it; both leave
every random number generator as they found it, so resumed runs stay exact.
:func:`check_batch_fits` compares ``data.batch_size`` with a dataset's size, which only
the trainer knows (building a dataset can mean decoding a corpus).
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from cpcframe.batch import Batch
from cpcframe.config.recipe import Recipe
from cpcframe.contrast import Contrast
from cpcframe.errors import Problem, RecipeError
from cpcframe.model import ContrastiveModel
from cpcframe.views import ViewSampler

#: Errors of running a model on a view that does not fit it (shapes, sizes); anything
#: else is a bug and propagates.
SHAPE_ERRORS = (RuntimeError, ValueError, IndexError)
_DRY_BATCH = 2


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Python's, NumPy's and torch's (CPU and CUDA) generators are restored on exit."""
    python, numpy = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def _shape(view) -> str:
    if isinstance(view, torch.Tensor):
        return str(tuple(view.shape))
    return "{" + ", ".join(f"{k}: {tuple(v.shape)}" for k, v in view.items()) + "}"


def check_model_on_views(recipe: Recipe, model: ContrastiveModel, view_sampler: ViewSampler, *,
                         world_size: int = 1) -> None:
    """Run ``model`` on views of ``view_sampler`` and check what the contrasts allow (see
    the module docstring). ``world_size``: processes whose batches share negatives.

    Raises:
        RecipeError: every problem found, located by key path.
    """
    try:
        example = view_sampler.example()
    except NotImplementedError:  # a sampler without an example: nothing to try the model on
        return
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    views_name = f"data.views ({recipe.data.views.name!r})"
    with preserved_rng(), torch.no_grad(), _eval_mode(model):
        generator = torch.Generator().manual_seed(recipe.seed)
        try:
            samples = [view_sampler.sample(example, generator) for _ in range(_DRY_BATCH)]
            views = tuple(view_sampler.collate(samples))
        except SHAPE_ERRORS as exc:
            raise RecipeError([Problem("data.views", f"cannot cut views from its own example: {exc}")]) from None
        batch = Batch(views, torch.arange(_DRY_BATCH), tuple(f"example-{i}" for i in range(_DRY_BATCH)))
        batch = batch.to(device)
        shapes = ", ".join(_shape(v[0] if isinstance(v, torch.Tensor) else {k: t[0] for k, t in v.items()})
                           for v in batch.views)
        stage, name = "model.encoder", recipe.model.encoder.name
        try:
            latents = [model.encoder(v) for v in batch.views]
            stage, name = "model.context", recipe.model.context.name
            contexts = [model.context(z) for z in latents]
            stage, name = "model.critic", recipe.model.critic.name
            contrasts = model.critic(latents, contexts, batch)
        except SHAPE_ERRORS as exc:
            raise RecipeError([Problem(stage, f"{name!r} cannot run on a view of {views_name} of shape "
                                              f"{shapes}: {_first_line(exc)} (is the view smaller than "
                                              "the encoder's receptive field, or the model too deep for it?)")]) from None
    problems: list[Problem] = _sharing_problems(recipe, contrasts)
    for contrast in contrasts:
        problems += _step_problems(contrast, views_name)
        problems += _negative_problems(recipe, contrast, world_size)
    if problems:
        raise RecipeError(problems)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _step_problems(contrast: Contrast, views_name: str) -> list[Problem]:
    """Steps none of whose queries has a positive: their loss is 0 by construction."""
    has_target = (contrast.positives >= 0).any(dim=1).cpu()  # (Q,)
    covered = torch.zeros(contrast.num_steps, dtype=torch.bool)
    covered[contrast.steps.cpu()[has_target]] = True
    missing = [contrast.metric_name(k) for k in range(contrast.num_steps) if not covered[k]]
    if not missing:
        return []
    locations = contrast.keys.shape[1]
    return [Problem("model.critic", f"{len(missing)} of its {contrast.num_steps} prediction steps "
                                    f"({', '.join(missing)}) have no target in a view of {views_name}, which "
                                    f"gives {locations} locations: their loss would always be 0; predict "
                                    "fewer steps, or cut longer views")]


def _sharing_problems(recipe: Recipe, contrasts: list[Contrast]) -> list[Problem]:
    """``loss.share_negatives`` where no contrast has a query group to share them."""
    if not recipe.loss.share_negatives or any(c.query_group > 1 for c in contrasts):
        return []
    return [Problem("loss.share_negatives", f"has no effect: the contrasts of critic "
                                            f"{recipe.model.critic.name!r} have no query groups "
                                            "(Contrast.query_group = 1), so every query draws its own "
                                            "negatives anyway; remove it")]


def _negative_problems(recipe: Recipe, contrast: Contrast, world_size: int) -> list[Problem]:
    """``loss.num_negatives`` against the most candidates a query can have."""
    loss = recipe.loss
    if contrast.keys.shape[0] != contrast.batch_size:  # keys beyond the local items: unknown layout
        return []
    items = recipe.data.batch_size * (world_size if recipe.train.gather_negatives else 1)
    locations = contrast.keys.shape[1]
    valid = contrast.positives >= 0  # (Q, P)
    if loss.share_negatives and contrast.query_group > 1:  # a group excludes all its positives
        valid = valid.reshape(-1, contrast.query_group * valid.shape[1])
    with_target = valid.any(dim=1)
    if not bool(with_target.any()):
        return []
    positives = int(valid.sum(dim=1)[with_target].min())  # the query (or group) with the fewest positives
    pools = {"batch": items * locations - positives, "same_sequence": locations - positives,
             "other_sequences": (items - 1) * locations}
    if recipe.data.group_size:
        pools["same_group"] = recipe.data.group_size * locations - positives
    pool = pools.get(loss.negatives)
    if pool is None:  # same_group without groups of a known size, or a plugin's policy
        return []
    detail = (f"negatives = {loss.negatives!r} with data.batch_size = {recipe.data.batch_size}"
              + (f" x {world_size} processes" if items != recipe.data.batch_size else "")
              + f" and {locations} locations per item")
    if pool <= 0:
        return [Problem("loss.negatives", f"leaves a query without a single negative ({detail}); "
                                          "choose another policy or a larger batch")]
    if loss.num_negatives > pool:
        return [Problem("loss.num_negatives", f"= {loss.num_negatives}, but a query has at most {pool} "
                                              f"candidate negatives ({detail}): sampling would repeat "
                                              f"them; use at most {pool}, or 0 for all of them")]
    return []


def check_batch_fits(recipe: Recipe, dataset_size: int, *, split: str = "train",
                     world_size: int = 1) -> None:
    """A global batch larger than the split would hold some items twice (each then a
    negative of itself): a :class:`RecipeError` for training, a warning for another split.
    Grouped batching (``data.group_size``) checks its groups itself."""
    data = recipe.data
    if data.group_size or data.batch_size * world_size <= dataset_size:
        return
    per_process = f" on each of {world_size} processes" if world_size > 1 else ""
    message = (f"= {data.batch_size}{per_process}, but the {split!r} split has only {dataset_size} usable "
               f"items: every batch would hold some items twice; use at most "
               f"{max(dataset_size // world_size, 1)}")
    if split == "train":
        raise RecipeError([Problem("data.batch_size", message)])
    warnings.warn(f"data.batch_size {message} (validation batches repeat items)", stacklevel=2)
