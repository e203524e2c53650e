"""``amdim``: AMDIM's multiscale cross-view critic (Bachman et al. 2019, sections 3.2-3.4,
3.6; public code ``costs.py`` ``LossMultiNCE``).

For every pair ``"AtB"`` (default 1->5, 1->7, 5->5) and both directions (view 1 -> view 2
and view 2 -> view 1) it returns one :class:`cpcframe.Contrast`:

* query ``(B, 1, D)``: the source map ``A`` of one view — the global vector for ``"1"``,
  or, for a local map (5->5), **one location per image drawn uniformly at random** (the
  public code's ``_sample_src_ftr``; drawn from the global torch RNG, which the trainer
  checkpoints);
* keys ``(B, L, D)``: the target map ``B`` of the other view, flattened (``L = h·w``);
* positives ``arange(L)[None]`` ``(1, L)``: every location of the same image is a
  positive, each its own NCE term sharing the query's negatives (``Q = 1``, ``P = L``);
* ``weight = 0.5``: the two directions are averaged, as in ``NCE_MI_MULTI``.

With the recipe's ``[loss]`` ``negatives = "other_sequences"`` (every location of every
other image), ``clip = 20`` and ``score_penalty = λ``, the engine's total equals AMDIM's
``loss_1t5 + loss_1t7 + loss_5t5 + lgt_reg`` (checked against a plain re-implementation
in ``tests/image/test_image_amdim_loss.py``).

**Score scaling.** AMDIM divides every score by ``sqrt(n_rkhs)``. This critic does it
(``scale_scores = true``: queries are multiplied by ``n_rkhs ** -0.5``), so recipes keep
``[loss] temperature = 1.0`` whatever ``n_rkhs`` is; the engine's penalty and clipping then
act on the scaled scores, in AMDIM's order.

**Mixture-based representation** (section 3.4, ``mixture_heads = k > 0``): ``k`` heads
``m_j(f) = f + W2_j relu(W1_j f + b1_j)`` (a fully connected layer with one ReLU and a
residual connection) turn the global vector into ``k`` global features. Each pair with a
global source then has ``Q = k`` queries (one step per head, so metrics show each head)
and ``Contrast.mixture = entropy_weight`` (α): for each target location ``i`` the engine
combines the heads' NCE terms ``ℓ_ji`` into ``-α log Σ_j exp(-ℓ_ji / α)``, which is the
optimum over ``q`` of ``Σ_j q_j ℓ_ji - α H(q)``, i.e. eq. 6 with ``q`` at its closed form
(eq. 7, ``q ∝ exp(s_nce / α)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import attrs
import torch
from torch import Tensor, nn

from cpcframe import Batch, Contrast, Critic, validators

_PAIR = re.compile(r"^(\w+)t(\w+)$")


def _pairs(_inst, attribute, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("must name at least one pair, e.g. [\"1t5\", \"1t7\", \"5t5\"]")
    for pair in value:
        if not _PAIR.match(pair):
            raise ValueError(f"{pair!r} is not a pair 'AtB' of scale names (e.g. '1t5': global -> 5x5)")
    if len(set(value)) != len(value):
        raise ValueError(f"lists a pair twice: {list(value)}")


@attrs.frozen
class AmdimCriticConfig:
    """Options of the ``amdim`` critic.

    Attributes:
        pairs: source->target scale pairs ``"AtB"`` (paper: 1t5, 1t7, 5t5).
        scale_scores: divide scores by ``sqrt(n_rkhs)`` here (AMDIM does); keep the
            recipe's ``[loss] temperature = 1`` when on.
        mixture_heads: ``k`` mixture components on the global feature (0 = off; AMDIM 3.4).
        entropy_weight: α of the mixture objective (q's entropy bonus; larger = softer q).
    """

    pairs: tuple[str, ...] = attrs.field(default=("1t5", "1t7", "5t5"), validator=_pairs)
    scale_scores: bool = True
    mixture_heads: int = attrs.field(default=0, validator=validators.non_negative)
    entropy_weight: float = attrs.field(default=1.0, validator=validators.positive)


class MixtureHeads(nn.Module):
    """``(B, D) -> (B, k, D)``: ``m_j(f) = f + W2_j relu(W1_j f + b1_j) + b2_j`` for ``j < k``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        bound = 1 / math.sqrt(dim)
        self.w1 = nn.Parameter(torch.empty(heads, dim, dim).uniform_(-bound, bound))
        self.b1 = nn.Parameter(torch.zeros(heads, dim))
        # Small second layer: every head starts near f, and they differ from the first step.
        self.w2 = nn.Parameter(torch.empty(heads, dim, dim).uniform_(-0.1 * bound, 0.1 * bound))
        self.b2 = nn.Parameter(torch.zeros(heads, dim))

    def forward(self, f: Tensor) -> Tensor:
        h = torch.relu(torch.einsum("bd,kde->bke", f, self.w1) + self.b1)  # (b, k: head, e: hidden)
        return f[:, None, :] + torch.einsum("bke,kef->bkf", h, self.w2) + self.b2


class AmdimCritic(Critic):
    """Cross-view, cross-scale contrasts; see the module docstring.

    Inputs: for each of the 2 views, latents and contexts ``{scale: (B, h, w, D)}`` (with
    AMDIM's identity context both are the encoder's maps). Queries come from the
    contexts, keys from the latents.
    """

    def __init__(self, config: AmdimCriticConfig, latent_dim: int, context_dim: int):
        super().__init__()
        if latent_dim != context_dim:
            raise ValueError(f"the amdim critic scores context against latent vectors, so their sizes "
                             f"must match; got latent_dim={latent_dim}, context_dim={context_dim} "
                             "(use the default context model, identity: leave out [model.context])")
        self.config = config
        self.dim = latent_dim
        self.pairs = [_PAIR.match(p).groups() for p in config.pairs]  # type: ignore[union-attr]
        self.scale = latent_dim ** -0.5 if config.scale_scores else 1.0
        k = config.mixture_heads
        self.heads = MixtureHeads(latent_dim, k) if k > 0 else None
        self.head_names = tuple(f"h{j}" for j in range(k)) if k > 0 else ("",)

    def example_input(self, batch_size: int = 4):
        def maps() -> dict[str, Tensor]:
            return {s: torch.randn(batch_size, n, n, self.dim, requires_grad=True)
                    for s, n in (("1", 1), ("5", 5), ("7", 7))}

        latents = [maps(), maps()]
        return latents, latents, Batch(views=(latents[0]["1"], latents[1]["1"]),
                                       groups=torch.zeros(batch_size, dtype=torch.long))

    def _check(self, name: str, features: Sequence[Mapping[str, Tensor]]) -> None:
        if len(features) != 2 or not all(isinstance(f, Mapping) for f in features):
            raise ValueError(f"the amdim critic needs 2 views of multiscale {name} ({{scale: (B, h, w, D)}}); "
                             f"got {len(features)} entries (use the amdim_views sampler and the amdim encoder)")
        for src, trg in self.pairs:
            for scale in (src, trg):
                if scale not in features[0]:
                    raise ValueError(f"pair '{src}t{trg}' needs scale {scale!r} but the {name} have "
                                     f"{sorted(features[0])}")

    def sources(self, contexts: Sequence[Mapping[str, Tensor]]) -> dict[tuple[str, int], Tensor]:
        """``(scale, view) -> (B, D)`` source vectors: the map itself when it has one
        location, else one location per image drawn at random (``_sample_src_ftr``).
        Views are drawn in order (view 1, then view 2) for each scale in pair order."""
        out: dict[tuple[str, int], Tensor] = {}
        for src, _ in self.pairs:
            for view in (0, 1):
                if (src, view) in out:
                    continue
                fmap = contexts[view][src]
                B, h, w, D = fmap.shape
                flat = fmap.reshape(B, h * w, D)
                if h * w == 1:
                    out[(src, view)] = flat[:, 0]
                else:
                    loc = torch.randint(0, h * w, (B,), device=fmap.device)  # one location per image
                    out[(src, view)] = flat[torch.arange(B, device=fmap.device), loc]
        return out

    def forward(self, latents, contexts, batch: Batch) -> list[Contrast]:
        self._check("latents", latents)
        self._check("contexts", contexts)
        sources = self.sources(contexts)
        contrasts: list[Contrast] = []
        for src, trg in self.pairs:
            for a, b in ((0, 1), (1, 0)):
                keys = latents[b][trg]
                B, h, w, D = keys.shape
                L = h * w
                query = sources[(src, a)]  # (B, D)
                mixture = self.heads is not None and contexts[a][src].shape[1:3] == (1, 1)
                queries = self.heads(query) if mixture else query[:, None, :]  # (B, Q, D)
                Q = queries.shape[1]
                device = keys.device
                contrasts.append(Contrast(
                    queries=queries * self.scale,
                    keys=keys.reshape(B, L, D),
                    positives=torch.arange(L, device=device)[None].expand(Q, L),
                    steps=torch.arange(Q, device=device),
                    step_names=self.head_names if mixture else ("",),
                    name=f"{src}t{trg}_{a + 1}{b + 1}",
                    weight=0.5,
                    groups=batch.groups.to(device),
                    mixture=self.config.entropy_weight if mixture else 0.0,  # see cpcframe.infonce
                ))
        return contrasts


def build_amdim_critic(config: AmdimCriticConfig, *, latent_dim: int, context_dim: int) -> AmdimCritic:
    """AMDIM: 1->5, 1->7, 5->5 across views, all same-image locations positive."""
    return AmdimCritic(config, latent_dim, context_dim)
