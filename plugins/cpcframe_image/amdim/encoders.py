"""``amdim``: AMDIM's multiscale encoder (Bachman, Hjelm, Buchwalter 2019, arXiv 1906.00910,
section 3.5; public code ``model.py`` ``Encoder``).

A ResNet without padding whose residual blocks restrict receptive-field overlap (one
spatial layer per block, then 1x1 layers; mean-pool shortcuts). Three maps are tapped
and projected into a shared ``n_rkhs`` space (the paper's phi heads):

* ``"1"``: the top map after its BatchNorm (phi_1 = identity, AMDIM's ``NopNet``),
* ``"5"``: the first block after the last downsampling, through ``RKHSHead`` (phi_5),
* ``"7"``: the map after the last downsampling, through ``RKHSHead`` (phi_7).

At the paper's input sizes the maps are 1x1, 5x5 and 7x7::

    32  (CIFAR):         {"1": (B, 1, 1, n_rkhs), "5": (B, 5, 5, n_rkhs), "7": (B, 7, 7, n_rkhs)}
    64  (STL-10):        same shapes (one more stride-2 block)
    128 (ImageNet):      same shapes (a stride-2 5x5 stem with reflection padding first)

Other sizes pick the architecture of the largest paper size not above them and give
whatever maps that input produces (:func:`scale_sizes`); a top map larger than 1x1 is
mean-pooled into the global ``"1"`` vector. Output is channels-last.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from cpcframe import Encoder, validators
from cpcframe_image.amdim import cpu_gemm
from cpcframe_image.amdim.layers import (
    ConvResBlock,
    ConvResNxN,
    ConvStem,
    RKHSHead,
    maybe_batch_norm,
    output_size,
)

#: The smallest input each architecture accepts, by family (32, 64, 128).
FAMILIES = (32, 64, 128)


def family(image_size: int) -> int:
    """The architecture used for ``image_size``: the largest of 32/64/128 not above it."""
    return max((f for f in FAMILIES if f <= image_size), default=FAMILIES[0])


#: Channel widths in the plans below: multiples of ``ndf``, or these two.
RGB, RKHS = "rgb", "rkhs"

#: The layers of each family, first to last: ``(kind, in, out, kernel, stride, pad)``.
#: Kinds: ``stem`` (ConvStem), ``nxn`` (ConvResNxN), ``block`` (ConvResBlock of ``n_depth``
#: layers), ``bn`` (the top map's norm), ``out_bn`` (BatchNorm2d of the output).
#: Both the module list and the map sizes are derived from this one table.
PLANS: dict[int, list[tuple]] = {
    32: [("stem", RGB, 1, 3, 1, 0), ("nxn", 1, 1, 1, 1, 0),
         ("block", 1, 2, 4, 2, 0), ("block", 2, 4, 2, 2, 0)],
    64: [("stem", RGB, 1, 3, 1, 0),
         ("block", 1, 2, 4, 2, 0), ("block", 2, 4, 4, 2, 0), ("block", 4, 8, 2, 2, 0)],
    128: [("stem", RGB, 1, 5, 2, 2), ("stem", 1, 1, 3, 1, 0),
          ("block", 1, 2, 4, 2, 0), ("block", 2, 4, 4, 2, 0), ("block", 4, 8, 2, 2, 0)],
}


def plan(image_size: int) -> list[tuple]:
    """The family's layers followed by the common top: norm, two 3x3 blocks, the 3x3 NxN
    projection into ``n_rkhs`` and the output norm."""
    layers = PLANS[family(image_size)]
    top = layers[-1][2]
    return layers + [("bn", top, top, 1, 1, 0), ("block", top, top, 3, 1, 0),
                     ("block", top, top, 3, 1, 0), ("nxn", top, RKHS, 3, 1, 0),
                     ("out_bn", RKHS, RKHS, 1, 1, 0)]


def _geometries(image_size: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, pad) of each layer of the family, in order."""
    return [layer[3:] for layer in plan(image_size)]


def layer_sizes(image_size: int) -> list[int]:
    """Spatial size after each layer for an ``image_size`` input."""
    sizes, s = [], image_size
    for g in _geometries(image_size):
        s = output_size(s, g)
        sizes.append(s)
    return sizes


def tap_layers(image_size: int) -> dict[str, int]:
    """Layer index of each scale: ``"7"`` after the last downsampling (its BatchNorm),
    ``"5"`` the next block, ``"1"`` the last layer."""
    n = len(_geometries(image_size))
    return {"1": n - 1, "5": n - 4, "7": n - 5}


def scale_sizes(image_size: int) -> dict[str, int]:
    """Side of each map before pooling, e.g. ``{"1": 1, "5": 5, "7": 7}`` for 32/64/128."""
    sizes = layer_sizes(image_size)
    return {k: sizes[i] for k, i in tap_layers(image_size).items()}


