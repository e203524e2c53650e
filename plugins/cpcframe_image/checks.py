"""Validators shared by the image plugin's config classes (messages read well after a key path)."""

from __future__ import annotations

from typing import Any


def ordered_range(_inst: Any, attribute: Any, value: tuple[float, float]) -> None:
    """A ``(low, high)`` pair with ``0 < low <= high``."""
    low, high = value
    if not 0 < low <= high:
        raise ValueError(f"must be [low, high] with 0 < low <= high, got {list(value)}")


def unit_range(_inst: Any, attribute: Any, value: tuple[float, float]) -> None:
    """A ``(low, high)`` pair inside ``(0, 1]`` with ``low <= high``."""
    ordered_range(_inst, attribute, value)
    if value[1] > 1:
        raise ValueError(f"must lie in (0, 1], got {list(value)}")


def three_channels(_inst: Any, attribute: Any, value: tuple[float, ...]) -> None:
    if len(value) != 3:
        raise ValueError(f"must give 3 values (R, G, B), got {len(value)}")


def positive_std(_inst: Any, attribute: Any, value: tuple[float, ...]) -> None:
    three_channels(_inst, attribute, value)
    if any(v <= 0 for v in value):
        raise ValueError(f"must be > 0, got {list(value)}")


def resize_at_least(name: str, resize: int, image_size: int) -> None:
    """A resize target (0 = none) that leaves room for the ``image_size`` crop."""
    if resize and resize < image_size:
        raise ValueError(f"{name}={resize} must be >= image_size={image_size} (or 0)")


def hue_range(_inst: Any, attribute: Any, value: float) -> None:
    if not 0.0 <= value <= 0.5:
        raise ValueError(f"must be in [0, 0.5], got {value!r}")
