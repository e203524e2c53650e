"""Building blocks of AMDIM's encoder (Bachman et al. 2019, section 3.5; public code ``model.py``).

Every block works on channels-first ``(B, C, H, W)`` maps (on the CPU in channels-last
memory, with 1x1 convolutions as GEMMs: :mod:`cpcframe_image.amdim.cpu_gemm`) and uses
**no padding**: a
feature at some location sees only its own receptive field, so "local" features stay
local and border statistics do not differ from interior ones. Residual blocks restrict
receptive-field growth: only the first layer of a block has a spatial kernel, the rest
are 1x1 convolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cpcframe_image.amdim import cpu_gemm


def maybe_batch_norm(channels: int, use_bn: bool) -> nn.Module:
    """AMDIM's ``MaybeBatchNorm2d``: a BatchNorm when ``use_bn``, else the identity."""
    return nn.BatchNorm2d(channels, affine=True) if use_bn else nn.Identity()


class ConvStem(nn.Module):
    """``Conv3x3`` of the public code: (optional reflection padding) conv -> maybe BN -> ReLU."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, pad: int = 0, use_bn: bool = False):
        super().__init__()
        self.pad = pad
        self.conv = nn.Conv2d(n_in, n_out, kernel, stride, 0, bias=not use_bn)
        self.bn = maybe_batch_norm(n_out, use_bn)

    def forward(self, x: Tensor) -> Tensor:
        if self.pad:  # only the 128-pixel encoder's first layer pads, by reflection
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        if cpu_gemm.active(x):
            h = cpu_gemm.nchw(cpu_gemm.conv(x, self.conv.weight, self.conv.bias, self.conv.stride[0]))
        else:
            h = self.conv(x)
        return F.relu(self.bn(h))


class ConvResNxN(nn.Module):
    """One residual layer: ``h = conv1x1(relu(bn(convNxN(x)))) + shortcut(x)``.

    The shortcut is a strided mean pool (AMDIM's replacement for a strided 1x1 conv),
    zero-padded in channels when the block grows, or a conv when it shrinks.
    """

    def __init__(self, n_in: int, n_out: int, width: int, stride: int, use_bn: bool = False):
        super().__init__()
        self.n_in, self.n_out, self.width, self.stride = n_in, n_out, width, stride
        self.conv1 = nn.Conv2d(n_in, n_out, width, stride, 0, bias=False)
        self.bn1 = maybe_batch_norm(n_out, use_bn)
        self.conv2 = nn.Conv2d(n_out, n_out, 1, 1, 0, bias=False)
        self.conv3 = nn.Conv2d(n_in, n_out, width, stride, 0, bias=True) if n_out < n_in else None

    def init_weights(self, init_scale: float = 1.0) -> None:
        """Fixup-like init of the public code: rescaled first conv, zero second conv, so
        every residual branch starts at zero and the deep stack starts near-linear."""
        nn.init.kaiming_uniform_(self.conv1.weight, a=math.sqrt(5))
        self.conv1.weight.data.mul_(init_scale)
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x: Tensor) -> Tensor:
        if cpu_gemm.active(x):
            return cpu_gemm.res_nxn(self, x)
        h = self.conv2(F.relu(self.bn1(self.conv1(x))))
        if self.conv3 is not None:
            shortcut = self.conv3(x)
        else:
            # A 1x1, stride-1 mean pool is the identity: skip it (most layers of a block).
            shortcut = x if self.width == self.stride == 1 else F.avg_pool2d(x, self.width, self.stride, 0)
            if self.n_out > self.n_in:
                shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.n_out - self.n_in))
        return h + shortcut


class ConvResBlock(nn.Sequential):
    """``ConvResNxN(n_in, n_out, width, stride)`` followed by ``depth - 1`` 1x1 layers."""

    def __init__(self, n_in: int, n_out: int, width: int, stride: int, depth: int, use_bn: bool = False):
        layers = [ConvResNxN(n_in, n_out, width, stride, use_bn)]
        layers += [ConvResNxN(n_out, n_out, 1, 1, use_bn) for _ in range(depth - 1)]
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if cpu_gemm.active(x):
            return cpu_gemm.res_block(self, x)
        return super().forward(x)


class RKHSHead(nn.Module):
    """AMDIM's ``FakeRKHSConvNet`` (phi_5, phi_7): a residual 1x1-conv MLP into the shared
    ``n_rkhs`` space, ``bn(conv2(relu(bn1(conv1(x)))) + shortcut(x))``; the shortcut starts
    as (roughly) the identity when the output is at least as wide as the input."""

    def __init__(self, n_in: int, n_out: int, use_bn: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(n_in, n_out, 1, bias=False)
        self.bn1 = maybe_batch_norm(n_out, use_bn)
        self.conv2 = nn.Conv2d(n_out, n_out, 1, bias=False)
        self.bn_out = nn.BatchNorm2d(n_out, affine=True)
        self.shortcut = nn.Conv2d(n_in, n_out, 1, bias=True)
        if n_out >= n_in:
            with torch.no_grad():
                self.shortcut.weight.uniform_(-0.01, 0.01)
                idx = torch.arange(n_in)
                self.shortcut.weight[idx, idx, 0, 0] = 1.0

    def init_weights(self, init_scale: float = 1.0) -> None:
        nn.init.kaiming_uniform_(self.conv1.weight, a=math.sqrt(5))
        self.conv1.weight.data.mul_(init_scale)
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x: Tensor) -> Tensor:
        if cpu_gemm.active(x):
            return cpu_gemm.rkhs_head(self, x)
        return self.bn_out(self.conv2(F.relu(self.bn1(self.conv1(x)))) + self.shortcut(x))


def output_size(size: int, geometry: tuple[int, int, int]) -> int:
    """Spatial size after a layer of ``(kernel, stride, pad)``."""
    kernel, stride, pad = geometry
    return (size + 2 * pad - kernel) // stride + 1
