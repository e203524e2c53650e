"""A plain, slow InfoNCE reference for the engine's tests.

Everything is spelled out with Python loops over batch items, queries, positives and
explicit candidate lists, in float64, following the definitions in
``cpcframe/infonce.py`` and ``cpcframe/negatives.py`` (van den Oord et al. 2018, eq. 4;
AMDIM's score options, Bachman et al. 2019, section 3.3):

* score ``s = q·k / temperature``; penalty ``λ · mean(s²)`` over the scores used (each
  valid term's positive, and the negatives of each query that has a valid term), taken
  before soft clipping ``s <- c·tanh(s/c)``;
* a term ``(b, q, p)`` is valid when the positive is not padding (``-1``), the query is
  not masked and the positive location is not masked; its loss is
  ``logsumexp(s+, s-_1..s-_N) - s+`` and it is correct when ``s+ > max(s-)`` (strict,
  on the unclipped scores);
* negatives: every allowed candidate that is not one of the query's valid positives, or
  the given ``negatives[b][q]`` list (sampled mode).

Only the sampler's random draw is shared with the engine: :func:`reference_negatives`
builds the sampler's inputs with loops and calls ``cpcframe.negatives.sample_negatives``,
so that a seeded generator yields the same indices as inside ``info_nce``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cpcframe.negatives import sample_negatives


def item_allowed(policy, own: int, item: int, groups) -> bool:
    """May key item ``item`` give negatives to a query of key item ``own``?

    ``policy``: a built-in policy's name, or a plain predicate ``(own, item, groups) ->
    bool`` spelling out a plugin's policy item by item.
    """
    if callable(policy):
        return bool(policy(own, item, groups))
    if policy == "batch":
        return True
    if policy == "same_sequence":
        return item == own
    if policy == "other_sequences":
        return item != own
    if policy == "same_group":
        return int(groups[item]) == int(groups[own])
    raise AssertionError(policy)


def allowed_candidates(policy: str, b: int, N: int, L: int, item_offset: int, groups,
                       key_mask) -> list[int]:
    """Candidate indices ``item·L + location`` a query of local item ``b`` may draw from."""
    out = []
    for n in range(N):
        if not item_allowed(policy, item_offset + b, n, groups):
            continue
        for loc in range(L):
            if key_mask is None or bool(key_mask[n][loc]):
                out.append(n * L + loc)
    return out


def valid_positives(positives, b: int, q: int, L: int, item_offset: int, query_mask,
                    key_mask) -> list[tuple[int, int]]:
    """``(p, candidate)`` of the valid terms of query ``(b, q)``."""
    if query_mask is not None and not bool(query_mask[b][q]):
        return []
    own = item_offset + b
    out = []
    for p in range(len(positives[q])):
        loc = int(positives[q][p])
        if loc < 0:
            continue
        if key_mask is not None and not bool(key_mask[own][loc]):
            continue
        out.append((p, own * L + loc))
    return out


def reference_negatives(policy: str, num: int, B: int, Q: int, N: int, L: int, positives, *,
                        groups=None, query_mask=None, key_mask=None, item_offset: int = 0,
                        generator: torch.Generator | None = None) -> Tensor:
    """``(B, Q, num)`` sampled negatives, drawn as the engine draws them."""
    P = positives.shape[1]
    allowed = torch.zeros(B, N * L, dtype=torch.bool)
    excluded = torch.full((B, Q, P), -1, dtype=torch.long)
    active = torch.zeros(B, Q, dtype=torch.bool)
    for b in range(B):
        for cand in allowed_candidates(policy, b, N, L, item_offset, groups, key_mask):
            allowed[b, cand] = True
        for q in range(Q):
            for p, cand in valid_positives(positives, b, q, L, item_offset, query_mask, key_mask):
                excluded[b, q, p] = cand
                active[b, q] = True
    return sample_negatives(allowed, excluded, num, generator, active=active)


def reference_shared_negatives(policy: str, num: int, B: int, Q: int, N: int, L: int, positives, group: int, *,
                               groups=None, query_mask=None, key_mask=None, item_offset: int = 0,
                               generator: torch.Generator | None = None) -> Tensor:
    """``(B, Q / group, num)`` negatives shared by each run of ``group`` queries, drawn as
    the engine draws them with ``share_negatives``: never a valid positive of any query
    of the run; a run draws when one of its queries has a valid term."""
    P = positives.shape[1]
    allowed = torch.zeros(B, N * L, dtype=torch.bool)
    excluded = torch.full((B, Q // group, group * P), -1, dtype=torch.long)
    active = torch.zeros(B, Q // group, dtype=torch.bool)
    for b in range(B):
        for cand in allowed_candidates(policy, b, N, L, item_offset, groups, key_mask):
            allowed[b, cand] = True
        for q in range(Q):
            j, slot = divmod(q, group)
            for p, cand in valid_positives(positives, b, q, L, item_offset, query_mask, key_mask):
                excluded[b, j, slot * P + p] = cand
                active[b, j] = True
    return sample_negatives(allowed, excluded, num, generator, active=active)


def reference_info_nce(queries: Tensor, keys: Tensor, positives: Tensor, steps: Tensor,
                       num_steps: int, *, policy: str = "batch", temperature: float = 1.0,
                       clip: float = 0.0, score_penalty: float = 0.0, groups=None,
                       query_mask=None, key_mask=None, item_offset: int = 0,
                       negatives=None) -> dict:
    """InfoNCE by loops. ``negatives``: ``None`` for every allowed candidate, else
    ``(B, Q, M)`` candidate indices used as given.

    Returns ``loss`` (differentiable float64 scalar), ``penalty``, and per-step lists
    ``loss_per_step``, ``accuracy_per_step``, ``terms_per_step``, plus ``num_negatives``
    (mean over valid terms).
    """
    B, Q, _ = queries.shape
    N, L, _ = keys.shape
    q64 = queries.double()
    k64 = keys.double()

    def score(b: int, q: int, cand: int) -> Tensor:
        return torch.dot(q64[b, q], k64[cand // L, cand % L]) / temperature

    def clipped(s: Tensor) -> Tensor:
        return clip * torch.tanh(s / clip) if clip > 0 else s

    term_losses: list[Tensor] = []
    used: list[Tensor] = []
    loss_sum = [0.0] * num_steps
    correct_sum = [0.0] * num_steps
    terms = [0] * num_steps
    negatives_total = 0
    for b in range(B):
        allowed = allowed_candidates(policy, b, N, L, item_offset, groups, key_mask)
        for q in range(Q):
            pos = valid_positives(positives, b, q, L, item_offset, query_mask, key_mask)
            if not pos:
                continue
            if negatives is None:
                positive_set = {cand for _, cand in pos}
                neg_list = [c for c in allowed if c not in positive_set]
            else:
                neg_list = [int(c) for c in negatives[b][q]]
            if not neg_list:
                raise ValueError(f"query ({b}, {q}) has no negatives")
            neg_raw = [score(b, q, c) for c in neg_list]
            used.extend(neg_raw)
            neg = [clipped(s) for s in neg_raw]
            # Correct is judged on raw scores: the clip is monotonic, so this is the same
            # order, without the ties a saturated tanh would create (even in float64).
            neg_max = max(float(s.detach()) for s in neg_raw)
            k = int(steps[q])
            for _, cand in pos:
                pos_raw = score(b, q, cand)
                used.append(pos_raw)
                s_pos = clipped(pos_raw)
                term = torch.logsumexp(torch.stack([s_pos] + neg), dim=0) - s_pos
                term_losses.append(term)
                loss_sum[k] += float(term.detach())
                correct_sum[k] += float(float(pos_raw.detach()) > neg_max)
                terms[k] += 1
                negatives_total += len(neg_list)
    if not term_losses:
        raise ValueError("no valid NCE term")
    nce = torch.stack(term_losses).mean()
    penalty = score_penalty * torch.stack(used).pow(2).mean() if score_penalty > 0 else nce.new_zeros(())
    return {
        "loss": nce + penalty,
        "penalty": float(penalty.detach()),
        "loss_per_step": [s / max(n, 1) for s, n in zip(loss_sum, terms)],
        "accuracy_per_step": [s / max(n, 1) for s, n in zip(correct_sum, terms)],
        "terms_per_step": terms,
        "num_negatives": negatives_total / len(term_losses),
    }


def distinct_positives(Q: int, P: int, L: int, g: torch.Generator) -> torch.Tensor:
    """``(Q, P)`` distinct locations per query (no duplicate, so every mode counts the
    score penalty the same way)."""
    return torch.stack([torch.randperm(L, generator=g)[:P] for _ in range(Q)])
