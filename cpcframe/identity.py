"""``identity``, the core's default context model: ``c = z``.

AMDIM (Bachman et al. 2019) predicts from the encoder's features directly, so a recipe
without ``[model.context]`` gets this one. It is registered through the public
``register_context_models`` hook, like any plugin's component (``cpcframe.plugins.CORE_PLUGINS``).
"""

from __future__ import annotations

import torch

from cpcframe.context import ContextModel
from cpcframe.encoder import Features
from cpcframe.hookspecs import hookimpl

#: The context model a recipe gets when it has no ``[model.context]``.
DEFAULT_CONTEXT_MODEL = "identity"


class IdentityContext(ContextModel):
    """Passes latents through unchanged: ``(B, T, C)``, ``(B, H, W, C)`` or ``{scale: ...}``
    in, the same object out; ``output_dim`` is the encoder's. Trivially causal."""

    def __init__(self, input_dim: int):
        super().__init__()
        self.output_dim = input_dim

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        return torch.randn(batch_size, 12, self.output_dim, requires_grad=True)

    def forward(self, latents: Features) -> Features:
        return latents


def build_identity(*, input_dim: int) -> IdentityContext:
    """No context model: c = z (AMDIM); the default when a recipe has no [model.context]."""
    return IdentityContext(input_dim)


@hookimpl
def register_context_models(register):
    register(DEFAULT_CONTEXT_MODEL, build_identity)
