"""CPC's step-wise critic over sequences: one linear map ``W_k`` per step ``k``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from cpcframe import Batch, Contrast, Critic, validators


@attrs.frozen
class StepCriticConfig:
    """Options of ``cpc_steps``.

    Attributes:
        steps: ``K``, how many future steps are predicted (CPC audio: 12, text: 3).
        bias: give each ``W_k`` a bias.
        dropout: dropout on the context before prediction (CPC_audio uses 0.5 at times).
        score_scale: ``sum`` scores ``z·W_k c`` (the paper's eq. 3 as written); ``sqrt_dim``
            divides it by ``sqrt(C)``, as scaled dot-product attention does, so the
            initial scores do not grow with the latent width. CPC_audio averages over
            the ``C`` channels (``mean``, divided by ``C``) with ``W_k`` initialised at
            unit scale; with PyTorch's default initialisation ``sqrt_dim`` gives scores of
            the same order. Measured (benchmarks/plateau.py, 512 channels, 2-core EPYC): with
            ``sum`` the paper model was still at chance after 100 steps, with
            ``sqrt_dim`` (and standardised input) it left chance at step ~30.
    """

    steps: int = attrs.field(default=12, validator=validators.positive)
    bias: bool = False
    dropout: float = attrs.field(default=0.0, validator=attrs.validators.and_(
        attrs.validators.ge(0.0), attrs.validators.lt(1.0)))
    score_scale: Literal["sum", "sqrt_dim", "mean"] = attrs.field(
        default="sum", validator=attrs.validators.in_(("sum", "sqrt_dim", "mean")))


class StepCritic(Critic):
    """Queries ``W_k c_t`` against keys ``z``; the positive of ``(t, k)`` is ``z_{t+k}``
    (van den Oord et al. 2018, eq. 3: ``f_k(x_{t+k}, c_t) = exp(z_{t+k}^T W_k c_t)``).

    Shapes: latents ``(B, T, C)``, context ``(B, T, H)``; queries ``(B, T·K, C)`` with
    query ``q = t·K + (k-1)``; keys ``(B, T, C)``. All ``K`` maps are one ``Linear(H, K·C)``.
    """

    def __init__(self, config: StepCriticConfig, latent_dim: int, context_dim: int):
        super().__init__()
        self.steps = config.steps
        self.latent_dim = latent_dim
        self.predictors = nn.Linear(context_dim, config.steps * latent_dim, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.scale = {"sum": 1.0, "sqrt_dim": latent_dim ** -0.5, "mean": 1.0 / latent_dim}[config.score_scale]
        self.step_names = tuple(f"k{k}" for k in range(1, config.steps + 1))
        self._layout: dict[tuple[int, torch.device], tuple[Tensor, Tensor]] = {}

    def layout(self, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``positives (T·K, 1)`` and ``steps (T·K,)`` for sequences of ``length`` latents."""
        key = (length, device)
        if key not in self._layout:
            t = torch.arange(length, device=device).repeat_interleave(self.steps)  # (T·K,)
            k = torch.arange(self.steps, device=device).repeat(length)  # (T·K,)
            target = t + k + 1
            positives = torch.where(target < length, target, torch.full_like(target, -1))[:, None]
            self._layout[key] = (positives, k)
        return self._layout[key]

    def example_input(self, batch_size: int = 4):
        T = self.steps + 4
        z = torch.randn(batch_size, T, self.latent_dim)
        c = torch.randn(batch_size, T, self.predictors.in_features)
        batch = Batch(views=(z,), groups=torch.arange(batch_size) % 2)
        return [z], [c], batch

    def predict(self, context: Tensor) -> Tensor:
        """``(B, T, H) -> (B, T, K, C)``: ``W_k c_t`` for every step."""
        B, T, _ = context.shape
        out = self.predictors(self.dropout(context)).view(B, T, self.steps, self.latent_dim)
        return out * self.scale if self.scale != 1.0 else out

    def forward(self, latents: Sequence[Tensor], contexts: Sequence[Tensor], batch: Batch) -> list[Contrast]:
        z, c = latents[0], contexts[0]
        if z.dim() != 3 or c.dim() != 3 or z.shape[:2] != c.shape[:2]:
            raise ValueError(f"cpc_steps expects latents (B, T, C) and context (B, T, H) of equal "
                             f"B, T; got {tuple(z.shape)} and {tuple(c.shape)}")
        B, T, C = z.shape
        if T <= 1:
            raise ValueError(f"cpc_steps needs sequences of at least 2 latents, got T={T}")
        positives, steps = self.layout(T, z.device)
        queries = self.predict(c).reshape(B, T * self.steps, C)
        return [Contrast(queries=queries, keys=z, positives=positives, steps=steps,
                         step_names=self.step_names, groups=batch.groups.to(z.device),
                         query_group=self.steps)]  # the K steps of a position


def build_step_critic(config: StepCriticConfig, *, latent_dim: int, context_dim: int) -> StepCritic:
    """CPC: one linear prediction W_k per future step."""
    return StepCritic(config, latent_dim, context_dim)
