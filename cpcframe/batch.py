"""What datasets yield and what the model consumes.

A dataset yields :class:`Example` objects; a :class:`~cpcframe.views.ViewSampler` turns
each into one or more *views* (a crop of a waveform, an augmented image, a window of
sentences) in loader workers; the collated views form a :class:`Batch`.
A view is a tensor, or a mapping of tensors when it needs more than one (token ids and
their padding mask).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import attrs
import torch
from torch import Tensor

View = Union[Tensor, Mapping[str, Tensor]]


@attrs.frozen(eq=False)
class Example:
    """One item of a dataset.

    Attributes:
        data: the raw item: a ``(channels, samples)`` waveform, a ``(3, H, W)`` image,
            a list of sentences, ...
        group: integer group id (speaker, class, document) for grouped batching and
            group negative policies; ``0`` when the dataset has none.
        key: a stable identifier (utterance id, file name).
        labels: optional per-item labels probes use (frame labels, a class).
    """

    data: Any
    group: int = 0
    key: str = ""
    labels: Any = None


@attrs.frozen(eq=False)
class Batch:
    """A collated batch of ``B`` items.

    Attributes:
        views: one entry per view; each is ``(B, ...)`` or a mapping of ``(B, ...)`` tensors.
        groups: ``(B,)`` long group ids.
        keys: the items' identifiers.
    """

    views: tuple[View, ...]
    groups: Tensor
    keys: tuple[str, ...] = ()

    @property
    def batch_size(self) -> int:
        return int(self.groups.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(tuple(view_to(v, device, non_blocking) for v in self.views),
                     self.groups.to(device, non_blocking=non_blocking), self.keys)


def view_to(view: View, device: torch.device | str, non_blocking: bool = False) -> View:
    if isinstance(view, Tensor):
        return view.to(device, non_blocking=non_blocking)
    return {k: v.to(device, non_blocking=non_blocking) for k, v in view.items()}


def stack_views(views: list[View]) -> View:
    """Stack per-item views into one batched view (tensors, or mappings of tensors)."""
    first = views[0]
    if isinstance(first, Tensor):
        return torch.stack(views)  # type: ignore[arg-type]
    return {k: torch.stack([v[k] for v in views]) for k in first}  # type: ignore[index]


def concat_views(views: tuple[View, ...]) -> View:
    """Concatenate several batched views along the batch axis (encode them in one call)."""
    first = views[0]
    if isinstance(first, Tensor):
        return torch.cat(views)  # type: ignore[arg-type]
    return {k: torch.cat([v[k] for v in views]) for k in first}  # type: ignore[index]
