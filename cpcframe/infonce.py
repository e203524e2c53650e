"""The InfoNCE engine: every step, query, positive and negative in batched tensor ops.

For a query ``q``, its positive score ``s+`` and negative scores ``s-_1..s-_N``, one NCE
term is ``-log(exp(s+) / (exp(s+) + sum_n exp(s-_n)))`` (van den Oord et al. 2018, eq. 4).
Minimising it maximises a lower bound on mutual information, ``I >= log(N+1) - L``; with
uninformative scores every term equals ``log(N+1)``.

Score options, applied in this order (Bachman et al. 2019, AMDIM, section 3.3):
``s = (q·k) / temperature``; penalty ``score_penalty · mean(s²)`` added to the loss;
soft clipping ``s <- clip · tanh(s / clip)``.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from cpcframe.contrast import Contrast
from cpcframe.negatives import POLICIES, NegativePolicy, allowed_items, sample_negatives


def _positive(_inst, attribute, value) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"must be > 0, got {value}")


@attrs.frozen
class InfoNCEConfig:
    """Options of the engine (the ``[loss]`` section of a recipe).

    Attributes:
        negatives: which candidates are negatives: ``batch``, ``same_sequence``,
            ``same_group`` or ``other_sequences`` (see :mod:`cpcframe.negatives`).
        num_negatives: negatives sampled per query; ``0`` uses every allowed candidate.
        temperature: scores are divided by it.
        clip: soft clipping value ``c`` of ``c·tanh(s/c)``; ``0`` disables (AMDIM: 20).
        score_penalty: weight ``λ`` of ``λ·mean(s²)`` (AMDIM: 4e-2 paper, 5e-2 code).
    """

    negatives: NegativePolicy = attrs.field(default="batch", validator=attrs.validators.in_(POLICIES))
    num_negatives: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    temperature: float = attrs.field(default=1.0, validator=_positive)
    clip: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    score_penalty: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))


@attrs.frozen(eq=False)
class InfoNCEResult:
    """Loss and diagnostics of one :class:`Contrast`.

    Attributes:
        loss: scalar, mean NCE term plus the score penalty (differentiable).
        penalty: scalar, the score penalty part of ``loss`` (detached).
        loss_per_step: ``(K,)`` mean NCE term of each step (detached).
        accuracy_per_step: ``(K,)`` fraction of terms whose positive outscored every negative.
        terms_per_step: ``(K,)`` number of NCE terms of each step.
        num_negatives: mean number of negatives per term.
    """

    loss: Tensor
    penalty: Tensor
    loss_per_step: Tensor
    accuracy_per_step: Tensor
    terms_per_step: Tensor
    num_negatives: float

    @property
    def accuracy(self) -> Tensor:
        """Accuracy over all terms."""
        return (self.accuracy_per_step * self.terms_per_step).sum() / self.terms_per_step.sum().clamp(min=1)

    @property
    def mutual_information_bound(self) -> float:
        """``log(N+1) - L``: InfoNCE's lower bound on I(query; positive), in nats."""
        nce = (self.loss - self.penalty).item()
        return math.log(self.num_negatives + 1) - nce


def _check_negatives(negatives: Tensor, B: int, Q: int, C: int, name: str) -> Tensor:
    if negatives.dim() != 3 or negatives.shape[:2] != (B, Q) or negatives.shape[2] == 0:
        raise ValueError(f"Contrast {name!r}: negatives must be (B={B}, Q={Q}, M>0), "
                         f"got shape {tuple(negatives.shape)}")
    if negatives.dtype != torch.long:
        raise ValueError(f"Contrast {name!r}: negatives must be torch.long, got {negatives.dtype}")
    if negatives.min() < 0 or negatives.max() >= C:
        raise ValueError(f"Contrast {name!r}: negatives must be candidate indices in [0, C={C}), "
                         f"got range [{int(negatives.min())}, {int(negatives.max())}]")
    return negatives


