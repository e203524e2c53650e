"""``model.safetensors``: a model's weights as a flat ``name -> tensor`` map, no pickle.

Readable by any later cpcframe (and by anything that reads safetensors), which is why
:func:`cpcframe.load` reads only this file and the recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from cpcframe.errors import UserError
from cpcframe.runs.atomic import write_atomic


def weights_writer(model: torch.nn.Module, metadata: dict[str, str] | None = None) -> Callable[[Path], None]:
    """What writes the model's ``state_dict`` (on the CPU) to a path; ``metadata``: strings
    only (a run records ``step``, see :func:`weights_step`)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return lambda tmp: save_file(tensors, str(tmp), metadata=metadata)


def save_weights(path: Path, model: torch.nn.Module, metadata: dict[str, str] | None = None) -> None:
    """The model's ``state_dict`` on the CPU, atomically; ``metadata``: strings only."""
    write_atomic(path, weights_writer(model, metadata))


def weights_step(path: Path) -> int | None:
    """The training step the weights in ``path`` are from (its ``step`` metadata), or
    ``None`` when the file or the record is missing or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            return int((handle.metadata() or {})["step"])
    except Exception:  # missing, torn, or written without a step
        return None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors in ``path``, on the CPU.

    Raises:
        UserError: no such file, or it is torn, truncated or not safetensors.
    """
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"no weights at {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # torn, truncated or not safetensors: one clear message
        raise UserError(f"cannot read weights {path}: {exc}") from None
