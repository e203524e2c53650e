"""The CPU path of AMDIM's encoder: channels-last maps and 1x1 convolutions as GEMMs.

Why: on the CPU, oneDNN's convolution on channels-first maps ran the encoder's many 1x1
convolutions (19 per residual block) at a third to a half of MKL's GEMM rate (AMD EPYC,
2 threads; ``benchmarks/amdim_step.py``). A 1x1 convolution of a channels-last map
``(B, H, W, C)`` is a plain matrix product ``(B·H·W, C) @ W^T``; the residual add is
folded into it (``addmm``), the phi heads' first convolution and shortcut (both read the
same input) are one GEMM, and the last ``3x3 -> 1x1`` projection, whose kernel covers
the whole map, is one GEMM over the flattened map. Each block's run of plain 1x1
residual layers (most of the encoder) is one autograd function with a fused backward
(:mod:`residual_gemm`). Spatial convolutions run as oneDNN's on channels-last tensors
or as one GEMM over their patches (:mod:`patch_gemm`), whichever :func:`spatial_backend`
measured faster on this machine. Same weights and parameters as the convolution path
(the checkpoint is unchanged); results equal to float rounding
(``tests/image/test_image_amdim_cpu_path.py``).

Used only on CPU tensors while :data:`ENABLED` (GPUs keep cuDNN's default path).
Every function takes and returns maps of logical shape ``(B, C, H, W)`` in
``torch.channels_last`` memory, so ``x.permute(0, 2, 3, 1)`` is a free ``(B, H, W, C)`` view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cpcframe import fastest
from cpcframe_image.amdim.patch_gemm import patch_conv
from cpcframe_image.amdim.residual_gemm import residual_chain

#: Switch for the CPU path (tests turn it off to compare with the convolution path).
ENABLED = True

#: Spatial convolutions: ``"auto"`` (measured, :func:`spatial_backend`), ``"onednn"`` or
#: ``"patch_gemm"`` (tests and benchmarks force one).
BACKEND = "auto"

CL = torch.channels_last


def active(x: Tensor) -> bool:
    """Whether ``x`` takes the CPU GEMM path."""
    return ENABLED and x.device.type == "cpu"


def nhwc(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, H, W, C)`` contiguous (a view for channels-last input)."""
    return x.permute(0, 2, 3, 1).contiguous()


def nchw(y: Tensor) -> Tensor:
    """``(B, H, W, C)`` contiguous -> ``(B, C, H, W)`` channels-last view."""
    return y.permute(0, 3, 1, 2)


def conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int) -> Tensor:
    """A no-padding convolution of a channels-last map, ``(B, H, W, O)`` contiguous out.

    1x1 stride 1: a GEMM; kernel covering the whole map: a GEMM over the flattened map;
    otherwise oneDNN on channels-last or :mod:`patch_gemm` (:func:`spatial_backend`).
    """
    O, C, k, _ = weight.shape
    B, _, H, W = x.shape
    if k == 1 and stride == 1:
        return F.linear(nhwc(x), weight.reshape(O, C), bias)
    if k == H == W:
        # Flattened in the weight's (c, h, w) order: a copy of the small map (B, C·k·k),
        # not of the large weight (O, C·k·k), and none of its gradient.
        flat = x.reshape(B, C * H * W)
        return F.linear(flat, weight.reshape(O, -1), bias).reshape(B, 1, 1, O)
    if spatial_backend(x, weight, stride) == "patch_gemm":
        return patch_conv(nhwc(x), weight, bias, stride)
    return _onednn(x, weight, bias, stride)


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int) -> Tensor:
    return nhwc(F.conv2d(x.contiguous(memory_format=CL), weight, bias, stride))


