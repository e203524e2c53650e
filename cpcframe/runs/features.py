"""Feature files: one array per key, as NumPy ``.npz`` or ``.safetensors`` (by the suffix),
or one ``.npy`` per key in a folder (the per-file layout ABX tools read).

What ``cpcframe embed --out FILE`` (``--layout per-file --out DIR``) writes and
:func:`load_features` (:func:`load_per_file`) reads back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cpcframe.errors import UserError
from cpcframe.runs.atomic import write_atomic, write_text_atomic

FORMATS = (".npz", ".safetensors")
#: The per-file layout's description of its arrays (level, frame step, which file is which).
SIDECAR = "features.json"


def check_features_path(path: str | Path) -> Path:
    """``path``, or :class:`UserError` when its suffix is not one of :data:`FORMATS`."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"--out must end in {' or '.join(FORMATS)}, got {path.name!r}")
    return path


def save_features(path: str | Path, features: dict[str, np.ndarray],
                  metadata: dict[str, Any] | None = None) -> Path:
    """Write ``features`` as ``.npz`` or ``.safetensors`` (``metadata``: safetensors only,
    values written as strings), atomically (a temporary file renamed into place)."""
    path = check_features_path(path)
    if path.suffix.lower() == ".npz":
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # a file object: np.savez must not add ".npz"
                np.savez(handle, **features)
    else:
        from safetensors.numpy import save_file

        def write(tmp: Path) -> None:
            save_file({k: np.ascontiguousarray(v) for k, v in features.items()}, str(tmp),
                      metadata=None if metadata is None else {k: str(v) for k, v in metadata.items()})
    return write_atomic(path, write)


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_features`."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    from safetensors.numpy import load_file

    return load_file(str(path))


def frame_step(model: Any, view_sampler: Any) -> tuple[float | None, str]:
    """Seconds between feature frames of a sequence model, and how that was found.

    An encoder that downsamples a timed input says so with ``downsampling`` (input
    steps per frame: 160 samples for CPC audio) and a view sampler that reads one with
    ``config.sample_rate`` (Hz); their ratio is the step (0.01 s). ``None`` otherwise.
    """
    hop = getattr(getattr(model, "encoder", None), "downsampling", None)
    rate = getattr(getattr(view_sampler, "config", None), "sample_rate", None)
    if not hop or not rate:
        return None, "unknown: the encoder gives no downsampling or the view sampler no sample_rate"
    return hop / rate, f"encoder downsampling {hop} / sample rate {rate} Hz"


def save_per_file(folder: str | Path, features: Mapping[str, np.ndarray], sources: Mapping[str, Path],
                  metadata: Mapping[str, Any]) -> Path:
    """One ``KEY.npy`` per array under ``folder``, plus :data:`SIDECAR`.

    The inputs' folders are mirrored below their common parent (``SPEAKER/CHAPTER/ID.flac``
    -> ``folder/SPEAKER/CHAPTER/ID.npy``), so utterance ids stay file stems, as the
    ZeroSpeech and libri-light ABX tools expect. A key with ``/`` (several arrays of one
    input) becomes a subfolder. The sidecar holds ``metadata`` (level, frame step, ...)
    and ``files``: key -> path relative to ``folder``.

    Raises:
        UserError: ``folder`` is a file, or a key would leave ``folder``.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} is a file; the per-file layout writes into a folder")
    parents = {key: Path(sources[key]).resolve().parent for key in features}
    base = Path(os.path.commonpath([str(p) for p in parents.values()])) if parents else Path(".")
    files: dict[str, str] = {}
    for key, array in features.items():
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise UserError(f"cannot name a file after the key {key!r}")
        relative = parents[key].relative_to(base).joinpath(*parts[:-1], parts[-1] + ".npy")

        def write(tmp: Path, array=array) -> None:
            with open(tmp, "wb") as handle:  # a file object: np.save must not add ".npy"
                np.save(handle, np.ascontiguousarray(array))

        write_atomic(folder / relative, write)
        files[key] = relative.as_posix()
    sidecar = {**metadata, "layout": "per-file", "files": files}
    write_text_atomic(folder / SIDECAR, json.dumps(sidecar, indent=2) + "\n")
    return folder


def load_per_file(folder: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (by key) and the sidecar of a folder written by :func:`save_per_file`."""
    folder = Path(folder)
    try:
        sidecar = json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder} is not a per-file feature folder (cannot read {SIDECAR}: {exc})") from None
    return {key: np.load(folder / rel) for key, rel in sidecar["files"].items()}, sidecar
