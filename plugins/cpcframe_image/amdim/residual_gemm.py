"""Runs of AMDIM's 1x1 residual layers as one autograd function (CPU path).

Most layers of the encoder (9 of each 10-layer block, and the 30x30 layer of the 32 px
model) are ``y = x + relu(x W1^T) W2^T`` on channels-last maps flattened to
``(B·H·W, C)``, one after the other. Left to autograd, each layer's backward is four
GEMMs plus passes this function does not make: the gradient of ``x`` arrives from two
branches and is summed by a separate ``add`` (on ``(B, C, H, W)`` views of differing
layouts: the slowest elementwise op of the step), and the ReLU's backward writes a
fresh tensor. Here, for a run of ``n`` layers:

* ``dx = dy + dh W1`` is one GEMM accumulating in place into the gradient flowing down
  the run (a buffer this function owns after the first layer; the incoming gradient is
  never written), and the ReLU mask is applied in place;
* the saved tensors are what autograd would save: each layer's input and ReLU output.

Same arithmetic as the layers (float rounding apart: checked in float64 by
``tests/image/test_image_amdim_residual_gemm.py`` and through the encoder by
``test_image_amdim_cpu_path.py``); under CPU autocast the GEMMs run in the autocast
dtype, as the unfused layers' would, with the weights cast once per call.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _autocast_dtype(x: Tensor) -> torch.dtype:
    """The dtype the GEMMs run in: CPU autocast's when it is on, else ``x``'s."""
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype


class ResidualChain(torch.autograd.Function):
    """``(M, C) x, n x [(C, C) w1, (C, C) w2] -> (M, C)``: ``x <- x + relu(x w1^T) w2^T`` per pair."""

    @staticmethod
    def forward(ctx, x: Tensor, *weights: Tensor) -> Tensor:
        dtype = _autocast_dtype(x)
        ws = [w.to(dtype) for w in weights]  # autocast's casts, once
        x = x.to(dtype)
        saved = []
        with torch.autocast("cpu", enabled=False):
            for w1, w2 in zip(ws[0::2], ws[1::2]):
                h = torch.relu_(torch.mm(x, w1.t()))
                saved += [x, h]
                x = torch.addmm(x, h, w2.t())
        ctx.save_for_backward(*saved, *ws)
        ctx.n, ctx.weight_dtypes = len(weights) // 2, [w.dtype for w in weights]
        return x

    @staticmethod
    def backward(ctx, dy: Tensor):
        n = ctx.n
        saved = ctx.saved_tensors
        acts, ws = saved[:2 * n], saved[2 * n:]
        g = dy.to(ws[0].dtype).contiguous()
        owned = g.data_ptr() != dy.data_ptr()  # a fresh buffer (a cast or a copy) may be written
        grads: list[Tensor] = [None] * (2 * n)  # type: ignore[list-item]
        with torch.autocast("cpu", enabled=False):
            for i in reversed(range(n)):
                x, h = acts[2 * i], acts[2 * i + 1]
                w1, w2 = ws[2 * i], ws[2 * i + 1]
                dh = torch.mm(g, w2)
                grads[2 * i + 1] = torch.mm(g.t(), h).to(ctx.weight_dtypes[2 * i + 1])
                dh = torch.ops.aten.threshold_backward.grad_input(dh, h, 0, grad_input=dh)  # in place
                grads[2 * i] = torch.mm(dh.t(), x).to(ctx.weight_dtypes[2 * i])
                if owned:
                    g = g.addmm_(dh, w1)
                else:
                    g, owned = torch.addmm(g, dh, w1), True
        return (g, *grads)


def residual_chain(x: Tensor, weights: list[tuple[Tensor, Tensor]]) -> Tensor:
    """:class:`ResidualChain` on a ``(B, H, W, C)`` contiguous map with ``(C, C, 1, 1)``
    convolution weights ``(conv1, conv2)`` per layer; returns ``(B, H, W, C)`` contiguous."""
    B, H, W, C = x.shape
    flat = [w.reshape(C, C) for pair in weights for w in pair]
    return ResidualChain.apply(x.reshape(B * H * W, C), *flat).view(B, H, W, C)
