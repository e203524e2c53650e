"""Load a trained run: resolved recipe + safetensors weights -> a ready model.

Only two files of the run directory are read: ``recipe.toml`` (the resolved recipe, plain
TOML validated by the current config classes) and ``model.safetensors`` (weights, no
pickle). Neither depends on cpcframe's internals (unlike ``checkpoint.pt``, which holds
optimizer state and RNG states for resuming), so a run trained with one cpcframe release
loads in a later one. Plugins may keep files of their own in the run directory (the text
plugin's tokenizer) and read them in :meth:`cpcframe.ViewSampler.inference_views`.

Example::

    import cpcframe
    model = cpcframe.load("runs/cpc_librispeech")
    c = model.encode(waveforms)                            # (B, 1, S) -> (B, S // 160, 256)
    z = model.encode(waveforms, level="latent")            # (B, S // 160, 512)
    features = model.embed("speech.flac")                  # {"speech": (T, 256) array}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cpcframe.batch import View, view_to
from cpcframe.build import build_model, build_view_sampler
from cpcframe.config.loader import load_recipe
from cpcframe.config.recipe import Recipe
from cpcframe.encoder import Features
from cpcframe.errors import UserError
from cpcframe.export.plugin_check import check_plugins
from cpcframe.model import ContrastiveModel
from cpcframe.plugins import default_registry
from cpcframe.registry import Registry
from cpcframe.runs.embedding import EmbedResult, embed_file, embed_files
from cpcframe.runs.layout import RunDir
from cpcframe.runs.weights import load_weights
from cpcframe.runtime import resolve_device


class LoadedModel:
    """A trained model with the recipe it was trained from.

    Attributes:
        model: the :class:`ContrastiveModel`, in eval mode.
        recipe: the resolved recipe.
        run_dir: where it came from.
        registry: the component registry it was built with.
    """

    def __init__(self, model: ContrastiveModel, recipe: Recipe, run_dir: Path, registry: Registry):
        self.model = model
        self.recipe = recipe
        self.run_dir = run_dir
        self.registry = registry
        self._view_sampler: Any = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, view: View, level: str = "context") -> Features:
        """Features of a batched view, without gradient.

        Args:
            view: what the encoder takes, with a batch axis (e.g. ``(B, 1, S)`` audio),
                on any device (it is moved to the model's).
            level: ``"latent"`` (``z``, the encoder's output) or ``"context"`` (``c``,
                the context model's output; CPC's features for downstream tasks).

        Returns:
            Channels-last features, e.g. ``(B, T, C)``, or a mapping of scales.
        """
        return self.model.encode(view_to(view, self.device), level=level)

    def view_sampler(self) -> Any:
        """The recipe's view sampler (built once)."""
        if self._view_sampler is None:
            self._view_sampler = build_view_sampler(self.recipe, self.registry)
        return self._view_sampler

    def embed_files(self, paths: Sequence[str | Path], level: str = "context",
                    batch_size: int = 16, chunk: int | None = None) -> EmbedResult:
        """Features of input files; see :func:`cpcframe.runs.embedding.embed_files`."""
        return embed_files(self, paths, level=level, batch_size=batch_size, chunk=chunk)

    def embed(self, path: str | Path, level: str = "context", chunk: int | None = None) -> dict[str, np.ndarray]:
        """Features of one input file (audio, image, text, ... as the run's plugin reads it):
        ``{key: array}`` without the batch axis, e.g. ``{"speech": (T, 256)}``.

        Raises:
            UserError: the file cannot be read, or the plugin cannot read files.
        """
        return embed_file(self, path, level=level, chunk=chunk)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu",
             registry: Registry | None = None, overrides: Sequence[str] = ()) -> LoadedModel:
    """Build the run's model from ``recipe.toml`` and load ``model.safetensors`` into it.

    Args:
        run_dir: a directory written by ``cpcframe run`` (or a copy of just those two files),
            or an exported model folder (``cpcframe export``; its plugins are checked first).
        device: where to put the model (``"auto"``: CUDA when available; see
            :func:`cpcframe.runtime.resolve_device`).
        registry: components to build with (default: the installed plugins).
        overrides: ``key.path=value`` changes to the recipe (not to the model's shape).
    """
    rd = RunDir(run_dir).require_recipe()
    device = resolve_device(device) if isinstance(device, str) else device
    registry = registry or default_registry()
    check_plugins(rd.root, registry)
    recipe = load_recipe(rd.recipe, registry, overrides)
    model = build_model(recipe, registry)
    state = load_weights(rd.weights)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape: the overrides changed the model
        reason = next((line.strip() for line in str(exc).splitlines()
                       if line.strip() and not line.startswith("Error(s)")), "shapes differ")
        changed = f" with overrides {', '.join(overrides)}" if overrides else ""
        raise UserError(f"weights in {rd.weights} do not fit the recipe's model{changed} ({reason}); "
                        "overrides may change how the model runs, not its shape") from None
    if missing or unexpected:
        raise UserError(f"weights in {rd.weights} do not match the recipe's model "
                        f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    model.to(device).eval()
    return LoadedModel(model, recipe, rd.root, registry)
