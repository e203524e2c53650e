"""Synthetic shapes as an image folder, for the quickstart and the tests.

Four classes — ``circle``, ``square``, ``triangle``, ``cross`` — of one filled shape of a
random size, position and rotation. Two styles:

* ``mono`` (default): a light shape on a dark background with pixel noise. Only the
  shape's geometry differs between images, so what a contrastive model learns to tell
  images apart is largely what the class is about: a briefly trained AMDIM encoder
  beats its random init clearly here (the quickstart).
* ``colour``: a shape of a random colour on a textured background of another random
  colour (stripes at a random angle and frequency, plus noise). Colour and texture carry
  no class information but are the easiest cues for telling images apart, so a short
  contrastive run learns mostly them (a much harder quickstart).

    python -m cpcframe_image.data.synthetic data/shapes            # 4 x 150 PNGs of 32x32
    python -m cpcframe_image.data.synthetic data/shapes --per-class 50 --size 32 --seed 1 --style colour
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

CLASSES = ("circle", "square", "triangle", "cross")


def _shape_mask(kind: str, size: int, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """``(size, size)`` bool mask of one shape centred at ``(cx, cy)``."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    # Rotate coordinates into the shape's frame.
    c, s = math.cos(angle), math.sin(angle)
    u = c * (x - cx) + s * (y - cy)
    v = -s * (x - cx) + c * (y - cy)
    if kind == "circle":
        return u * u + v * v <= radius * radius
    if kind == "square":
        half = radius * 0.8
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == "triangle":  # equilateral, pointing "up" in its frame
        r = radius * 1.1
        return (v <= r / 2) & (v >= -r + math.sqrt(3) * np.abs(u))
    if kind == "cross":
        arm, half = radius * 0.3, radius
        return ((np.abs(u) <= arm) & (np.abs(v) <= half)) | ((np.abs(v) <= arm) & (np.abs(u) <= half))
    raise ValueError(f"unknown shape {kind!r}")


def _colour(rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    """A random RGB colour in [0, 1], at least 0.45 away (Euclidean) from ``avoid``."""
    while True:
        colour = rng.uniform(0.0, 1.0, size=3)
        if avoid is None or np.linalg.norm(colour - avoid) > 0.45:
            return colour


def make_mono_image(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 image: a light shape of class ``kind`` on a dark, noisy ground."""
    image = np.full((size, size, 3), 0.1) + rng.normal(0, 0.03, (size, size, 1))
    radius = rng.uniform(0.22, 0.34) * size
    margin = radius * 1.05
    cx, cy = rng.uniform(margin, size - margin, size=2)
    mask = _shape_mask(kind, size, cx, cy, radius, rng.uniform(0, 2 * math.pi))
    image = np.where(mask[..., None], 0.9, image)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def make_image(kind: str, rng: np.random.Generator, size: int = 32, style: str = "colour") -> np.ndarray:
    """One ``(size, size, 3)`` uint8 image of a shape of class ``kind`` (``style``: see the module)."""
    if style == "mono":
        return make_mono_image(kind, rng, size)
    if style != "colour":
        raise ValueError(f"unknown style {style!r} (mono or colour)")
    background = _colour(rng)
    foreground = _colour(rng, background)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    freq = rng.uniform(0.15, 0.6)
    stripes = 0.5 + 0.5 * np.sin(freq * (x * math.cos(theta) + y * math.sin(theta)) + rng.uniform(0, 2 * math.pi))
    texture = rng.uniform(0.1, 0.3) * (stripes[..., None] - 0.5) + rng.normal(0, 0.04, (size, size, 1))
    image = np.clip(background[None, None, :] + texture, 0, 1)
    radius = rng.uniform(0.22, 0.34) * size
    margin = radius * 1.05
    cx, cy = rng.uniform(margin, size - margin, size=2)
    mask = _shape_mask(kind, size, cx, cy, radius, rng.uniform(0, 2 * math.pi))
    shade = 1.0 + rng.normal(0, 0.03, (size, size, 1))
    image = np.where(mask[..., None], np.clip(foreground[None, None, :] * shade, 0, 1), image)
    return (image * 255).round().astype(np.uint8)


def write_shapes(root: str | Path, per_class: int = 150, size: int = 32, seed: int = 0,
                 classes: tuple[str, ...] = CLASSES, style: str = "mono") -> Path:
    """Write ``root/<class>/<class>_NNNN.png`` and return ``root``. Deterministic in ``seed``."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in classes:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(make_image(kind, rng, size, style)).save(folder / f"{kind}_{i:04d}.png")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpcframe_image.data.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="output folder (class sub-folders are created in it)")
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", choices=("mono", "colour"), default="mono")
    args = parser.parse_args(argv)
    root = write_shapes(args.root, args.per_class, args.size, args.seed, style=args.style)
    print(f"wrote {args.per_class * len(CLASSES)} images of {args.size}x{args.size} to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
