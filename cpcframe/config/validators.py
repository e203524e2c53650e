"""attrs validators with messages that read well after a key path."""

from __future__ import annotations

from typing import Any


def positive(_instance: Any, attribute: Any, value: Any) -> None:
    """Every element must be > 0 (works on numbers and sequences of numbers)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if not v > 0:
            raise ValueError(f"must be > 0, got {value!r}")


def non_negative(_instance: Any, attribute: Any, value: Any) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if v < 0:
            raise ValueError(f"must be >= 0, got {value!r}")


def probability(_instance: Any, attribute: Any, value: Any) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be in [0, 1], got {value!r}")


def fraction(_instance: Any, attribute: Any, value: Any) -> None:
    """A share strictly between 0 and 1 (a held-out or validation fraction)."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"must be between 0 and 1 (exclusive), got {value!r}")


def non_empty(_instance: Any, attribute: Any, value: Any) -> None:
    if len(value) == 0:
        raise ValueError("must not be empty")
