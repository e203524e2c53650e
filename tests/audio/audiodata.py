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


REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "recipes" / "quickstart_speech.toml"
LIBRISPEECH_RECIPE = REPO / "recipes" / "cpc_librispeech.toml"
REAL_DATA = REPO.parent / "shared" / "data" / "librispeech-mini"

#: A librispeech recipe with a model that trains in a second on 0.5 s utterances
#: (windows of 0.1 s = 10 latents); set ``data.dataset.root``.
TINY = Path(__file__).resolve().parent / "tiny_librispeech.toml"


def run_args(recipe: Path, out: Path, *sets: str) -> list[str]:
    """Arguments of ``cpcframe run RECIPE --out OUT --quiet --set ...``."""
    args = ["run", str(recipe), "--out", str(out), "--quiet"]
    for s in sets:
        args += ["--set", s]
    return args


def write_speakers(root: Path, speakers: dict[str, float], utterances: int, samples: int,
                   *, seed: int = 0) -> list[str]:
    """``utterances`` tones per speaker (``speaker id -> pitch``); returns the keys."""
    keys = []
    for s, (speaker, freq) in enumerate(speakers.items()):
        for u in range(utterances):
            key = f"{speaker}-{10 + u % 2}-{u:04d}"
            write_utterance(root, key, samples, freq=freq, seed=seed + 100 * s + u)
            keys.append(key)
    return keys
