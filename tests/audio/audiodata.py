"""Helpers of the audio tests: tiny LibriSpeech-layout files written on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile


def write_utterance(root: Path, key: str, samples: int, *, freq: float = 220.0, seed: int = 0,
                    suffix: str = ".flac", rate: int = 16000, channels: int = 1) -> Path:
    """``root/SPK/CHAPTER/KEY.flac``: a tone plus noise, distinct per key."""
    speaker, chapter, _ = key.split("-")
    folder = root / speaker / chapter
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(samples)
    if channels > 1:
        wave = np.stack([wave] * channels, axis=1)
    path = folder / f"{key}{suffix}"
    soundfile.write(path, wave.astype(np.float32), rate)
    return path
