"""The assembled model: encoder, context model and critic, and the loss over its contrasts."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from torch import Tensor, nn

from cpcframe.batch import Batch, View, concat_views
from cpcframe.context import ContextModel
from cpcframe.contrast import Contrast
from cpcframe.critic import Critic
from cpcframe.encoder import Encoder, Features
from cpcframe.infonce import InfoNCEConfig, info_nce
from cpcframe.negatives import NegativePolicy


def _split_features(features: Features, sizes: list[int]) -> list[Features]:
    if isinstance(features, Tensor):
        return list(features.split(sizes))
    parts = {k: v.split(sizes) for k, v in features.items()}
    return [{k: parts[k][i] for k in parts} for i in range(len(sizes))]


def _same_shape(views: tuple[View, ...]) -> bool:
    def shapes(v: View):
        return v.shape[1:] if isinstance(v, Tensor) else {k: t.shape[1:] for k, t in v.items()}
    return all(shapes(v) == shapes(views[0]) for v in views[1:])


class ContrastiveModel(nn.Module):
    """``encoder`` -> ``context`` -> ``critic`` for any number of views.

    Views of equal shape are encoded in one call (as AMDIM does) so batch statistics
    cover both views.
    """

    def __init__(self, encoder: Encoder, context: ContextModel, critic: Critic):
        super().__init__()
        self.encoder = encoder
        self.context = context
        self.critic = critic

    def features(self, views: tuple[View, ...]) -> tuple[list[Features], list[Features]]:
        if len(views) > 1 and _same_shape(views):
            sizes = [_batch_size(v) for v in views]
            latents = _split_features(self.encoder(concat_views(views)), sizes)
        else:
            latents = [self.encoder(v) for v in views]
        contexts = [self.context(z) for z in latents]
        return latents, contexts

    def forward(self, batch: Batch) -> list[Contrast]:
        latents, contexts = self.features(batch.views)
        return self.critic(latents, contexts, batch)

    @torch.no_grad()
    def encode(self, view: View, level: str = "context") -> Features:
        """Frozen features of one batched view: ``level`` is ``"latent"`` (z) or ``"context"`` (c)."""
        if level not in ("latent", "context"):
            raise ValueError(f"level must be 'latent' or 'context', got {level!r}")
        z = self.encoder(view)
        return z if level == "latent" else self.context(z)


def _batch_size(view: View) -> int:
    return view.shape[0] if isinstance(view, Tensor) else next(iter(view.values())).shape[0]


@attrs.frozen(eq=False)
class LossOutput:
    """Total loss and flat metrics (``loss``, ``acc``, ``acc/k1``, ``loss/k1``, ...)."""

    loss: Tensor
    metrics: dict[str, float]


def contrastive_loss(contrasts: list[Contrast], config: InfoNCEConfig,
                     transform: Callable[[Contrast], Contrast] | None = None, *,
                     policy: NegativePolicy | None = None) -> LossOutput:
    """Weighted sum of the contrasts' InfoNCE losses, with per-step metrics.

    ``transform`` may rewrite a contrast first (the distributed trainer gathers keys
    across processes there). ``policy`` is the function of ``config.negatives`` resolved
    from the registry (:func:`cpcframe.negatives.resolve_policy`); ``None`` for a
    built-in policy.
    """
    if not contrasts:
        raise ValueError("the critic returned no contrast")
    total = None
    metrics: dict[str, float] = {}
    correct = terms = 0.0
    for contrast in contrasts:
        if transform is not None:
            contrast = transform(contrast)
        result = info_nce(contrast, config, policy=policy)
        weighted = contrast.weight * result.loss
        total = weighted if total is None else total + weighted
        for k in range(contrast.num_steps):
            name = contrast.metric_name(k)
            metrics[f"acc/{name}"] = float(result.accuracy_per_step[k])
            metrics[f"loss/{name}"] = float(result.loss_per_step[k])
        n = float(result.terms_per_step.sum())
        correct += float(result.accuracy) * n
        terms += n
        if config.score_penalty > 0:
            key = f"penalty/{contrast.name}" if contrast.name else "penalty"
            metrics[key] = float(result.penalty)
    assert total is not None
    metrics["loss"] = float(total.detach())
    metrics["acc"] = correct / max(terms, 1.0)
    return LossOutput(total, metrics)
