"""Feature files: one array per key, as NumPy ``.npz`` or ``.safetensors`` (by the suffix).

What ``cpcframe embed --out FILE`` writes and :func:`load_features` reads back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cpcframe.errors import UserError
from cpcframe.runs.atomic import write_atomic

FORMATS = (".npz", ".safetensors")


def check_features_path(path: str | Path) -> Path:
    """``path``, or :class:`UserError` when its suffix is not one of :data:`FORMATS`."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"--out must end in {' or '.join(FORMATS)}, got {path.name!r}")
    return path


def save_features(path: str | Path, features: dict[str, np.ndarray],
                  metadata: dict[str, str] | None = None) -> Path:
    """Write ``features`` as ``.npz`` or ``.safetensors`` (``metadata``: safetensors only),
    atomically (a temporary file renamed into place)."""
    path = check_features_path(path)
    if path.suffix.lower() == ".npz":
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # a file object: np.savez must not add ".npz"
                np.savez(handle, **features)
    else:
        from safetensors.numpy import save_file

        def write(tmp: Path) -> None:
            save_file({k: np.ascontiguousarray(v) for k, v in features.items()}, str(tmp),
                      metadata=metadata)
    return write_atomic(path, write)


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_features`."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    from safetensors.numpy import load_file

    return load_file(str(path))
