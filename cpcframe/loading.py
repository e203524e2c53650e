"""Load a trained run: resolved recipe + safetensors weights -> a ready model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cpcframe.batch import View
from cpcframe.build import build_model, build_view_sampler
from cpcframe.config.loader import load_recipe
from cpcframe.config.recipe import Recipe
from cpcframe.encoder import Features
from cpcframe.errors import UserError
from cpcframe.model import ContrastiveModel
from cpcframe.plugins import default_registry
from cpcframe.registry import Registry
from cpcframe.training import checkpoint as ckpt
from cpcframe.training.run_dir import RunDir


class LoadedModel:
    """A trained model with the recipe it was trained from.

    Attributes:
        model: the :class:`ContrastiveModel`, in eval mode.
        recipe: the resolved recipe.
        run_dir: where it came from.
    """

    def __init__(self, model: ContrastiveModel, recipe: Recipe, run_dir: Path, registry: Registry):
        self.model = model
        self.recipe = recipe
        self.run_dir = run_dir
        self.registry = registry

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, view: View, level: str = "context") -> Features:
        """Features of a batched view: ``level`` ``"latent"`` (z) or ``"context"`` (c)."""
        return self.model.encode(view, level=level)

    def view_sampler(self) -> Any:
        return build_view_sampler(self.recipe, self.registry)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu",
             registry: Registry | None = None, overrides: Sequence[str] = ()) -> LoadedModel:
    """Build the run's model and load its weights (``model.safetensors``)."""
    rd = RunDir(run_dir)
    if not rd.recipe.is_file():
        raise UserError(f"{rd.root} is not a cpcframe run directory (no recipe.toml)")
    registry = registry or default_registry()
    recipe = load_recipe(rd.recipe, registry, overrides)
    model = build_model(recipe, registry)
    state = ckpt.load_weights(rd.weights)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"weights in {rd.weights} do not match the recipe's model "
                        f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    model.to(device).eval()
    return LoadedModel(model, recipe, rd.root, registry)
