"""Cross-process negatives: all-gather a contrast's keys with gradients.

With ``P`` processes of batch ``B`` each, every process scores its ``B`` items' queries
against the keys of all ``P·B`` items, as if one process had the global batch (so 8
processes of batch 8 see the negatives of a batch of 64). None of the public CPC or AMDIM
implementations does this; their negatives come from the local batch only.

Gradients: the gather's backward sums, for this process's keys, the gradients that every
process's loss sent to them (a reduce-scatter). DistributedDataParallel then averages
parameter gradients over processes, so the update is the gradient of the mean of the
per-process losses, which is the loss of one process on the global batch when every
process holds the same number of NCE terms (tests/core/test_distributed.py checks this).
"""

from __future__ import annotations

import attrs
import torch
import torch.distributed as dist
from torch import Tensor

from cpcframe.contrast import Contrast

# torch >= 2.14 names them *_single; older releases have the *_tensor spellings.
_all_gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_reduce_scatter_single = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


class _GatherWithGrad(torch.autograd.Function):
    """``(B, ...) -> (P·B, ...)`` in rank order; backward: sum over processes, keep own slice."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # type: ignore[override]
        world = dist.get_world_size()
        out = tensor.new_empty((world * tensor.shape[0], *tensor.shape[1:]))
        _all_gather_single(out, tensor.contiguous())
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        world = dist.get_world_size()
        out = grad.new_empty((grad.shape[0] // world, *grad.shape[1:]))
        _reduce_scatter_single(out, grad.contiguous(), op=dist.ReduceOp.SUM)
        return out


def gather_with_grad(tensor: Tensor) -> Tensor:
    """All-gather along dim 0, differentiable (see module docstring)."""
    return _GatherWithGrad.apply(tensor)


def gather_plain(tensor: Tensor) -> Tensor:
    """All-gather along dim 0 without gradient (ids, masks)."""
    out = tensor.new_empty((dist.get_world_size() * tensor.shape[0], *tensor.shape[1:]))
    _all_gather_single(out, tensor.detach().contiguous())
    return out


def _sizes(contrast: Contrast) -> tuple[list[int], list[int]]:
    """Local batch sizes and key lengths ``L`` of every process."""
    local = torch.tensor([contrast.batch_size, contrast.keys.shape[1]], dtype=torch.long,
                         device=contrast.keys.device)
    every = gather_plain(local[None]).tolist()
    return [b for b, _ in every], [n for _, n in every]


def gather_keys(contrast: Contrast) -> Contrast:
    """The same contrast with the keys, groups and key mask of every process.

    Keys of different length ``L`` across processes (variable-length views padded per
    local batch) are right-padded to the longest and the padding is masked out in
    ``key_mask``, so no padded location is ever a candidate; positives index locations
    of the own item and stay valid.

    Raises:
        ValueError: the contrast already holds non-local keys, or local batch sizes differ.
    """
    c = contrast
    if c.item_offset != 0 or c.keys.shape[0] != c.batch_size:
        raise ValueError("gather_keys expects a contrast with local keys only")
    batch_sizes, lengths = _sizes(c)
    if len(set(batch_sizes)) != 1:
        raise ValueError(f"gather_keys needs the same local batch size on every process, got {batch_sizes}")
    B, L, _ = c.keys.shape
    L_max = max(lengths)
    keys, key_mask = c.keys, c.key_mask
    if L_max != L or len(set(lengths)) != 1:
        keys = torch.nn.functional.pad(keys, (0, 0, 0, L_max - L))
        if key_mask is None:
            key_mask = torch.ones(B, L, dtype=torch.bool, device=keys.device)
        key_mask = torch.nn.functional.pad(key_mask, (0, L_max - L), value=False)
    gathered_mask = gather_plain(key_mask) if key_mask is not None else None
    groups = gather_plain(c.groups) if c.groups is not None else None
    return attrs.evolve(c, keys=gather_with_grad(keys), groups=groups, key_mask=gathered_mask,
                        item_offset=dist.get_rank() * B)
