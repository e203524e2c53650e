"""A no-padding spatial convolution of a channels-last map as one GEMM over its patches.

``(B, H, W, C)`` contiguous -> ``(B, Ho, Wo, O)``: the ``k x k`` patches at stride ``s``
are gathered into ``(B·Ho·Wo, k·k·C)`` rows (in ``(kh, kw, c)`` order; the weight is
permuted to match) and multiplied by the weight in one MKL GEMM. Backward: the weight
gradient is one GEMM with the same rows (gathered again rather than kept, so the saved
memory is the input's), the input gradient one GEMM into patch rows then summed back
onto the map (one copy when the patches do not overlap, ``k == s``).

Why: oneDNN's convolution ran the small maps of AMDIM's encoder (``3x3`` on ``7x7`` and
``5x5`` maps, ``2x2`` stride 2 on ``14x14``) well below MKL's GEMM rate at the batch
sizes of training (``benchmarks/amdim_step.py``); which convolutions take this path is
:func:`cpcframe_image.amdim.cpu_gemm.conv`'s choice.
"""

from __future__ import annotations

import torch
from torch import Tensor


def patches(x: Tensor, k: int, s: int) -> Tensor:
    """``(B, H, W, C)`` -> ``(B·Ho·Wo, k·k·C)`` rows of patches (a copy)."""
    B, H, W, C = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    sB, sH, sW, sC = x.stride()
    view = x.as_strided((B, Ho, Wo, k, k, C), (sB, s * sH, s * sW, sH, sW, sC))
    return view.reshape(B * Ho * Wo, k * k * C)


def unpatch(rows: Tensor, shape: tuple[int, int, int, int], k: int, s: int) -> Tensor:
    """The adjoint of :func:`patches`: ``(B·Ho·Wo, k·k·C)`` rows summed onto a ``(B, H, W, C)`` map."""
    B, H, W, C = shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    cols = rows.view(B, Ho, Wo, k, k, C)
    if k == s and H == k * Ho and W == k * Wo:  # patches tile the map: a permuted copy
        return cols.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
    out = rows.new_zeros(shape)
    for i in range(k):
        for j in range(k):
            out[:, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += cols[:, :, :, i, j]
    return out


class PatchConv(torch.autograd.Function):
    """``(B, H, W, C) x, (O, C, k, k) weight, (O,) bias or None, stride -> (B, Ho, Wo, O)``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: int) -> Tensor:
        O, C, k, _ = weight.shape
        B, H, W, _ = x.shape
        Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
        wp = weight.permute(0, 2, 3, 1).reshape(O, k * k * C)
        rows = patches(x, k, stride)
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.get_autocast_dtype("cpu")
            rows, wp = rows.to(dtype), wp.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        y = torch.mm(rows, wp.t()) if bias is None else torch.addmm(bias, rows, wp.t())
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.has_bias = stride, bias is not None
        return y.view(B, Ho, Wo, O)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dy: Tensor):
        x, weight = ctx.saved_tensors
        O, C, k, _ = weight.shape
        dy = dy.reshape(-1, O)
        dtype = dy.dtype
        wp = weight.permute(0, 2, 3, 1).reshape(O, k * k * C).to(dtype)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = unpatch(torch.mm(dy, wp), tuple(x.shape), k, ctx.stride)
        if ctx.needs_input_grad[1]:
            rows = patches(x, k, ctx.stride).to(dtype)
            dw = torch.mm(dy.t(), rows).view(O, k, k, C).permute(0, 3, 1, 2)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.sum(0)
        return dx, dw, db, None


def patch_conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int) -> Tensor:
    """:class:`PatchConv` (see the module docstring)."""
    return PatchConv.apply(x, weight, bias, stride)
