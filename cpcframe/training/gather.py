"""Cross-process negatives: all-gather a contrast's keys with gradients.

With ``P`` processes of batch ``B`` each, every process scores its queries against
the keys of all ``P·B`` items, as if it had trained on the global batch. The gather
keeps gradients (``torch.distributed.nn.functional.all_gather``), so each key's gradient
sums the contributions of every process that used it as a negative.
"""

from __future__ import annotations

import attrs
import torch
import torch.distributed as dist
from torch import Tensor

from cpcframe.contrast import Contrast


def _gather_with_grad(tensor: Tensor) -> Tensor:
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


def _gather_plain(tensor: Tensor) -> Tensor:
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def gather_keys(contrast: Contrast) -> Contrast:
    """The same contrast with keys, groups and key mask of every process."""
    if contrast.item_offset != 0 or contrast.keys.shape[0] != contrast.batch_size:
        raise ValueError("gather_keys expects a contrast with local keys only")
    rank = dist.get_rank()
    keys = _gather_with_grad(contrast.keys)
    groups = _gather_plain(contrast.groups) if contrast.groups is not None else None
    key_mask = _gather_plain(contrast.key_mask) if contrast.key_mask is not None else None
    return attrs.evolve(contrast, keys=keys, groups=groups, key_mask=key_mask,
                        item_offset=rank * contrast.batch_size)
