"""The InfoNCE engine: every step, query, positive and negative in batched tensor ops.

For a query ``q``, its positive score ``s+`` and negative scores ``s-_1..s-_N``, one NCE
term is ``-log(exp(s+) / (exp(s+) + sum_n exp(s-_n)))`` (van den Oord et al. 2018, eq. 4).
Minimising it maximises a lower bound on mutual information, ``I >= log(N+1) - L``; with
uninformative scores every term equals ``log(N+1)``.

Score options, applied in this order (Bachman et al. 2019, AMDIM, section 3.3):
``s = (q·k) / temperature``; penalty ``score_penalty · mean(s²)`` added to the loss;
soft clipping ``s <- clip · tanh(s / clip)``.

:func:`info_nce` runs these stages, each a function below (shapes: ``B`` local items,
``Q`` queries each, ``P`` positives per query, ``N`` key items of ``L`` locations,
``C = N·L`` candidates, ``M`` negatives per query, ``K`` steps):

1. :func:`positive_terms`: the ``(B, Q, P)`` NCE terms, their positive candidates and
   which are valid;
2. :func:`allowed_candidates`: the ``(B, C)`` candidates the negative policy allows;
3. negatives: sampled (:func:`sampled_negatives`; per query, or once per query group
   with ``share_negatives``), given by the caller, or every allowed candidate;
4. scoring: with listed (sampled or given) negatives, the scores of the used candidates
   only, :func:`pick_scores`, from the dense :func:`score_matrix` or gathered
   (:mod:`cpcframe.scoring` chooses by a cost model of the shapes and the device); with
   every candidate, :func:`score_matrix` and :func:`mask_scores`;
5. :func:`score_penalty` over the scores used;
6. :func:`nce_terms`: accuracy, soft clipping and the ``(B, Q, P)`` cross-entropy terms;
7. :func:`nce_loss` (mean, or AMDIM's mixture over heads) and :func:`per_step`.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

import cpcframe.scoring as scoring
from cpcframe.contrast import Contrast
from cpcframe.scoring import Scoring
from cpcframe.shared_scores import shared_negative_scores
from cpcframe.negatives import (KIND as NEGATIVE_POLICY, NegativePolicy, PolicyChoice, allowed_items,
                                builtin_policy, policy_name, sample_negatives, validate_choice)

#: Score given to candidates that are not negatives of a query: finite, so gradients stay
#: finite for padded queries that have none.
NOT_A_NEGATIVE = -1e30


def _positive(_inst, attribute, value) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"must be > 0, got {value}")


@attrs.frozen
class InfoNCEConfig:
    """Options of the engine (the ``[loss]`` section of a recipe).

    Attributes:
        negatives: which candidates are negatives: the name of a registered negative
            policy, built in: ``batch``, ``same_sequence``, ``same_group`` or
            ``other_sequences`` (see :mod:`cpcframe.negatives`); a policy with options
            is a ``[loss.negatives]`` table with its ``name``.
        num_negatives: negatives sampled per query; ``0`` uses every allowed candidate.
        temperature: scores are divided by it.
        clip: soft clipping value ``c`` of ``c·tanh(s/c)``; ``0`` disables (AMDIM: 20).
        score_penalty: weight ``λ`` of ``λ·mean(s²)`` (AMDIM: 4e-2 paper, 5e-2 code).
        scoring: how sampled negatives are scored: ``auto`` (a cost model of the shapes
            and the device, see :mod:`cpcframe.scoring`), ``dense`` (every query against
            every candidate, then the used ones picked) or ``gathered`` (the used
            candidates only). Results agree to rounding.
        share_negatives: the queries of a :attr:`~cpcframe.Contrast.query_group` (CPC: the
            ``K`` steps of one position) draw their ``num_negatives`` negatives once, as
            CPC_audio does, never one of the group's positives; each gathered key then
            serves ``G`` scores (:mod:`cpcframe.shared_scores`). ``False``: every query
            draws its own. Needs ``num_negatives > 0``.
    """

    negatives: PolicyChoice = attrs.field(default="batch", validator=validate_choice,
                                          metadata={"kind": NEGATIVE_POLICY})
    num_negatives: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    temperature: float = attrs.field(default=1.0, validator=_positive)
    clip: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    score_penalty: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    scoring: Scoring = "auto"
    share_negatives: bool = False

    def __attrs_post_init__(self) -> None:
        if self.share_negatives and self.num_negatives == 0:
            raise ValueError("share_negatives = true needs num_negatives > 0: with every "
                             "candidate as a negative, there is nothing to share")


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


# ------------------------------------------------------------------------ 1. the terms

@attrs.frozen(eq=False)
class Terms:
    """The ``(B, Q, P)`` NCE terms of a contrast: one per (local item, query, positive).

    Attributes:
        candidates: ``(B, Q, P)`` long, the positive's candidate index ``item·L + location``
            (padding points at location 0 of the own item; see ``valid``).
        valid: ``(B, Q, P)`` bool, the term counts: its positive is not padding, its query
            is not masked and its positive location is not masked.
    """

    candidates: Tensor
    valid: Tensor

    @property
    def active(self) -> Tensor:
        """``(B, Q)`` bool: queries with at least one valid term (their scores are used)."""
        return self.valid.any(-1)

    @property
    def excluded(self) -> Tensor:
        """``(B, Q, P)`` long: the valid positives of each query, ``-1`` elsewhere."""
        return torch.where(self.valid, self.candidates, torch.full_like(self.candidates, -1))


def positive_terms(c: Contrast) -> Terms:
    """The NCE terms of ``c``: positives are locations of the query's own item."""
    B = c.batch_size
    N, L, _ = c.keys.shape
    own = (torch.arange(B, device=c.queries.device) + c.item_offset) * L  # (B,) first candidate of own item
    candidates = own[:, None, None] + c.positives.clamp(min=0)[None]  # (B, Q, P)
    valid = (c.positives >= 0)[None].expand(B, -1, -1)
    if c.query_mask is not None:
        valid = valid & c.query_mask[:, :, None]
    if c.key_mask is not None:
        valid = valid & c.key_mask.reshape(N * L)[candidates]
    return Terms(candidates, valid)


