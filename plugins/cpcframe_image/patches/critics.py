"""``cpc_grid``: CPC's critic on a grid of patches (van den Oord et al. 2018, section 3.2):
from the context at row ``i``, predict the latent ``k`` rows below, ``k = 1..K``, with one
linear map ``W_k`` per offset (score ``z_{i+k,j}^T W_k c_{i,j}``).

Shapes: latents ``z (B, H, W, C)``, context ``c (B, H, W, H')``. Query
``q = (i·W + j)·K + (k - 1)`` is ``W_k c_{i,j}``: queries ``(B, H·W·K, C)``; keys are the
flattened grid ``(B, H·W, C)``; the positive of query ``(i, j, k)`` is location
``(i + k)·W + j``, or ``-1`` (no term) when ``i + k >= H``. ``steps`` = ``k - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import Tensor, nn

from cpcframe import Batch, Contrast, Critic, validators


@attrs.frozen
class GridCriticConfig:
    """Options of ``cpc_grid``.

    Attributes:
        steps: ``K``, rows predicted ahead (CPC v1: up to 5 rows of the 7x7 grid).
        bias: give each ``W_k`` a bias.
    """

    steps: int = attrs.field(default=5, validator=validators.positive)
    bias: bool = False


class GridCritic(Critic):
    """Row-ahead predictions over a patch grid; see the module docstring."""

    def __init__(self, config: GridCriticConfig, latent_dim: int, context_dim: int):
        super().__init__()
        self.steps = config.steps
        self.latent_dim = latent_dim
        self.context_dim = context_dim
        self.predictors = nn.Linear(context_dim, config.steps * latent_dim, bias=config.bias)  # all W_k at once
        self.step_names = tuple(f"k{k}" for k in range(1, config.steps + 1))
        self._layout: dict[tuple[int, int, torch.device], tuple[Tensor, Tensor]] = {}

    def layout(self, height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``positives (H·W·K, 1)`` and ``steps (H·W·K,)`` for an ``H x W`` grid."""
        key = (height, width, device)
        if key not in self._layout:
            K = self.steps
            i = torch.arange(height, device=device).repeat_interleave(width * K)  # row of each query
            j = torch.arange(width, device=device).repeat_interleave(K).repeat(height)  # column
            k = torch.arange(1, K + 1, device=device).repeat(height * width)  # offset
            target = (i + k) * width + j
            positives = torch.where(i + k < height, target, torch.full_like(target, -1))[:, None]
            self._layout[key] = (positives, k - 1)
        return self._layout[key]

    def example_input(self, batch_size: int = 4):
        H, W = self.steps + 2, 3
        z = torch.randn(batch_size, H, W, self.latent_dim, requires_grad=True)
        c = torch.randn(batch_size, H, W, self.context_dim, requires_grad=True)
        return [z], [c], Batch(views=(z,), groups=torch.zeros(batch_size, dtype=torch.long))

    def forward(self, latents: Sequence[Tensor], contexts: Sequence[Tensor], batch: Batch) -> list[Contrast]:
        z, c = latents[0], contexts[0]
        if z.dim() != 4 or c.dim() != 4 or z.shape[:3] != c.shape[:3]:
            raise ValueError(f"cpc_grid expects latents (B, H, W, C) and context (B, H, W, H') on the same grid; "
                             f"got {tuple(z.shape)} and {tuple(c.shape)}")
        B, H, W, C = z.shape
        if H < 2:
            raise ValueError(f"cpc_grid needs at least 2 rows of patches, got H={H}")
        positives, steps = self.layout(H, W, z.device)
        # (b, i, j, h') -> (b, i, j, k, c): W_k c_{ij} for every offset k.
        queries = self.predictors(c).reshape(B, H * W * self.steps, C)
        return [Contrast(queries=queries, keys=z.reshape(B, H * W, C), positives=positives, steps=steps,
                         step_names=self.step_names, groups=batch.groups.to(z.device),
                         query_group=self.steps)]  # the K offsets of a patch


def build_grid_critic(config: GridCriticConfig, *, latent_dim: int, context_dim: int) -> GridCritic:
    """CPC images: predict patches k rows below from the context (one W_k per offset)."""
    return GridCritic(config, latent_dim, context_dim)