def info_nce(contrast: Contrast, config: InfoNCEConfig = InfoNCEConfig(),
             generator: torch.Generator | None = None,
             negatives: Tensor | None = None) -> InfoNCEResult:
    """Evaluate InfoNCE for every term of ``contrast`` at once.

    Shapes: ``B`` local items, ``Q`` queries each, ``P`` positives per query, ``N`` key
    items of ``L`` locations (``C = N·L`` candidates), ``K`` steps.

    Args:
        contrast: the InfoNCE problems.
        config: negative policy, number of negatives and score options.
        generator: random source of sampled negatives (the global one when ``None``).
        negatives: optional ``(B, Q, M)`` long candidate indices (``item·L + location``
            in ``keys``), the negatives of each query, used as given instead of applying
            ``config.negatives`` / ``config.num_negatives``. The caller is responsible for
            them (they are not checked against positives or masks): this replays an
            external sampling scheme exactly, e.g. to compare with another implementation.
    """
    c = contrast
    queries, keys = c.queries, c.keys
    B, Q, D = queries.shape
    N, L, _ = keys.shape
    C = N * L
    device = queries.device

    # (b: local item, q: query, d: feature) x (c: candidate = item·L + location)
    scores = torch.einsum("bqd,cd->bqc", queries, keys.reshape(C, D))
    # Half precision is scored in float32; float64 stays float64. (B, Q, C) is the largest
    # tensor here: no copy of it when there is nothing to convert or scale.
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    if config.temperature != 1.0:
        scores = scores / config.temperature
    penalised = config.score_penalty > 0

    own = (torch.arange(B, device=device) + c.item_offset) * L  # (B,) first candidate of own item
    pos_loc = c.positives  # (Q, P)
    pos_idx = own[:, None, None] + pos_loc.clamp(min=0)[None]  # (B, Q, P)
    term_valid = (pos_loc >= 0)[None].expand(B, Q, -1)
    if c.query_mask is not None:
        term_valid = term_valid & c.query_mask[:, :, None]
    if c.key_mask is not None:
        term_valid = term_valid & c.key_mask.reshape(C)[pos_idx]
    pos_idx_or_pad = torch.where(term_valid, pos_idx, torch.full_like(pos_idx, -1))

    if negatives is None:
        allowed = allowed_items(config.negatives, B, N, c.item_offset, c.groups, device)  # (B, N)
        allowed = allowed[:, :, None].expand(B, N, L).reshape(B, C)
        if c.key_mask is not None:
            allowed = allowed & c.key_mask.reshape(1, C)

    P = pos_idx.shape[2]
    if negatives is not None or config.num_negatives > 0:
        if negatives is not None:
            neg_idx = _check_negatives(negatives, B, Q, C, c.name)
        else:
            neg_idx = sample_negatives(allowed, pos_idx_or_pad, config.num_negatives, generator,
                                       active=term_valid.any(-1))  # (B, Q, M)
        # One gather for positives and negatives: its backward scatters into one (B, Q, C)
        # gradient instead of two.
        picked = scores.gather(2, torch.cat([pos_idx, neg_idx], dim=2))  # (B, Q, P + M)
        pos_scores, neg_scores = picked[:, :, :P], picked[:, :, P:]
        neg_valid = None
        used = torch.cat([pos_scores[term_valid], neg_scores[term_valid.any(-1)].reshape(-1)]) \
            if penalised else None
        num_neg = torch.full((B, Q), float(neg_idx.shape[2]), device=device)
    else:
        pos_scores = scores.gather(2, pos_idx)  # (B, Q, P)
        # Every allowed candidate that is not one of the query's positives.
        is_pos = torch.zeros(B, Q, C + 1, dtype=torch.bool, device=device)
        is_pos.scatter_(2, torch.where(term_valid, pos_idx, C), True)
        neg_valid = allowed[:, None, :] & ~is_pos[:, :, :C]  # (B, Q, C)
        neg_scores = scores
        num_neg = neg_valid.sum(-1).float()
        if penalised:
            used_mask = (neg_valid | is_pos[:, :, :C]) & term_valid.any(-1, keepdim=True)
            used = scores[used_mask]
        else:
            used = None
        if bool(((num_neg == 0) & term_valid.any(-1)).any()):
            raise ValueError(f"Contrast {c.name!r}: negative policy {config.negatives!r} leaves "
                             "a query without negatives")

    penalty = config.score_penalty * used.pow(2).mean() if used is not None and used.numel() \
        else scores.new_zeros(())
    if neg_valid is not None:
        # A finite fill keeps gradients finite for padded queries that have no negatives.
        neg_scores = neg_scores.masked_fill(~neg_valid, -1e30)
    # Accuracy from the unclipped scores: clipping is monotonic, but a float32 tanh
    # saturates (to exactly c) and would turn clear wins into ties.
    correct = (pos_scores > neg_scores.amax(dim=-1, keepdim=True)).to(scores.dtype)
    if config.clip > 0:
        pos_scores = config.clip * torch.tanh(pos_scores / config.clip)
        neg_scores = config.clip * torch.tanh(neg_scores / config.clip)
        if neg_valid is not None:
            neg_scores = neg_scores.masked_fill(~neg_valid, -1e30)  # clipping moved the fill to -c
    neg_lse = torch.logsumexp(neg_scores, dim=-1, keepdim=True)  # (B, Q, 1)
    term_loss = torch.logaddexp(pos_scores, neg_lse) - pos_scores  # (B, Q, P)

    weight = term_valid.to(scores.dtype)
    # Per-step sums: (b, q, p) terms, q -> k through a one-hot (q, k).
    step_onehot = torch.nn.functional.one_hot(c.steps, c.num_steps).to(scores.dtype)  # (Q, K)
    terms_per_step = torch.einsum("bqp,qk->k", weight, step_onehot)
    loss_sum_per_step = torch.einsum("bqp,qk->k", term_loss.detach() * weight, step_onehot)
    correct_per_step = torch.einsum("bqp,qk->k", correct * weight, step_onehot)
    denom = terms_per_step.clamp(min=1)
    total_terms = weight.sum()
    if total_terms == 0:
        raise ValueError(f"Contrast {c.name!r} has no valid NCE term (all positives padded)")
    nce = (term_loss * weight).sum() / total_terms
    if c.mixture > 0:
        # Heads q compete for each positive p (AMDIM 3.4): -α·logsumexp_q(-ℓ_qp/α) over valid terms.
        mixed_valid = term_valid.any(1)  # (B, P)
        neg_scaled = (-term_loss / c.mixture).masked_fill(~term_valid, -1e30)
        mixed = -c.mixture * torch.logsumexp(neg_scaled, dim=1)  # (B, P)
        nce = torch.where(mixed_valid, mixed, torch.zeros_like(mixed)).sum() / mixed_valid.sum()
    mean_neg = (num_neg[:, :, None] * weight).sum() / total_terms
    return InfoNCEResult(
        loss=nce + penalty,
        penalty=penalty.detach(),
        loss_per_step=loss_sum_per_step / denom,
        accuracy_per_step=correct_per_step / denom,
        terms_per_step=terms_per_step,
        num_negatives=float(mean_neg),
    )

