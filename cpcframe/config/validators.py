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


#: The largest ``train.lr`` accepted: far above any AdamW rate that trains (CPC: 2e-4), far
#: below what overflows float32 in the update (``lr / (1 - beta1**t)``; 1e39 is finite in
#: TOML but ends in "value cannot be converted to type float without overflow").
MAX_LEARNING_RATE = 1e3


def learning_rate(_instance: Any, attribute: Any, value: Any) -> None:
    """An optimizer step size: > 0 and at most :data:`MAX_LEARNING_RATE`."""
    if not 0 < value <= MAX_LEARNING_RATE:
        raise ValueError(f"must be > 0 and at most {MAX_LEARNING_RATE:g}, got {value!r}")


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


def adam_betas(_instance: Any, attribute: Any, value: Any) -> None:
    """Adam's ``(beta1, beta2)``: each in ``[0, 1)`` (1 or more makes the moments diverge)."""
    if not all(0.0 <= b < 1.0 for b in value):
        raise ValueError(f"must be two numbers in [0, 1), got {list(value)}")


#: Device types a run can ask for (``auto``: CUDA when available, else the CPU).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def device_name(_instance: Any, attribute: Any, value: str) -> None:
    """``auto`` or a device ``torch.device`` reads, of a type in :data:`DEVICE_TYPES`
    (``cpu``, ``cuda``, ``cuda:1``, ...). Whether it exists is checked when it is used."""
    if value == "auto":
        return
    import torch

    from cpcframe.errors import did_you_mean

    kind = value.split(":", 1)[0]
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        choices = ", ".join(repr(c) for c in ("auto",) + DEVICE_TYPES)
        raise ValueError(f"must be {choices} or one such as 'cuda:1', got {value!r}"
                         + did_you_mean(kind, ("auto",) + DEVICE_TYPES))


#: Field metadata key of an option that names a file or folder (see :func:`path_option`).
PATH_OPTION = "cpcframe.path"


def path_option(kind: str = "file", where_to_get: str = "") -> dict[str, Any]:
    """Field metadata: the option names an existing ``"file"`` or ``"dir"`` (empty = none);
    ``where_to_get`` is said (once per component) when one is missing.

    ``cpcframe check --build`` and the trainer report every such path that does not
    exist before anything is built (:mod:`cpcframe.config.paths`), with the folder a
    relative path is read from::

        root: str = attrs.field(default="data/corpus", metadata=validators.path_option("dir"))
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"path_option kind must be 'file' or 'dir', got {kind!r}")
    return {PATH_OPTION: kind, PATH_OPTION + ".where": where_to_get}
