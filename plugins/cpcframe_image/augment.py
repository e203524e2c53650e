"""Seeded image augmentations: parameters drawn from a ``torch.Generator``, applied functionally.

torchvision's random transforms draw from the global RNG, which would make views depend on
worker scheduling and break exact resume; here every random number comes from the
generator the view sampler receives, and torchvision's *functional* ops (transforms v2)
do the pixel work. Images are ``(3, H, W)`` tensors: ``uint8`` in, ``float32`` in
``[0, 1]`` after :func:`to_float`.

The augmentations are AMDIM's (Bachman et al. 2019, public code ``datasets.py``): random
resized crop (scale 0.3-1, ratio 0.7-1.4, bicubic) or, for CIFAR, a random translation
of up to 4 pixels with reflection; colour jitter (0.4, 0.4, 0.4, 0.2) with p = 0.8;
random grayscale; horizontal flip.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One float uniformly in ``[low, high)`` from ``generator``."""
    return low + (high - low) * float(torch.rand((), generator=generator))


def coin(generator: torch.Generator, p: float) -> bool:
    """``True`` with probability ``p``; always draws one number so the stream stays aligned."""
    return float(torch.rand((), generator=generator)) < p


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def to_float(image: Tensor) -> Tensor:
    """``uint8 (3, H, W)`` -> ``float32`` in ``[0, 1]``; float input is returned as float32."""
    if image.dtype == torch.uint8:
        return image.float().div_(255.0)
    return image.float()


def as_rgb(image: Tensor) -> Tensor:
    """``(C, H, W)`` with C in {1, 3, 4} -> ``(3, H, W)`` (grayscale repeated, alpha dropped)."""
    if image.dim() == 2:
        image = image[None]
    if image.dim() != 3:
        raise ValueError(f"expected an image (C, H, W), got shape {tuple(image.shape)}")
    channels = image.shape[0]
    if channels == 3:
        return image
    if channels == 1:
        return image.expand(3, -1, -1)
    if channels == 4:
        return image[:3]
    raise ValueError(f"expected 1, 3 or 4 channels, got {channels}")


def rgb_of(example) -> Tensor:
    """The ``(3, H, W)`` image of an ``Example`` (see :func:`as_rgb`)."""
    return as_rgb(torch.as_tensor(example.data))


def resized_crop_params(height: int, width: int, generator: torch.Generator,
                        scale: tuple[float, float], ratio: tuple[float, float],
                        attempts: int = 10) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop covering ``scale`` of the area with aspect
    ratio (w/h) in ``ratio`` (log-uniform), as torchvision's ``RandomResizedCrop``.

    All ``attempts`` are drawn at once (a fixed number of draws, so later draws do not
    depend on which attempt fit); the first that fits wins, else the central crop with the
    ratio clamped into range.
    """
    area = height * width
    draws = torch.rand(attempts, 4, generator=generator)  # (attempt, [area, ratio, top, left])
    target = area * (scale[0] + (scale[1] - scale[0]) * draws[:, 0])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * draws[:, 1]
    aspect = torch.exp(log_r)
    w = torch.sqrt(target * aspect).round().long()
    h = torch.sqrt(target / aspect).round().long()
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    if bool(fits.any()):
        i = int(fits.nonzero()[0])
        hh, ww = int(h[i]), int(w[i])
        top = int(draws[i, 2] * (height - hh + 1))
        left = int(draws[i, 3] * (width - ww + 1))
        return min(top, height - hh), min(left, width - ww), hh, ww
    in_ratio = width / height
    if in_ratio < ratio[0]:
        ww, hh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        hh, ww = height, int(round(height * ratio[1]))
    else:
        ww, hh = width, height
    return (height - hh) // 2, (width - ww) // 2, hh, ww


def resized_crop(image: Tensor, top: int, left: int, h: int, w: int, size: int) -> Tensor:
    """Crop and resize to ``(size, size)``, bicubic with antialiasing (AMDIM's ``INTERP = 3``)."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    return F.resized_crop(image, top, left, h, w, [size, size],
                          interpolation=InterpolationMode.BICUBIC, antialias=True)


def resize_shorter(image: Tensor, size: int) -> Tensor:
    """Resize (bicubic, antialiased) so the shorter side is ``size``; unchanged when it is."""
    if min(image.shape[-2:]) == size:
        return image
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    return F.resize(image, [size], interpolation=InterpolationMode.BICUBIC, antialias=True)


def resize_center_crop(image: Tensor, resize: int, size: int) -> Tensor:
    """Resize the shorter side to ``resize`` then take the central ``size x size`` crop
    (the deterministic test transform; AMDIM STL-10: 70 -> 64, ImageNet: 146 -> 128)."""
    from torchvision.transforms.v2 import functional as F

    image = resize_shorter(image, resize)
    if tuple(image.shape[-2:]) != (size, size):
        image = F.center_crop(image, [size, size])
    return image


def translate_reflect(image: Tensor, dx: int, dy: int) -> Tensor:
    """Shift by ``(dx, dy)`` pixels, filling the uncovered border by reflection
    (AMDIM's ``RandomTranslateWithReflect`` for CIFAR)."""
    pad = max(abs(dx), abs(dy))
    if pad == 0:
        return image
    _, H, W = image.shape
    padded = torch.nn.functional.pad(image[None].float(), (pad, pad, pad, pad), mode="reflect")[0]
    out = padded[:, pad - dy: pad - dy + H, pad - dx: pad - dx + W]
    return out.to(image.dtype) if image.dtype != torch.uint8 else out.round().to(torch.uint8)


def color_jitter(image: Tensor, generator: torch.Generator, brightness: float, contrast: float,
                 saturation: float, hue: float) -> Tensor:
    """torchvision's ``ColorJitter`` with seeded factors: brightness, contrast and saturation
    factors uniform in ``[1 - x, 1 + x]``, hue shift in ``[-hue, hue]``, applied in a random
    order. ``image`` is float in ``[0, 1]``."""
    from torchvision.transforms.v2 import functional as F

    order = torch.randperm(4, generator=generator).tolist()
    factors = [uniform(generator, max(0.0, 1 - brightness), 1 + brightness),
               uniform(generator, max(0.0, 1 - contrast), 1 + contrast),
               uniform(generator, max(0.0, 1 - saturation), 1 + saturation),
               uniform(generator, -hue, hue)]
    for op in order:
        if op == 0 and brightness > 0:
            image = F.adjust_brightness(image, factors[0])
        elif op == 1 and contrast > 0:
            image = F.adjust_contrast(image, factors[1])
        elif op == 2 and saturation > 0:
            image = F.adjust_saturation(image, factors[2])
        elif op == 3 and hue > 0:
            image = F.adjust_hue(image, factors[3])
    return image


def grayscale(image: Tensor) -> Tensor:
    """ITU-R 601 luma, repeated to 3 channels."""
    from torchvision.transforms.v2 import functional as F

    return F.rgb_to_grayscale(image, num_output_channels=3)


def normalize(image: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """``(x - mean) / std`` per channel on a float ``(3, H, W)`` image."""
    m = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image - m) / s


def denormalize(image: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """Inverse of :func:`normalize`, clamped to ``[0, 1]`` (for pictures)."""
    m = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image * s + m).clamp(0, 1)
