"""An exact, vectorised sampler of negatives: uniform over each query's allowed set,
never one of its positives, without rejection."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_negatives(allowed: Tensor, excluded: Tensor, num: int,
                     generator: torch.Generator | None = None,
                     active: Tensor | None = None, unit: str = "query") -> Tensor:
    """Draw ``num`` negatives per query, uniformly (with replacement) from its allowed set.

    Args:
        allowed: ``(B, C)`` bool, candidates each item's queries may draw from.
        excluded: ``(B, Q, P)`` long candidate indices that a query must never draw
            (its positives); ``-1`` is padding.
        num: negatives per query.
        generator: random source; the global one when ``None`` (so a checkpointed
            RNG state replays the same negatives).
        active: ``(B, Q)`` bool, queries whose result is used; only these must have
            something to draw from.
        unit: what a row ``q`` is, in errors (``"query group"`` when queries share draws).

    Returns:
        ``(B, Q, num)`` long candidate indices, never an excluded one.

    Raises:
        ValueError: when a query with excluded entries has nothing left to draw from.

    Exact without rejection: draw ``r`` uniformly among the ``n - m`` allowed, not
    excluded candidates, then step over the ``m`` excluded ranks that come before it.
    """
    B, C = allowed.shape
    _, Q, P = excluded.shape
    device = allowed.device
    allowed_sorted = torch.sort((~allowed).to(torch.uint8), dim=1, stable=True).indices  # (B, C)
    rank = allowed.long().cumsum(1) - 1  # (B, C): rank of a candidate among allowed ones
    count = allowed.sum(1)  # (B,)

    flat = excluded.reshape(B, Q * P)
    safe = flat.clamp(min=0)
    is_excluded = (flat >= 0) & allowed.gather(1, safe)
    none = C + P  # rank given to padding; larger than any threshold test can reach
    ex_rank = torch.where(is_excluded, rank.gather(1, safe), torch.full_like(flat, none)).view(B, Q, P)
    ex_rank, _ = ex_rank.sort(dim=-1)
    # A location listed twice is excluded once.
    dup = torch.zeros_like(ex_rank, dtype=torch.bool)
    dup[..., 1:] = (ex_rank[..., 1:] == ex_rank[..., :-1]) & (ex_rank[..., 1:] < none)
    ex_rank = torch.where(dup, torch.full_like(ex_rank, none), ex_rank).sort(dim=-1).values
    is_real = ex_rank < none
    num_ex = is_real.sum(-1)  # (B, Q)
    available = count[:, None] - num_ex  # (B, Q)
    empty = available <= 0 if active is None else (available <= 0) & active
    if bool(empty.any()):
        b, q = empty.nonzero()[0].tolist()
        raise ValueError(f"no negatives left to sample for item {b}, {unit} {q}: the policy "
                         f"allows {int(count[b])} candidates and {int(num_ex[b, q])} are positives")
    available = available.clamp(min=1)[..., None]
    r = (torch.rand(B, Q, num, device=device, generator=generator) * available).long()
    r = torch.minimum(r, available - 1)  # guard rand() == 1 - eps rounding
    # Non-excluded candidates before the j-th excluded one: ex_rank_j - j (non-decreasing).
    thresholds = torch.where(is_real, ex_rank - torch.arange(P, device=device), ex_rank + C)
    shift = (thresholds[:, :, None, :] <= r[..., None]).sum(-1)  # (B, Q, N)
    position = r + shift
    return allowed_sorted.gather(1, position.view(B, Q * num)).view(B, Q, num)
