"""``patch_resnet``: a pre-activation (v2) ResNet applied to every patch of a grid, mean-pooled
to one vector per patch (CPC v1 used ResNet-v2-101 up to its third stack, 1024 dims).

``(B, G_h, G_w, 3, p, p)`` patches -> ``(B, G_h, G_w, C)`` channels-last latents. All
patches of the batch go through the network as one ``(B·G_h·G_w, 3, p, p)`` batch.

Normalisation defaults to a per-sample layer norm (``GroupNorm`` with one group): batch
norm lets patches of one image exchange information through batch statistics, which CPC
v2 (Hénaff et al. 2019) found harmful; ``norm = "batch"`` is available.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cpcframe import Encoder, validators

Norm = Literal["layer", "batch", "none"]


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


@attrs.frozen
class PatchResNetConfig:
    """Options of ``patch_resnet`` (defaults: a small ResNet for small patches).

    Attributes:
        width: channels of the first stage; stage ``s`` has ``width·2^s`` (x4 outputs when
            ``bottleneck``).
        blocks: residual blocks per stage (ResNet-101's first three stacks: ``[3, 4, 23]``).
        bottleneck: 1x1-3x3-1x1 bottleneck blocks (ResNet-50/101) instead of two 3x3 convs.
        stem: ``small`` (a 3x3 conv, for patches of 8-32 px) or ``imagenet`` (7x7 stride-2
            conv and a stride-2 max pool, for 64 px patches).
        norm: ``layer``, ``batch`` or ``none``.
    """

    width: int = attrs.field(default=64, validator=validators.positive)
    blocks: tuple[int, ...] = attrs.field(default=(2, 2, 2), validator=[validators.non_empty, validators.positive])
    bottleneck: bool = False
    stem: Literal["small", "imagenet"] = attrs.field(default="small",
                                                      validator=attrs.validators.in_(("small", "imagenet")))
    norm: Norm = attrs.field(default="layer", validator=attrs.validators.in_(("layer", "batch", "none")))


class PreActBlock(nn.Module):
    """ResNet v2 unit (He et al. 2016, "Identity mappings"): ``x + F(relu(norm(x)))``; the
    projection shortcut, when the shape changes, also reads the pre-activated input."""

    def __init__(self, n_in: int, n_out: int, stride: int, bottleneck: bool, norm: str):
        super().__init__()
        self.norm1 = make_norm(norm, n_in)
        if bottleneck:
            mid = n_out // 4
            self.body = nn.Sequential(
                nn.Conv2d(n_in, mid, 1, bias=False), make_norm(norm, mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, 3, stride, 1, bias=False), make_norm(norm, mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, n_out, 1, bias=False))
        else:
            self.body = nn.Sequential(
                nn.Conv2d(n_in, n_out, 3, stride, 1, bias=False), make_norm(norm, n_out), nn.ReLU(inplace=True),
                nn.Conv2d(n_out, n_out, 3, 1, 1, bias=False))
        self.shortcut = (nn.Conv2d(n_in, n_out, 1, stride, bias=False)
                         if stride != 1 or n_in != n_out else None)

    def forward(self, x: Tensor) -> Tensor:
        pre = F.relu(self.norm1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        return shortcut + self.body(pre)


class PatchResNet(Encoder):
    """``(B, G_h, G_w, 3, p, p) -> (B, G_h, G_w, C)``; see the module docstring."""

    def __init__(self, config: PatchResNetConfig = PatchResNetConfig()):
        super().__init__()
        self.config = config
        w = config.width
        if config.stem == "small":
            self.stem = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        else:
            self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3, bias=False), make_norm(config.norm, w),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        expansion = 4 if config.bottleneck else 1
        blocks: list[nn.Module] = []
        n_in = w
        for stage, count in enumerate(config.blocks):
            n_out = w * 2 ** stage * expansion
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(PreActBlock(n_in, n_out, stride, config.bottleneck, config.norm))
                n_in = n_out
        self.blocks = nn.Sequential(*blocks)
        self.final_norm = make_norm(config.norm, n_in)  # v2 nets end with norm + ReLU
        self.output_dim = n_in

    def example_input(self, batch_size: int = 2) -> Tensor:
        return torch.randn(batch_size, 3, 3, 3, 16, 16)

    def forward(self, view: Tensor) -> Tensor:
        if view.dim() != 6 or view.shape[3] != 3:
            raise ValueError(f"patch_resnet expects patches (B, G_h, G_w, 3, p, p), got shape {tuple(view.shape)} "
                             "(use the image_patches view sampler)")
        B, Gh, Gw, C, ph, pw = view.shape
        x = self.stem(view.reshape(B * Gh * Gw, C, ph, pw))
        x = F.relu(self.final_norm(self.blocks(x)))
        return x.mean(dim=(2, 3)).view(B, Gh, Gw, self.output_dim)


def build_patch_resnet(config: PatchResNetConfig) -> PatchResNet:
    """CPC images: a pre-activation ResNet per patch, mean-pooled to one vector."""
    return PatchResNet(config)
