"""Reading audio with soundfile (never torchaudio.load / torchcodec: no FFmpeg needed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Union

import numpy as np

from cpcframe import UnusableItem

AudioSource = Union[str, Path, bytes, Any]


class AudioDecodeError(UnusableItem):
    """A file that cannot be used; ``reason`` is the ``skipped`` counter it goes to (a
    :class:`cpcframe.UnusableItem`, so a reader that finds it on access counts it there)."""


def read_audio(source: AudioSource, sample_rate: int) -> np.ndarray:
    """Decode ``source`` (a path, encoded bytes or a file object) to mono float32 at ``sample_rate``.

    Several channels are averaged; another rate is resampled (torchaudio's band-limited
    sinc resampler, imported only then).

    Raises:
        AudioDecodeError: ``unreadable`` when soundfile cannot decode it, ``empty`` when
            it holds no samples.
    """
    import soundfile  # looked up at call time so tests can count reads

    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioDecodeError("unreadable", f"{type(exc).__name__}: {exc}") from None
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if wave.size == 0:
        raise AudioDecodeError("empty", "no samples")
    if not np.isfinite(wave).all():
        raise AudioDecodeError("unreadable", "non-finite samples")
    if rate != sample_rate:
        wave = resample(wave, rate, sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def resample(wave: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``(S,)`` float32 at ``orig`` Hz -> ``(ceil(S·new/orig),)`` at ``new`` Hz."""
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(np.ascontiguousarray(wave)), orig, new).numpy()
