"""The process's runtime: which device, and the global random number generators.

Exact resume needs every RNG state in the checkpoint, and a checkpoint is read with
``torch.load(weights_only=True)`` (see :mod:`cpcframe.runs.state`), so :func:`rng_state`
returns tensors and plain values only: Python's state as ints, NumPy's as an int64
tensor plus ints, torch's (and CUDA's) as the byte tensors torch gives.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from cpcframe.errors import UserError


def resolve_device(name: str, setting: str = "train.device") -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; anything else as ``torch.device``.

    Raises:
        UserError: ``name`` is no device, or one this machine does not have (a CUDA
            device without CUDA, ``cuda:3`` on two GPUs, ``mps`` off Apple silicon);
            ``setting`` names where it was asked for in the message.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"{setting} = {name!r} is not a device; use 'auto', 'cpu', 'cuda', "
                        "'cuda:1', 'mps', ...") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{setting} = {name!r} but no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"{setting} = {name!r} but this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{setting} = {name!r} but no MPS device is available")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """Seed of a rank that joins a resumed run at ``step`` without a saved RNG state."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, 0x2A7C, rank, step]).generate_state(1)[0])


def rng_state() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain values (see the module docstring)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": (int(version), tuple(int(k) for k in internal), None if gauss is None else float(gauss)),
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (or what cpcframe 0.1.0 saved: NumPy's
    state as its ``get_state()`` tuple)."""
    random.setstate(state["python"])
    numpy = state["numpy"]
    if isinstance(numpy, dict):
        numpy = (numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                 numpy["has_gauss"], numpy["cached_gaussian"])
    np.random.set_state(numpy)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore_rank_rng(saved: Any, *, rank: int, seed: int, step: int) -> None:
    """This rank's RNG state from a checkpoint's: one state per rank (a list) or rank 0's
    alone (a single process's run). A rank without a saved state (the run continues on more
    processes) gets its own stream from ``(seed, rank, step)``, unlike a fresh run's."""
    if isinstance(saved, list):
        state = saved[rank] if rank < len(saved) else None
    else:
        state = saved if rank == 0 else None
    if state is not None:
        set_rng_state(state)
    else:
        seed_everything(rank_seed(seed, rank, step))
