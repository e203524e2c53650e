"""``amdim_views``: two independently augmented views of one image (AMDIM, section 3.4 of
Bachman, Hjelm, Buchwalter 2019, arXiv 1906.00910; public code ``datasets.py``).

Per view: crop (random resized crop, or a reflected translation for CIFAR), colour jitter
with probability ``jitter_p``, random grayscale, then normalisation. The horizontal flip
is drawn once per image and shared by both views when ``shared_flip`` (as the public code
does: ``flip_lr`` runs before the two ``train_transform`` calls), else once per view.
Every random number comes from the generator handed to :meth:`AmdimViews.sample`.

Input: ``Example.data`` a ``(3, H, W)`` image (``uint8`` or float in ``[0, 1]``; 1 or 4
channels are converted). Output: two ``(3, S, S)`` float32 views, ``S = image_size``.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor

from cpcframe import Example, validators
from cpcframe_image import augment as A
from cpcframe_image.checks import (hue_range, ordered_range, positive_std, resize_at_least, three_channels,
                                   unit_range)
from cpcframe_image.views import IMAGENET_MEAN, IMAGENET_STD, ImageViewSampler


@attrs.frozen
class AmdimViewsConfig:
    """Options of ``amdim_views`` (defaults: AMDIM's STL-10/ImageNet augmentation at CIFAR size).

    Attributes:
        image_size: side ``S`` of each square view (AMDIM: 32 CIFAR, 64 STL-10, 128 ImageNet).
        crop: ``resized`` (random resized crop), ``translate`` (shift by up to
            ``translate`` pixels with reflection, AMDIM's CIFAR augmentation) or ``none``.
        crop_scale: area fraction range of the resized crop.
        crop_ratio: aspect-ratio range of the resized crop.
        translate: largest shift of ``crop = "translate"``.
        translate_p: probability of translating (AMDIM: 0.8).
        jitter_p: probability of colour jitter (AMDIM: 0.8).
        brightness, contrast, saturation: jitter strengths (factor in ``[1-x, 1+x]``).
        hue: hue jitter strength (shift in ``[-hue, hue]``).
        grayscale_p: probability of grayscale (AMDIM: 0.25 CIFAR/STL-10, 0.2 ImageNet).
        flip_p: probability of a horizontal flip.
        shared_flip: one flip decision for both views (the public code's behaviour).
        mean, std: per-channel normalisation.
        eval_resize: the deterministic probe view resizes the shorter side to this and
            takes the central ``image_size`` crop (AMDIM: 70 for STL-10, 146 for ImageNet);
            0 = resize to ``image_size``.
    """

    image_size: int = attrs.field(default=32, validator=validators.positive)
    crop: Literal["resized", "translate", "none"] = attrs.field(
        default="resized", validator=attrs.validators.in_(("resized", "translate", "none")))
    crop_scale: tuple[float, float] = attrs.field(default=(0.3, 1.0), validator=unit_range)
    crop_ratio: tuple[float, float] = attrs.field(default=(0.7, 1.4), validator=ordered_range)
    translate: int = attrs.field(default=4, validator=validators.non_negative)
    translate_p: float = attrs.field(default=0.8, validator=validators.probability)
    jitter_p: float = attrs.field(default=0.8, validator=validators.probability)
    brightness: float = attrs.field(default=0.4, validator=validators.non_negative)
    contrast: float = attrs.field(default=0.4, validator=validators.non_negative)
    saturation: float = attrs.field(default=0.4, validator=validators.non_negative)
    hue: float = attrs.field(default=0.2, validator=hue_range)
    grayscale_p: float = attrs.field(default=0.25, validator=validators.probability)
    flip_p: float = attrs.field(default=0.5, validator=validators.probability)
    shared_flip: bool = True
    mean: tuple[float, ...] = attrs.field(default=IMAGENET_MEAN, validator=three_channels)
    std: tuple[float, ...] = attrs.field(default=IMAGENET_STD, validator=positive_std)
    eval_resize: int = attrs.field(default=0, validator=validators.non_negative)

    def __attrs_post_init__(self) -> None:
        resize_at_least("eval_resize", self.eval_resize, self.image_size)
        if self.crop == "translate" and self.translate >= self.image_size:
            raise ValueError(f"translate={self.translate} must be smaller than image_size={self.image_size}")


class AmdimViews(ImageViewSampler):
    """Two augmented ``(3, S, S)`` views per image; see the module docstring."""

    num_views = 2

    def __init__(self, config: AmdimViewsConfig = AmdimViewsConfig()):
        super().__init__(config)

    def _crop(self, image: Tensor, g: torch.Generator) -> Tensor:
        cfg, S = self.config, self.config.image_size
        if cfg.crop == "resized":
            top, left, h, w = A.resized_crop_params(image.shape[-2], image.shape[-1], g,
                                                    cfg.crop_scale, cfg.crop_ratio)
            return A.resized_crop(image, top, left, h, w, S)
        image = A.resize_center_crop(image, S, S)
        if cfg.crop == "translate":
            apply = A.coin(g, cfg.translate_p)
            dx, dy = A.randint(g, -cfg.translate, cfg.translate), A.randint(g, -cfg.translate, cfg.translate)
            if apply:
                image = A.translate_reflect(image, dx, dy)
        return image

    def _view(self, image: Tensor, g: torch.Generator, flip: bool) -> Tensor:
        cfg = self.config
        if flip:
            image = image.flip(-1)
        image = A.to_float(self._crop(image, g)).clamp_(0, 1)
        if A.coin(g, cfg.jitter_p):
            image = A.color_jitter(image, g, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)
        if A.coin(g, cfg.grayscale_p):
            image = A.grayscale(image)
        return A.normalize(image, cfg.mean, cfg.std).contiguous()

    def sample(self, example: Example, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        image = A.rgb_of(example)
        cfg = self.config
        shared = A.coin(generator, cfg.flip_p)
        flips = (shared, shared) if cfg.shared_flip else (shared, A.coin(generator, cfg.flip_p))
        return self._view(image, generator, flips[0]), self._view(image, generator, flips[1])

    def eval_view(self, example: Example) -> Tensor:
        """The deterministic test view ``(3, S, S)``: resize, centre crop, normalise."""
        cfg = self.config
        image = A.resize_center_crop(A.rgb_of(example), cfg.eval_resize or cfg.image_size, cfg.image_size)
        return A.normalize(A.to_float(image).clamp_(0, 1), cfg.mean, cfg.std).contiguous()


def build_amdim_views(config: AmdimViewsConfig) -> AmdimViews:
    """AMDIM: two independently augmented views per image (crop, colour jitter, grayscale, flip)."""
    return AmdimViews(config)
