"""Negative policies: which key items may give negatives to each local item.

A policy is a plain function ``policy(own, groups, num_items) -> (B, N) bool`` (the
:class:`NegativePolicy` protocol). The built-in ones are the CPC paper's ablation
(Table 2 of arXiv 1807.03748, in brackets):

* ``batch``: every location of every item [mixed speaker];
* ``same_sequence``: the query's own item only [current sequence only];
* ``same_group``: items of the query's group, its own included [same speaker];
* ``other_sequences``: every item but the query's own [excluding current sequence];
  AMDIM uses this one.

Plugins add policies through the ``register_negative_policies`` hook; the core
registers these four the same way (:mod:`cpcframe.negatives.plugin`). Whatever the
policy, a query's own positives are never its negatives: the engine excludes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Union

import torch
from torch import Tensor

from cpcframe.errors import did_you_mean


class NegativePolicy(Protocol):
    """Which key items may give negatives to each local item.

    Called as ``policy(own, groups, num_items)``:

    * ``own``: ``(B,)`` long, the index of each local item among the ``num_items`` key
      items (``item_offset + arange(B)``: after a cross-process gather the local items
      sit at ``rank·B .. rank·B + B - 1``);
    * ``groups``: ``(num_items,)`` long group id of every key item (e.g. speaker), or
      ``None`` when the batch carries none;
    * ``num_items``: ``N``, the number of key items.

    Returns ``(B, N)`` bool on ``own.device``: ``[b, n]`` is true when the locations of
    key item ``n`` may be negatives of local item ``b``'s queries. Raise ``ValueError``
    when the policy cannot be applied (e.g. it needs ``groups`` and gets ``None``).
    """

    def __call__(self, own: Tensor, groups: Tensor | None, num_items: int) -> Tensor: ...


def batch(own: Tensor, groups: Tensor | None, num_items: int) -> Tensor:
    """Every item of the batch (CPC's "mixed speaker")."""
    return torch.ones(own.shape[0], num_items, dtype=torch.bool, device=own.device)


def same_sequence(own: Tensor, groups: Tensor | None, num_items: int) -> Tensor:
    """The query's own item only (CPC's "current sequence only")."""
    return own[:, None] == torch.arange(num_items, device=own.device)[None, :]


def same_group(own: Tensor, groups: Tensor | None, num_items: int) -> Tensor:
    """Items of the query's group, its own included (CPC's "same speaker")."""
    if groups is None:
        raise ValueError("negative policy 'same_group' needs group ids (e.g. speakers) "
                         "but the batch carries none")
    return groups[own][:, None] == groups[None, :]


def other_sequences(own: Tensor, groups: Tensor | None, num_items: int) -> Tensor:
    """Every item but the query's own (CPC's "excluding current sequence"; AMDIM)."""
    return own[:, None] != torch.arange(num_items, device=own.device)[None, :]


#: The built-in policies by name: the table :func:`cpcframe.info_nce` uses when it is
#: called without a registry's policy.
BUILTIN_POLICIES: dict[str, NegativePolicy] = {
    "batch": batch,
    "same_sequence": same_sequence,
    "same_group": same_group,
    "other_sequences": other_sequences,
}
POLICIES: tuple[str, ...] = tuple(BUILTIN_POLICIES)


def builtin_policy(name: str) -> NegativePolicy:
    """The built-in policy called ``name``.

    Raises:
        ValueError: no built-in policy has that name (a plugin's policy is resolved from
            the registry: :func:`cpcframe.negatives.resolve_policy`).
    """
    try:
        return BUILTIN_POLICIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown negative policy {name!r}{did_you_mean(str(name), POLICIES)}; "
                         f"choose one of {', '.join(POLICIES)} (a plugin's policy is looked up in "
                         "the registry: pass info_nce(..., policy=resolve_policy(name, registry)))") from None


PolicyLike = Union[str, Callable[..., Tensor]]


def allowed_items(policy: PolicyLike, batch_size: int, num_items: int, item_offset: int,
                  groups: Tensor | None, device: torch.device, *, name: str | None = None) -> Tensor:
    """``(B, N)`` bool: which key items may give negatives to each local item.

    ``policy`` is a built-in policy's name or a :class:`NegativePolicy` (``name`` names
    it in errors); its result is checked (shape, dtype) so that a plugin's mistake is
    reported by name.
    """
    if name is None:
        name = policy if isinstance(policy, str) else getattr(policy, "__name__", repr(policy))
    function = builtin_policy(policy) if isinstance(policy, str) else policy
    own = torch.arange(batch_size, device=device) + item_offset  # (B,)
    allowed = function(own, groups, num_items)
    if not isinstance(allowed, Tensor) or allowed.shape != (batch_size, num_items) \
            or allowed.dtype != torch.bool:
        got = f"{tuple(allowed.shape)} {allowed.dtype}" if isinstance(allowed, Tensor) else type(allowed).__name__
        raise ValueError(f"negative policy {name!r} must return a (B={batch_size}, N={num_items}) "
                         f"bool tensor, got {got}")
    return allowed
