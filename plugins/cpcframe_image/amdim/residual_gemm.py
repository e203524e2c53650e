"""The 1x1 residual layer of AMDIM's blocks as one autograd function (CPU path).

Most layers of the encoder (9 of each 10-layer block, and the 30x30 layer of the 32 px
model) are ``y = x + relu(x W1^T) W2^T`` on channels-last maps flattened to
``(B·H·W, C)``. Left to autograd, their backward is four GEMMs plus two full passes
that this function does not make: the gradient of ``x`` arrives from two branches and is
summed by a separate ``add`` (on ``(B, C, H, W)`` views of differing layouts: the
slowest elementwise op of the step), and the ReLU's backward writes a fresh tensor.
Here ``dx = dy + dh W1`` is one ``addmm`` and the ReLU mask is applied in place.

Same arithmetic as the layer (float rounding apart: checked in float64 by
``tests/image/test_image_amdim_cpu_path.py``); under CPU autocast the GEMMs run in the
autocast dtype as the unfused layer's would.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Residual1x1(torch.autograd.Function):
    """``(M, C) x, (C, C) w1, (C, C) w2 -> (M, C) x + relu(x w1^T) w2^T``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, x: Tensor, w1: Tensor, w2: Tensor) -> Tensor:
        h = torch.relu_(torch.mm(x, w1.t()))
        y = torch.addmm(x, h, w2.t())
        ctx.save_for_backward(x, h, w1, w2)
        return y

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dy: Tensor):
        x, h, w1, w2 = ctx.saved_tensors
        dy = dy.contiguous()
        dh = torch.mm(dy, w2.to(dy.dtype))
        dw2 = torch.mm(dy.t(), h.to(dy.dtype))
        dh = torch.ops.aten.threshold_backward.grad_input(dh, h, 0, grad_input=dh)  # in place
        dw1 = torch.mm(dh.t(), x.to(dh.dtype))
        dx = torch.addmm(dy.to(dh.dtype), dh, w1.to(dh.dtype))
        return dx, dw1, dw2


def residual_1x1(x: Tensor, w1: Tensor, w2: Tensor) -> Tensor:
    """:class:`Residual1x1` on ``(B, H, W, C)`` contiguous maps with ``(C, C, 1, 1)``
    convolution weights; returns ``(B, H, W, C)`` contiguous."""
    B, H, W, C = x.shape
    y = Residual1x1.apply(x.reshape(B * H * W, C), w1.reshape(C, C), w2.reshape(C, C))
    return y.view(B, H, W, C)
