"""Continuing a run (``--resume``): what may change, and what the trainer applies itself.

The run's ``recipe.toml`` records what it runs, so a resume compares the recipe it is
given (the saved one with ``--set`` values) with the saved one before it writes
anything, and then:

* applies what a checkpoint would otherwise override: the optimizer's ``train.lr``,
  ``train.betas``, ``train.eps`` and ``train.weight_decay`` come back from the
  checkpoint with the saved values, so :func:`apply_optimizer_settings` sets the
  recipe's (the learning-rate schedule continues from the current step);
* refuses what cannot continue, located by key path: a model whose weights do not fit
  the checkpoint (:func:`misfit_error`), a switch to or from ``fp16`` (the grad
  scaler's state), or ``train.steps`` already reached (the trainer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpcframe.config.recipe import Recipe, TrainSection
from cpcframe.config.structure import unstructure
from cpcframe.errors import Problem, RecipeError, UserError

#: One changed setting: (key path, value in the run, value now; ``None`` = absent).
Change = tuple[str, Any, Any]


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def recipe_changes(saved: Recipe, new: Recipe) -> list[Change]:
    """Every setting whose value differs, by key path."""
    a, b = _flat(unstructure(saved)), _flat(unstructure(new))
    return [(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def describe(changes: list[Change]) -> str:
    return ", ".join(f"{key} {old!r} -> {new!r}" for key, old, new in changes)


def check_changes(changes: list[Change]) -> None:
    """Refuse what a checkpoint cannot continue with, before anything is written."""
    for key, old, new in changes:
        if key == "train.precision" and "fp16" in (old, new):
            raise RecipeError([Problem(key, f"--resume cannot switch from {old!r} to {new!r}: the "
                                            "checkpoint's grad-scaler state belongs to its precision "
                                            "(fp32 <-> bf16 is fine)")])


def misfit_error(changes: list[Change], checkpoint: Path, exc: BaseException) -> UserError:
    """The error for a checkpoint whose state does not fit the recipe's model."""
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip() and
                   not line.startswith("Error(s)")), type(exc).__name__)
    model = [c for c in changes if c[0].startswith("model.")]
    if model:
        return RecipeError([Problem(key, f"changed on --resume ({old!r} in the run, {new!r} now), but "
                                         f"{checkpoint} holds the run's model ({reason}); a resume "
                                         "continues that model: train another one in a new run "
                                         "(another --out)") for key, old, new in model])
    return UserError(f"{checkpoint} does not fit the model of the run's recipe ({reason})")


def apply_optimizer_settings(state: Any, train: TrainSection) -> None:
    """The recipe's optimizer settings on a state loaded from a checkpoint (a no-op when
    they are the saved ones): AdamW's hyper-parameters, and the schedule's base rate at
    the current step."""
    optimizer, scheduler = state.optimizer, state.scheduler
    for group in optimizer.param_groups:
        group["initial_lr"] = train.lr
        group["betas"] = tuple(train.betas)
        group["eps"] = train.eps
        group["weight_decay"] = train.weight_decay
    scheduler.base_lrs = [train.lr for _ in optimizer.param_groups]
    # What LambdaLR.step computes: base rate x the schedule's factor at the current step.
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
