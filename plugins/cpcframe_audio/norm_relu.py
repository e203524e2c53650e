"""Layer norm over channels, ReLU and the next convolution's zero padding, in one pass.

Between two of CPC's strided convolutions (van den Oord et al. 2018, section 3.1) the
encoder computes ``relu(norm(y))`` on a channels-last ``(B, T, C)`` tensor, then the next
layer pads it with zeros (:func:`cpcframe_audio.strided_conv.chunk_padding`). Done as
three operations, the first layer's 64 MiB output (batch 8, 20480 samples) is written by
the norm, read and written by the ReLU, zero-filled and copied by the pad, and backward
copies the gradient out of the padded one before the ReLU's mask and the norm's
backward read it. Here the ReLU writes straight into the padded buffer and its backward
masks the padded gradient in place of a copy: three passes over the tensor fewer.

The arithmetic is ATen's own ``native_layer_norm`` and its backward, so outputs and
gradients equal the unfused ``F.pad(F.relu(F.layer_norm(y, ...)))`` bit for bit
(``tests/audio/test_audio_norm_relu.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


class _LayerNormReLUPadded(torch.autograd.Function):
    """``x (B, T, C)`` -> ``(B, left + T + right, C)``: ``relu(layer_norm(x))`` between
    ``left`` and ``right`` zero rows."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, left: int,
                right: int) -> Tensor:
        B, T, C = x.shape
        normed, mean, rstd = torch.native_layer_norm(x, (C,), weight, bias, eps)
        out = x.new_empty(B, left + T + right, C)
        out[:, :left] = 0
        out[:, left + T:] = 0
        inner = out[:, left:left + T]
        torch.clamp_min(normed, 0, out=inner)  # the ReLU, written into the padded buffer
        ctx.save_for_backward(x, weight, bias, mean, rstd, out)
        ctx.rows = (left, T)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, weight, bias, mean, rstd, out = ctx.saved_tensors
        left, T = ctx.rows
        # The ReLU's mask read from the padded output and gradient in place (no copies).
        grad_normed = torch.ops.aten.threshold_backward(grad[:, left:left + T], out[:, left:left + T], 0)
        mask = list(ctx.needs_input_grad[:3])  # which of x, weight, bias get a gradient
        grad_x, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
            grad_normed, x, [x.shape[-1]], mean, rstd, weight, bias, mask)
        return grad_x, grad_weight, grad_bias, None, None, None


def layer_norm_relu_padded(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float,
                           padding: tuple[int, int] = (0, 0)) -> Tensor:
    """``F.pad(F.relu(F.layer_norm(x, (C,), weight, bias, eps)), (0, 0, *padding))``.

    Args:
        x: ``(B, T, C)``, normalised over ``C`` at every ``(b, t)``.
        weight, bias: ``(C,)`` affine parameters, or ``None`` (no scale, no shift).
        padding: ``(left, right)`` zero rows around the result along ``T``; a negative
            ``right`` crops the last steps (as ``F.pad`` does).

    Fused (the module docstring) for float32 and float64 outside autocast, where it is
    exactly the unfused result; under autocast, or for half precision, it runs unfused,
    so that autocast's own precision rules for ``layer_norm`` apply.
    """
    left, right = padding
    if left < 0:
        raise ValueError(f"left padding must be >= 0, got {left}")
    if torch.is_autocast_enabled(x.device.type) or x.dtype not in (torch.float32, torch.float64):
        return F.pad(F.relu(F.layer_norm(x, x.shape[-1:], weight, bias, eps)), (0, 0, left, right))
    if right < 0:  # steps no later output reads: not normalised at all
        x, right = x[:, :x.shape[1] + right], 0
    return _LayerNormReLUPadded.apply(x, weight, bias, eps, left, right)
