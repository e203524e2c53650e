"""``checkpoint.pt``: the training state that ``--resume`` continues from.

It holds the model, optimizer, scheduler and grad-scaler ``state_dict``\\ s, the step,
the RNG states (one per rank in a distributed run, see :mod:`cpcframe.runtime`), the
world size and the cpcframe version: tensors and plain Python values only. So it is read
with ``torch.load(weights_only=True)``, which cannot run code: a checkpoint from a
shared or downloaded run directory that would need any other object to be unpickled is
refused, with the file and the object named.

Checkpoints of cpcframe 0.1.0 held NumPy's RNG state as an ``ndarray``; the three NumPy
names that rebuild a plain array (:data:`LEGACY_NUMPY_GLOBALS`) are the only additions
to ``weights_only``'s allow-list, so those runs still resume.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cpcframe.errors import UserError
from cpcframe.runs.atomic import write_atomic


def _reconstruct() -> Any:
    try:  # NumPy 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


#: What unpickling 0.1.0's ``uint32`` state array needs, under the names NumPy 1 and 2 write.
LEGACY_NUMPY_GLOBALS: list[Any] = [
    np.ndarray, np.dtype, type(np.dtype(np.uint32)),  # numpy.dtypes.UInt32DType
    (_reconstruct(), "numpy._core.multiarray._reconstruct"),
    (_reconstruct(), "numpy.core.multiarray._reconstruct"),
]


def state_writer(state: dict[str, Any]) -> Callable[[Path], None]:
    """What writes ``state`` (tensors and plain values) to a path."""
    return lambda tmp: torch.save(state, tmp)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain values) to ``path``, atomically."""
    write_atomic(path, state_writer(state))


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip checkpoint, or torn: the error message says enough
        return []


def load_state(path: Path) -> dict[str, Any]:
    """The training state in ``path``, on the CPU, loaded without running any code.

    Raises:
        UserError: no such file; a torn or foreign file; or a file that needs objects
            beyond tensors, plain values and (0.1.0) NumPy arrays to be unpickled.
    """
    try:
        with torch.serialization.safe_globals(LEGACY_NUMPY_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}") from None
    except pickle.UnpicklingError as exc:
        names = [n for n in _unsafe_globals(path) if n not in _allowed_names()]
        if names:
            raise UserError(f"refusing to load {path}: it needs {', '.join(names)} to be unpickled, "
                            "which could run any code (a cpcframe checkpoint holds only tensors and "
                            "plain values); resume only run directories from a source you trust") from None
        raise UserError(f"cannot read checkpoint {path} safely: {_first_line(exc)}") from None
    except Exception as exc:  # a torn or foreign file: say so rather than dump a traceback
        raise UserError(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
    if not isinstance(state, dict):
        raise UserError(f"cannot read checkpoint {path}: it holds a {type(state).__name__}, "
                        "not cpcframe's training state")
    return state


def _allowed_names() -> set[str]:
    return {g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}" for g in LEGACY_NUMPY_GLOBALS}


def _first_line(exc: BaseException) -> str:
    """The reason in an error message (torch's weights_only message: after "Unpickler error:")."""
    text = str(exc)
    if "Unpickler error:" in text:
        text = text.split("Unpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
