"""``image_patches``: an image cut into a grid of overlapping patches (CPC v1, van den Oord et
al. 2018, section 3.2: a 256x256 crop -> 7x7 patches of 64x64 with 32 pixels of overlap).

Per image: resize the shorter side to ``resize`` (CPC: 300), take a random
``image_size`` crop (CPC: 256), flip horizontally with probability ``flip_p``, normalise,
then cut ``G_h x G_w`` patches of ``patch`` pixels every ``stride`` pixels
(``G = (image_size - patch) / stride + 1``). Small images scale down: a 32x32 image with
8x8 patches and stride 4 also gives a 7x7 grid.

Output view: ``(G_h, G_w, 3, patch, patch)`` float32 (batched: ``(B, G_h, G_w, 3, p, p)``).
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from cpcframe import Example, validators
from cpcframe_image import augment as A
from cpcframe_image.checks import positive_std, resize_at_least, three_channels
from cpcframe_image.views import IMAGENET_MEAN, IMAGENET_STD, ImageViewSampler


@attrs.frozen
class ImagePatchesConfig:
    """Options of ``image_patches`` (defaults: CPC v1 on ImageNet).

    Attributes:
        image_size: side of the (random, at training) square crop the grid is cut from.
        resize: shorter side the image is resized to before cropping (0 = to ``image_size``).
        patch: patch side.
        stride: step between patches (``patch / 2`` = 50 % overlap).
        flip_p: probability of a horizontal flip of the whole crop.
        grayscale_p: probability of turning the crop gray (0 in CPC v1).
        mean, std: per-channel normalisation.
    """

    image_size: int = attrs.field(default=256, validator=validators.positive)
    resize: int = attrs.field(default=300, validator=validators.non_negative)
    patch: int = attrs.field(default=64, validator=validators.positive)
    stride: int = attrs.field(default=32, validator=validators.positive)
    flip_p: float = attrs.field(default=0.5, validator=validators.probability)
    grayscale_p: float = attrs.field(default=0.0, validator=validators.probability)
    mean: tuple[float, ...] = attrs.field(default=IMAGENET_MEAN, validator=three_channels)
    std: tuple[float, ...] = attrs.field(default=IMAGENET_STD, validator=positive_std)

    def __attrs_post_init__(self) -> None:
        if self.patch > self.image_size:
            raise ValueError(f"patch={self.patch} is larger than image_size={self.image_size}")
        if (self.image_size - self.patch) % self.stride:
            raise ValueError(f"image_size - patch = {self.image_size - self.patch} must be a multiple of "
                             f"stride={self.stride} so the patches tile the crop exactly")
        resize_at_least("resize", self.resize, self.image_size)

    @property
    def grid(self) -> int:
        """Patches per row and column."""
        return (self.image_size - self.patch) // self.stride + 1


def cut_patches(image: Tensor, patch: int, stride: int) -> Tensor:
    """``(3, S, S) -> (G, G, 3, patch, patch)`` overlapping patches (a strided view, copied)."""
    grid = image.unfold(1, patch, stride).unfold(2, patch, stride)  # (3, G, G, p, p)
    return grid.permute(1, 2, 0, 3, 4).contiguous()


class ImagePatches(ImageViewSampler):
    """One view: a grid of overlapping patches; see the module docstring."""

    num_views = 1

    def __init__(self, config: ImagePatchesConfig = ImagePatchesConfig()):
        super().__init__(config)

    def example_size(self) -> tuple[int, int]:
        side = max(self.config.resize, self.config.image_size) + 8
        return side, side + 4

    def _resized(self, example: Example) -> Tensor:
        cfg = self.config
        return A.resize_shorter(A.rgb_of(example), cfg.resize or cfg.image_size)

    def _finish(self, crop: Tensor) -> Tensor:
        cfg = self.config
        image = A.normalize(A.to_float(crop).clamp_(0, 1), cfg.mean, cfg.std)
        return cut_patches(image, cfg.patch, cfg.stride)

    def sample(self, example: Example, generator: torch.Generator) -> tuple[Tensor]:
        cfg, S = self.config, self.config.image_size
        image = self._resized(example)
        H, W = image.shape[-2:]
        top, left = A.randint(generator, 0, H - S), A.randint(generator, 0, W - S)
        crop = image[:, top: top + S, left: left + S]
        if A.coin(generator, cfg.flip_p):
            crop = crop.flip(-1)
        if A.coin(generator, cfg.grayscale_p):
            crop = A.grayscale(A.to_float(crop))
        return (self._finish(crop),)

    def eval_view(self, example: Example) -> Tensor:
        """The deterministic probe view: centre crop, no flip -> ``(G, G, 3, p, p)``."""
        S = self.config.image_size
        image = self._resized(example)
        H, W = image.shape[-2:]
        top, left = (H - S) // 2, (W - S) // 2
        return self._finish(image[:, top: top + S, left: left + S])


def build_image_patches(config: ImagePatchesConfig) -> ImagePatches:
    """CPC images: a grid of overlapping patches (7x7 of 64 px, stride 32, from a 256 crop)."""
    return ImagePatches(config)
