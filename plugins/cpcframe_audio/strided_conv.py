"""A strided 1-D convolution on channels-last ``(B, L, C)`` signals, computed as one GEMM.

CPC's encoder (van den Oord et al. 2018, section 3.1) is five strided convolutions whose
kernels are whole multiples of their strides (10/5, 8/4, 4/2, 4/2, 4/2). For such a layer,
cut the padded input into ``chunks`` of ``s`` samples: ``X (B, chunks, s·C_in)`` is a free
reshape of a channels-last tensor. Output step ``t`` reads chunks ``t .. t+m-1``
(``m = k / s``), so with the kernel split into ``m`` taps-blocks ``W_j (s·C_in, C_out)``::

    Y = X @ [W_0 | ... | W_{m-1}]        # (B·chunks, s·C_in) x (s·C_in, m·C_out), one GEMM
    y[b, t] = bias + sum_j Y[b, t + j, j]  # m shifted adds

It does exactly the convolution's multiply-adds (plus ``m - 1`` chunks per item), but as
one large contiguous matrix product, with no im2col copy and no channel transposes.
A layer with few input channels (the waveform layer: ``k·C_in = 10``) instead copies each
step's receptive field into an im2col matrix ``(B·T, k·C_in)`` and runs one GEMM straight
into its output: that copy is far smaller than the shifted form's ``m`` blocks of
``C_out`` products per step (:func:`im2col_is_cheaper`).
The backward pass is two more GEMMs (``dX = dY W^T``, ``dW = X^T dY``). On the 2-core CPU,
the paper encoder's forward+backward takes 0.69 s this way against 1.21 s through
``F.conv1d`` (oneDNN, whose backward pass and layout reorders dominate);
``benchmarks/audio_encoder.py`` measures it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def shifted_gemm_applies(conv: nn.Conv1d) -> bool:
    """Whether ``conv`` can run as a shifted GEMM: kernel a multiple of the stride, no
    dilation, no groups, numeric zero padding (not ``"same"``, not reflection)."""
    (k,), (s,), (d,) = conv.kernel_size, conv.stride, conv.dilation
    return (k % s == 0 and d == 1 and conv.groups == 1 and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple))


class _ShiftedGemm(torch.autograd.Function):
    """``X (B, chunks, s·C_in)``, ``W (s·C_in, m·C_out)``, ``bias (C_out,)`` -> ``(B, T, C_out)``."""

    @staticmethod
    def forward(ctx, chunks: Tensor, weight: Tensor, bias: Tensor | None, steps: int, taps: int) -> Tensor:
        B, n_chunks, width = chunks.shape
        out_channels = weight.shape[1] // taps
        # (B·chunks, s·C_in) x (s·C_in, m·C_out) -> (B, chunks, m, C_out)
        blocks = torch.mm(chunks.reshape(-1, width), weight).view(B, n_chunks, taps, out_channels)
        out = blocks[:, :steps, 0].clone() if bias is None else torch.add(blocks[:, :steps, 0], bias)
        for j in range(1, taps):
            out += blocks[:, j:steps + j, j]
        ctx.save_for_backward(chunks, weight)
        ctx.steps, ctx.taps, ctx.has_bias = steps, taps, bias is not None
        return out

    @staticmethod
    @torch.autocast("cuda", enabled=False)  # computed in the forward's dtype, whatever
    @torch.autocast("cpu", enabled=False)   # autocast state the caller of backward() has
    def backward(ctx, grad_out: Tensor):
        chunks, weight = ctx.saved_tensors
        steps, taps = ctx.steps, ctx.taps
        B, n_chunks, width = chunks.shape
        grad_out = grad_out.to(weight.dtype)
        # The transpose of the shifted adds: block j of chunk t receives dy[t - j].
        grad_blocks = grad_out.new_empty(B, n_chunks, taps, grad_out.shape[-1])
        for j in range(taps):
            grad_blocks[:, :j, j] = 0
            grad_blocks[:, j:steps + j, j] = grad_out
            grad_blocks[:, steps + j:, j] = 0
        grad_blocks = grad_blocks.view(B * n_chunks, -1)
        grad_chunks = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_chunks = torch.mm(grad_blocks, weight.t()).view(B, n_chunks, width)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.mm(chunks.reshape(-1, width).t(), grad_blocks)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum((0, 1))
        return grad_chunks, grad_weight, grad_bias, None, None


def chunk_padding(length: int, conv: nn.Conv1d) -> tuple[int, int]:
    """``(left, right)`` steps the shifted GEMM pads an input of ``length`` steps with: the
    convolution's padding on the left; on the right, exactly up to the last chunk an
    output reads (negative: a crop of steps no output reads)."""
    (k,), (s,), (p,) = conv.kernel_size, conv.stride, conv.padding
    steps = (length + 2 * p - k) // s + 1
    if steps < 1:
        raise ValueError(f"a convolution of kernel {k} and stride {s} needs at least {k - 2 * p} "
                         f"steps of input, got {length}")
    return p, (steps + k // s - 1) * s - length - p


def conv1d_channels_last(x: Tensor, conv: nn.Conv1d, *, padded: tuple[int, int] | None = None) -> Tensor:
    """``conv`` applied to a channels-last signal: ``(B, L, C_in) -> (B, T, C_out)``.

    Equal to ``conv(x.transpose(1, 2)).transpose(1, 2)`` (same weights, padding and output
    length ``T = (L + 2p - k) // s + 1``). Runs as a shifted GEMM when
    :func:`shifted_gemm_applies`, else through ``F.conv1d``. Under autocast it computes in
    the autocast dtype, as ``F.conv1d`` would.

    Args:
        padded: ``x`` already holds this ``(left, right)`` padding (zeros), which must be
            :func:`chunk_padding` of its unpadded length: the layer before wrote its output
            into a padded buffer, so no padded copy is made here (shifted GEMM only).
    """
    if not shifted_gemm_applies(conv):
        if padded is not None:
            raise ValueError("a pre-padded input needs a convolution that runs as a shifted GEMM")
        return conv(x.transpose(1, 2)).transpose(1, 2)
    (k,), (s,) = conv.kernel_size, conv.stride
    B, L, c_in = x.shape
    if padded is None:
        left, right = chunk_padding(L, conv)
        x = F.pad(x, (0, 0, left, right))
    elif padded != (needed := chunk_padding(L - sum(padded), conv)):
        raise ValueError(f"input padded by {padded}, but this convolution needs {needed}")
    taps = k // s
    n_chunks = x.shape[1] // s
    steps = n_chunks - taps + 1
    c_out = conv.out_channels
    chunks = x.reshape(B, n_chunks, s * c_in)
    # (C_out, C_in, m·s) -> (s, C_in, m, C_out): sample i and channel c of a chunk, tap j.
    weight = conv.weight.view(c_out, c_in, taps, s).permute(3, 1, 2, 0)
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else chunks.dtype
    bias = None if conv.bias is None else conv.bias.to(dtype)
    with torch.autocast(device, enabled=False):
        chunks, weight = chunks.to(dtype), weight.to(dtype)
        if im2col_is_cheaper(k, c_in, taps, c_out):
            return _im2col_gemm(chunks, weight.reshape(s * c_in * taps, c_out), bias, steps, taps)
        return _ShiftedGemm.apply(chunks, weight.reshape(s * c_in, taps * c_out), bias, steps, taps)


def im2col_is_cheaper(kernel: int, in_channels: int, taps: int, out_channels: int) -> bool:
    """Whether copying each step's receptive field (``k·C_in`` values) costs less than the
    shifted form's extra traffic (``m·C_out`` products per step written, then summed).

    True for the waveform layer (``k·C_in = 10`` against ``2·512``): its GEMM has only
    ``s·C_in = 5`` inputs per row, so the shifted form spends its time writing and adding
    ``(B, chunks, 2, C_out)`` blocks; the im2col copy is 100x smaller than its output.
    """
    return kernel * in_channels < taps * out_channels


def _im2col_gemm(chunks: Tensor, weight: Tensor, bias: Tensor | None, steps: int, taps: int) -> Tensor:
    """``chunks (B, chunks, s·C_in)``, ``weight (s·C_in·m, C_out)`` -> ``(B, T, C_out)`` as one
    GEMM over the im2col matrix; autograd's backward is ``dW = cols^T dY`` (and, when the
    input needs it, ``dcols = dY W^T`` folded back by ``unfold``'s backward)."""
    B = chunks.shape[0]
    # (B, chunks, s·C_in) -> (B, T, s·C_in, m): step t's m chunks, column (i, c, j) as the weight's rows.
    cols = chunks.unfold(1, taps, 1).reshape(B * steps, -1)
    # (B·T, s·C_in·m) x (s·C_in·m, C_out) -> (B·T, C_out)
    out = torch.mm(cols, weight) if bias is None else torch.addmm(bias, cols, weight)
    return out.view(B, steps, -1)