# --------------------------------------------------------------- 2. the allowed candidates

def allowed_candidates(c: Contrast, policy: NegativePolicy, name: str) -> Tensor:
    """``(B, C)`` bool: candidates the policy allows as negatives of each local item's
    queries (every location of an allowed item, except masked ones)."""
    B = c.batch_size
    N, L, _ = c.keys.shape
    items = allowed_items(policy, B, N, c.item_offset, c.groups, c.queries.device, name=name)  # (B, N)
    allowed = items[:, :, None].expand(B, N, L).reshape(B, N * L)
    if c.key_mask is not None:
        allowed = allowed & c.key_mask.reshape(1, N * L)
    return allowed


# ---------------------------------------------------------------------- 3. the negatives

def sampled_negatives(allowed: Tensor, terms: Terms, num: int,
                      generator: torch.Generator | None, group: int = 1) -> Tensor:
    """``(B, Q / group, num)`` long candidates drawn uniformly from each query's allowed
    set, never one of its valid positives (:func:`cpcframe.negatives.sample_negatives`);
    with ``group > 1``, one draw for each run of ``group`` queries, never one of the run's
    valid positives."""
    excluded, active, unit = terms.excluded, terms.active, "query"
    if group > 1:
        B, Q, P = excluded.shape
        excluded = excluded.reshape(B, Q // group, group * P)
        active = active.reshape(B, Q // group, group).any(-1)
        unit = f"query group (of {group} queries)"
    return sample_negatives(allowed, excluded, num, generator, active=active, unit=unit)


def check_given_negatives(negatives: Tensor, c: Contrast, group: int = 1) -> Tensor:
    """``negatives`` passed to :func:`info_nce`: ``(B, Q / group, M > 0)`` long candidate
    indices (``group``: queries sharing each row, 1 unless ``share_negatives``)."""
    B, Q, _ = c.queries.shape
    C = c.keys.shape[0] * c.keys.shape[1]
    rows = Q // group
    if negatives.dim() != 3 or negatives.shape[:2] != (B, rows) or negatives.shape[2] == 0:
        shared = f" (share_negatives: one row per group of {group} queries)" if group > 1 else ""
        raise ValueError(f"Contrast {c.name!r}: negatives must be (B={B}, {'Q/G' if group > 1 else 'Q'}={rows}, "
                         f"M>0){shared}, got shape {tuple(negatives.shape)}")
    if negatives.dtype != torch.long:
        raise ValueError(f"Contrast {c.name!r}: negatives must be torch.long, got {negatives.dtype}")
    if negatives.min() < 0 or negatives.max() >= C:
        raise ValueError(f"Contrast {c.name!r}: negatives must be candidate indices in [0, C={C}), "
                         f"got range [{int(negatives.min())}, {int(negatives.max())}]")
    return negatives


# ------------------------------------------------------------------------- 4. the scores

@attrs.frozen(eq=False)
class Scores:
    """Unclipped scores of the terms' positives and of their queries' negatives.

    Attributes:
        positive: ``(B, Q, P)`` score of each term's positive.
        negative: ``(B, Q, M)`` scores of each query's negatives (shared by its terms);
            with every candidate as a negative, ``M = C`` and ``negative_mask`` says
            which are.
        negative_mask: ``(B, Q, C)`` bool, or ``None`` when every entry is a negative.
        used: the scores the penalty averages over (flat), or ``None`` without penalty.
        num_negatives: ``(B, Q)`` float, negatives of each query.
        tied: ``(B, Q, P)`` bool, terms whose positive candidate is also listed among the
            query's negatives (only given negatives can list it): a tie, never correct,
            however the two scores were rounded by different kernels. ``None``: none.
    """

    positive: Tensor
    negative: Tensor
    negative_mask: Tensor | None
    used: Tensor | None
    num_negatives: Tensor
    tied: Tensor | None = None


def score_matrix(c: Contrast, temperature: float) -> Tensor:
    """``(B, Q, C)``: every query against every candidate, ``q·k / temperature``.

    Half precision is scored in float32; float64 stays float64. This is the largest
    tensor of the engine: no copy of it when there is nothing to convert or scale.
    """
    B, Q, D = c.queries.shape
    # (b: local item, q: query, d: feature) x (c: candidate = item·L + location) -> (b, q, c)
    scores = torch.einsum("bqd,cd->bqc", c.queries, c.keys.reshape(-1, D))
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    if temperature != 1.0:
        scores = scores / temperature
    return scores


def pick_scores(c: Contrast, terms: Terms, negatives: Tensor, config: InfoNCEConfig,
                group: int = 1, given: bool = False) -> Scores:
    """The scores of each query's positives and of its ``M`` listed negatives, ``(B, Q, P + M)``
    in all, and nothing else.

    ``negatives``: ``(B, Q / group, M)`` candidate indices, row ``j`` shared by queries
    ``j·group .. j·group + group - 1``. Dense: one gather from the :func:`score_matrix`
    for positives and negatives (its backward scatters into one ``(B, Q, C)`` gradient
    instead of two); gathered: the ``P + M`` keys of each query, scored alone
    (:func:`cpcframe.scoring.gathered_scores`); with ``group > 1``, the positives that
    way and each group's ``M`` negatives by small GEMMs
    (:func:`cpcframe.shared_scores.shared_negative_scores`). ``given``: the negatives
    come from the caller and may list a positive (:attr:`Scores.tied`); sampled ones never do.
    """
    B, Q, D = c.queries.shape
    P, M = terms.candidates.shape[2], negatives.shape[2]
    C = c.keys.shape[0] * c.keys.shape[1]
    how = scoring.choose(config.scoring, queries=B * Q, candidates=C, used=P + M, dim=D,
                         device=c.queries.device, group=group)
    if how == "gathered" and group > 1:
        # Positives are locations of the query's own item: scored against the local items'
        # keys only, a table that stays in cache however many processes' keys were gathered.
        L, first = c.keys.shape[1], c.item_offset
        local = c.keys[first:first + B].reshape(B * L, D)
        positive = scoring.gathered_scores(c.queries, local, terms.candidates - first * L, config.temperature)
        negative = shared_negative_scores(c.queries.reshape(B, Q // group, group, D), c.keys.reshape(C, D),
                                          negatives, config.temperature).view(B, Q, M)
    else:
        if group > 1:
            negatives = negatives.repeat_interleave(group, dim=1)  # (B, Q, M): each query's copy
        columns = torch.cat([terms.candidates, negatives], dim=2)  # (B, Q, P + M) candidates used
        if how == "dense":
            picked = score_matrix(c, config.temperature).gather(2, columns)
        else:
            picked = scoring.gathered_scores(c.queries, c.keys.reshape(C, D), columns, config.temperature)
        positive, negative = picked[:, :, :P], picked[:, :, P:]
    penalised = config.score_penalty > 0
    used_scores = torch.cat([positive[terms.valid], negative[terms.active].reshape(-1)]) if penalised else None
    tied = None
    if given:
        listed = negatives.reshape(B, -1, 1, M)  # (B, Q / group, 1, M): one row per group
        tied = (terms.candidates.reshape(B, listed.shape[1], -1, 1) == listed).any(-1).view(B, Q, P)
    return Scores(positive, negative, None, used_scores, torch.full((B, Q), float(M), device=positive.device),
                  tied)


def mask_scores(scores: Tensor, terms: Terms, allowed: Tensor, penalised: bool, c: Contrast,
                policy: str) -> Scores:
    """Every allowed candidate that is not one of the query's valid positives is a negative.

    Raises:
        ValueError: the policy leaves a query with a valid term without negatives.
    """
    B, Q, C = scores.shape
    positive = scores.gather(2, terms.candidates)  # (B, Q, P)
    # A (B, Q, C + 1) scatter target: invalid terms point at the spare last column.
    is_positive = torch.zeros(B, Q, C + 1, dtype=torch.bool, device=scores.device)
    is_positive.scatter_(2, torch.where(terms.valid, terms.candidates, C), True)
    is_positive = is_positive[:, :, :C]
    negative_mask = allowed[:, None, :] & ~is_positive  # (B, Q, C)
    num_negatives = negative_mask.sum(-1).float()
    used = scores[(negative_mask | is_positive) & terms.active[:, :, None]] if penalised else None
    if bool(((num_negatives == 0) & terms.active).any()):
        raise ValueError(f"Contrast {c.name!r}: negative policy {policy!r} leaves "
                         "a query without negatives")
    return Scores(positive, scores, negative_mask, used, num_negatives)


# --------------------------------------------------------------------- 5. the penalty

def score_penalty(scores: Scores, weight: float, like: Tensor) -> Tensor:
    """Scalar ``λ · mean(s²)`` over the scores used, before clipping (AMDIM 3.3);
    ``0`` (of ``like``'s dtype) without penalty."""
    if scores.used is None or not scores.used.numel():
        return like.new_zeros(())
    return weight * scores.used.pow(2).mean()


# ----------------------------------------------------------------------- 6. the terms' losses

def nce_terms(scores: Scores, clip: float) -> tuple[Tensor, Tensor]:
    """``(term_loss, correct)``, both ``(B, Q, P)``.

    ``term_loss = logsumexp(s+, s-_1..s-_M) - s+`` after soft clipping; ``correct`` is
    ``s+ > max(s-)`` (strict) on the unclipped scores: clipping is monotonic, but a
    float32 tanh saturates (to exactly ``c``) and would turn clear wins into ties. A
    positive listed among its query's negatives (``scores.tied``) ties with itself.
    """
    positive, negative, mask = scores.positive, scores.negative, scores.negative_mask
    if mask is not None:
        negative = negative.masked_fill(~mask, NOT_A_NEGATIVE)
    wins = positive > negative.amax(dim=-1, keepdim=True)
    correct = (wins & ~scores.tied if scores.tied is not None else wins).to(positive.dtype)
    if clip > 0:
        positive = clip * torch.tanh(positive / clip)
        negative = clip * torch.tanh(negative / clip)
        if mask is not None:
            negative = negative.masked_fill(~mask, NOT_A_NEGATIVE)  # clipping moved the fill to -c
    negatives_lse = torch.logsumexp(negative, dim=-1, keepdim=True)  # (B, Q, 1)
    return torch.logaddexp(positive, negatives_lse) - positive, correct


# --------------------------------------------------------------------- 7. loss and metrics

def nce_loss(c: Contrast, term_loss: Tensor, weight: Tensor) -> Tensor:
    """Scalar: the mean valid term, or with ``c.mixture = α > 0`` AMDIM's mixture over
    heads (section 3.4): the queries ``q`` of an item compete for each positive ``p``,
    ``-α·logsumexp_q(-ℓ_qp/α)``, averaged over positives with a valid term.

    ``term_loss``: ``(B, Q, P)``; ``weight``: ``(B, Q, P)``, 1 for valid terms, else 0.
    """
    total_terms = weight.sum()
    if total_terms == 0:
        raise ValueError(f"Contrast {c.name!r} has no valid NCE term (all positives padded)")
    if c.mixture > 0:
        valid = weight > 0
        mixed_valid = valid.any(1)  # (B, P)
        neg_scaled = (-term_loss / c.mixture).masked_fill(~valid, NOT_A_NEGATIVE)  # invalid terms drop out
        mixed = -c.mixture * torch.logsumexp(neg_scaled, dim=1)  # (B, P)
        return torch.where(mixed_valid, mixed, torch.zeros_like(mixed)).sum() / mixed_valid.sum()
    return (term_loss * weight).sum() / total_terms


def per_step(c: Contrast, weight: Tensor, term_loss: Tensor, correct: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(loss_per_step, accuracy_per_step, terms_per_step)``, each ``(K,)`` (detached):
    sums over the valid terms of each step's queries, through a one-hot ``(Q, K)``."""
    step_onehot = torch.nn.functional.one_hot(c.steps, c.num_steps).to(weight.dtype)  # (Q, K)
    # (b: item, q: query, p: positive) terms summed into (k: step)
    terms_per_step = torch.einsum("bqp,qk->k", weight, step_onehot)
    loss_sum = torch.einsum("bqp,qk->k", term_loss.detach() * weight, step_onehot)
    correct_sum = torch.einsum("bqp,qk->k", correct * weight, step_onehot)
    denom = terms_per_step.clamp(min=1)
    return loss_sum / denom, correct_sum / denom, terms_per_step


# --------------------------------------------------------------------------- the engine

def info_nce(contrast: Contrast, config: InfoNCEConfig = InfoNCEConfig(),
             generator: torch.Generator | None = None,
             negatives: Tensor | None = None, *,
             policy: NegativePolicy | None = None) -> InfoNCEResult:
    """Evaluate InfoNCE for every term of ``contrast`` at once (the stages of the module
    docstring).

    Args:
        contrast: the InfoNCE problems.
        config: negative policy, number of negatives and score options.
        generator: random source of sampled negatives (the global one when ``None``).
        negatives: optional ``(B, Q, M)`` long candidate indices (``item·L + location``
            in ``keys``; with ``config.share_negatives``, ``(B, Q / G, M)``, one row per
            query group), the negatives of each query, used as given instead of applying
            ``config.negatives`` / ``config.num_negatives``. The caller is responsible for
            them (they are not checked against positives or masks): this replays an
            external sampling scheme exactly, e.g. to compare with another implementation.
        policy: the function of ``config.negatives``, resolved from the registry
            (:func:`cpcframe.negatives.resolve_policy`; the trainer does this once). When
            ``None``, ``config.negatives`` must name a built-in policy.
    """
    c = contrast
    name = policy_name(config.negatives)
    terms = positive_terms(c)
    group = c.query_group if config.share_negatives else 1
    if negatives is not None:
        scored = pick_scores(c, terms, check_given_negatives(negatives, c, group), config, group, given=True)
    else:
        allowed = allowed_candidates(c, policy if policy is not None else builtin_policy(name), name)
        if config.num_negatives > 0:
            sampled = sampled_negatives(allowed, terms, config.num_negatives, generator, group)
            scored = pick_scores(c, terms, sampled, config, group)
        else:
            scores = score_matrix(c, config.temperature)
            scored = mask_scores(scores, terms, allowed, config.score_penalty > 0, c, name)
    penalty = score_penalty(scored, config.score_penalty, like=scored.positive)
    term_loss, correct = nce_terms(scored, config.clip)
    weight = terms.valid.to(scored.positive.dtype)
    loss_per_step, accuracy_per_step, terms_per_step = per_step(c, weight, term_loss, correct)
    nce = nce_loss(c, term_loss, weight)
    mean_negatives = (scored.num_negatives[:, :, None] * weight).sum() / weight.sum()
    return InfoNCEResult(
        loss=nce + penalty,
        penalty=penalty.detach(),
        loss_per_step=loss_per_step,
        accuracy_per_step=accuracy_per_step,
        terms_per_step=terms_per_step,
        num_negatives=float(mean_negatives),
    )