def spatial_backend(x: Tensor, weight: Tensor, stride: int) -> str:
    """``"onednn"`` or ``"patch_gemm"`` for a spatial convolution of ``x``: the faster on
    this machine (and thread count, dtype, grad mode), measured once per shape by
    :func:`cpcframe.measured_choice.fastest` (oneDNN is kept on a tie). The same
    arithmetic either way; only the order of the sums differs."""
    if BACKEND != "auto":
        return BACKEND
    device = x.device.type
    autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
    grad_x = torch.is_grad_enabled() and x.requires_grad
    grad_w = torch.is_grad_enabled() and weight.requires_grad
    key = ("amdim_conv", tuple(x.shape), tuple(weight.shape), stride, x.dtype, autocast, grad_x, grad_w)

    def trial(patch: bool):
        def run() -> None:
            xi = x.detach().contiguous(memory_format=CL).requires_grad_(grad_x)
            wi = weight.detach().requires_grad_(grad_w)
            with torch.enable_grad():
                y = patch_conv(nhwc(xi), wi, None, stride) if patch else _onednn(xi, wi, None, stride)
                inputs = [t for t in (xi, wi) if t.requires_grad]
                if inputs:
                    torch.autograd.grad(y.float().sum(), inputs)
        return run

    return fastest(key, {"onednn": trial(False), "patch_gemm": trial(True)}, device=x.device)


def add_project(shortcut: Tensor, h: Tensor, weight: Tensor) -> Tensor:
    """``shortcut + h @ weight^T`` for ``(B, H, W, ·)`` maps, the add done inside the GEMM."""
    B, H, W, O = shortcut.shape
    out = torch.addmm(shortcut.reshape(-1, O), h.reshape(-1, h.shape[-1]), weight.reshape(O, -1).t())
    return out.view(B, H, W, O)


def plain_1x1(layer) -> bool:
    """Whether a ConvResNxN is ``x + conv1x1(relu(conv1x1(x)))`` (no norm, identity shortcut)."""
    return (layer.width == layer.stride == 1 and layer.n_in == layer.n_out and layer.conv3 is None
            and isinstance(layer.bn1, torch.nn.Identity))


def res_block(block, x: Tensor) -> Tensor:
    """:class:`~cpcframe_image.amdim.layers.ConvResBlock` on the CPU path: the first layer,
    then the run of plain 1x1 layers after it as one :class:`ResidualChain`."""
    layers = list(block)
    x = res_nxn(layers[0], x)
    rest = layers[1:]
    if rest and all(plain_1x1(layer) for layer in rest):
        return nchw(residual_chain(nhwc(x), [(l.conv1.weight, l.conv2.weight) for l in rest]))
    for layer in rest:
        x = res_nxn(layer, x)
    return x


def res_nxn(layer, x: Tensor) -> Tensor:
    """:class:`~cpcframe_image.amdim.layers.ConvResNxN` on the CPU path (same result)."""
    if plain_1x1(layer):
        return nchw(residual_chain(nhwc(x), [(layer.conv1.weight, layer.conv2.weight)]))
    h = conv(x, layer.conv1.weight, None, layer.stride)
    h = F.relu(nhwc(layer.bn1(nchw(h))) if not isinstance(layer.bn1, torch.nn.Identity) else h)
    if layer.conv3 is not None:
        shortcut = conv(x, layer.conv3.weight, layer.conv3.bias, layer.stride)
    else:
        s = x if layer.width == layer.stride == 1 else F.avg_pool2d(x, layer.width, layer.stride, 0)
        shortcut = nhwc(s)
        if layer.n_out > layer.n_in:
            shortcut = F.pad(shortcut, (0, layer.n_out - layer.n_in))
    return nchw(add_project(shortcut, h, layer.conv2.weight))


def rkhs_head(head, x: Tensor) -> Tensor:
    """:class:`~cpcframe_image.amdim.layers.RKHSHead` on the CPU path: ``conv1`` and the
    shortcut (both 1x1 convolutions of ``x``) as one GEMM."""
    O = head.conv1.weight.shape[0]
    B, _, H, W = x.shape
    w = torch.cat([head.conv1.weight, head.shortcut.weight]).flatten(1)
    b = torch.cat([torch.zeros_like(head.shortcut.bias), head.shortcut.bias])
    # Split (not sliced) halves of the (M, 2O) product: their gradients are joined by one
    # cat instead of two zero-filled full-size buffers summed.
    h, shortcut = F.linear(nhwc(x), w, b).view(B * H * W, 2 * O).split(O, dim=1)
    if not isinstance(head.bn1, torch.nn.Identity):
        h = nhwc(head.bn1(nchw(h.reshape(B, H, W, O)))).reshape(B * H * W, O)
    out = torch.addmm(shortcut, F.relu(h), head.conv2.weight.reshape(O, O).t())
    return head.bn_out(nchw(out.view(B, H, W, O)))