@attrs.frozen
class AmdimEncoderConfig:
    """Options of ``amdim`` (defaults: the paper's CIFAR-10 model).

    Attributes:
        image_size: input side (32 CIFAR, 64 STL-10, 128 ImageNet; others allowed).
        ndf: base width; blocks have ``ndf``, ``2 ndf``, ``4 ndf`` (``8 ndf`` at 64/128)
            channels (paper: 128 or 320 CIFAR, 192 STL-10, 320 ImageNet).
        n_rkhs: width of the shared embedding space and of every output map (paper: 1024
            or 2048 CIFAR, 1536 STL-10, 2560 ImageNet).
        n_depth: layers per residual block (paper: 10 CIFAR/ImageNet, 8 STL-10).
        use_bn: BatchNorm inside the residual blocks (the public code's ``--use_bn``,
            default off; the output maps are always batch-normalised).
        init_scale: scale of the fixup-like init of each residual branch's first conv.
    """

    image_size: int = attrs.field(default=32, validator=validators.positive)
    ndf: int = attrs.field(default=128, validator=validators.positive)
    n_rkhs: int = attrs.field(default=1024, validator=validators.positive)
    n_depth: int = attrs.field(default=10, validator=validators.positive)
    use_bn: bool = False
    init_scale: float = attrs.field(default=1.0, validator=validators.positive)

    def __attrs_post_init__(self) -> None:
        if self.image_size < FAMILIES[0]:
            raise ValueError(f"image_size={self.image_size} is too small for AMDIM's encoder: "
                             f"the smallest input is {FAMILIES[0]} (paper sizes: 32, 64, 128)")


class AmdimEncoder(Encoder):
    """``(B, 3, S, S)`` images -> ``{"1", "5", "7"}`` channels-last maps of ``n_rkhs`` channels.

    See the module docstring for the shapes; :func:`scale_sizes` gives each map's side
    before the global pooling of ``"1"``.
    """

    def __init__(self, config: AmdimEncoderConfig = AmdimEncoderConfig()):
        super().__init__()
        self.config = config
        c, d, bn = config.ndf, config.n_depth, config.use_bn
        S = config.image_size

        def width(w):
            return 3 if w == RGB else config.n_rkhs if w == RKHS else w * c

        layers: list[nn.Module] = []
        for kind, w_in, w_out, kernel, stride, pad in plan(S):
            n_in, n_out = width(w_in), width(w_out)
            if kind == "stem":
                layers.append(ConvStem(n_in, n_out, kernel, stride, pad))
            elif kind == "nxn":
                layers.append(ConvResNxN(n_in, n_out, kernel, stride, bn))
            elif kind == "block":
                layers.append(ConvResBlock(n_in, n_out, kernel, stride, d, bn))
            elif kind == "bn":
                layers.append(maybe_batch_norm(n_out, bn))
            else:
                layers.append(nn.BatchNorm2d(n_out))
        top = width(PLANS[family(S)][-1][2])
        self.layers = nn.ModuleList(layers)
        self.taps = tap_layers(S)
        # phi_1 is the identity (NopNet); phi_5 and phi_7 map local features into n_rkhs.
        self.head_5 = RKHSHead(top, config.n_rkhs, bn)
        self.head_7 = RKHSHead(top, config.n_rkhs, bn)
        self.output_dim = config.n_rkhs
        self.init_weights(config.init_scale)

    def init_weights(self, init_scale: float = 1.0) -> None:
        for module in self.modules():
            if isinstance(module, (ConvResNxN, RKHSHead)):
                module.init_weights(init_scale)

    def example_input(self, batch_size: int = 2) -> Tensor:
        S = self.config.image_size
        return torch.randn(batch_size, 3, S, S)

    def forward(self, view: Tensor) -> dict[str, Tensor]:
        S = self.config.image_size
        if view.dim() != 4 or view.shape[1] != 3 or tuple(view.shape[2:]) != (S, S):
            raise ValueError(f"amdim encoder expects images (B, 3, {S}, {S}) (model.encoder.image_size), "
                             f"got shape {tuple(view.shape)}; the view sampler's image_size must match")
        maps: dict[int, Tensor] = {}
        # CPU: channels-last memory throughout (see cpu_gemm); GPUs keep cuDNN's defaults.
        x = view.contiguous(memory_format=torch.channels_last) if cpu_gemm.active(view) else view
        wanted = set(self.taps.values())
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in wanted:
                maps[i] = x
        r1 = maps[self.taps["1"]]
        if r1.shape[-1] > 1 or r1.shape[-2] > 1:  # inputs above the paper sizes: pool to a global vector
            r1 = r1.mean(dim=(2, 3), keepdim=True)
        r5 = self.head_5(maps[self.taps["5"]])
        r7 = self.head_7(maps[self.taps["7"]])
        # (B, C, H, W) -> (B, H, W, C): the core's channels-last layout.
        return {"1": r1.permute(0, 2, 3, 1), "5": r5.permute(0, 2, 3, 1), "7": r7.permute(0, 2, 3, 1)}


def build_amdim_encoder(config: AmdimEncoderConfig) -> AmdimEncoder:
    """AMDIM: no-padding ResNet with 1x1 / 5x5 / 7x7 maps projected into n_rkhs."""
    return AmdimEncoder(config)
