"""A plugin that adds negative policies through ``register_negative_policies`` (tests).

* ``nearby``: only items within ``distance`` places of the query's own item in the key
  batch, its own included (``distance = 0`` is ``same_sequence``; a distance of at least
  the batch size is ``batch``); it has an option, so a recipe may set it in a
  ``[loss.negatives]`` table.
* ``group_others``: items of the query's group except its own (same speaker, other
  utterances); no options.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

import cpcframe
from cpcframe.config.validators import non_negative


@attrs.frozen
class NearbyConfig:
    """Options of ``nearby``.

    Attributes:
        distance: largest ``|item - own item|`` of an allowed key item.
    """

    distance: int = attrs.field(default=1, validator=non_negative)


def build_nearby(config: NearbyConfig) -> cpcframe.NegativePolicy:
    """Items within `distance` places of the own item in the key batch."""

    def nearby(own: Tensor, groups: Tensor | None, num_items: int) -> Tensor:
        items = torch.arange(num_items, device=own.device)
        return (items[None, :] - own[:, None]).abs() <= config.distance  # (B, N)

    return nearby


def group_others(own: Tensor, groups: Tensor | None, num_items: int) -> Tensor:
    if groups is None:
        raise ValueError("negative policy 'group_others' needs group ids")
    items = torch.arange(num_items, device=own.device)
    return (groups[own][:, None] == groups[None, :]) & (items[None, :] != own[:, None])


@cpcframe.hookimpl
def register_negative_policies(register):
    register("nearby", build_nearby, NearbyConfig)
    register("group_others", lambda: group_others, description="Own group, own item excluded.")
