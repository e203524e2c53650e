"""``audio_windows``: fixed-length windows cut from utterances (CPC, section 3.1: 20480 samples)."""

from __future__ import annotations

from pathlib import Path

import attrs
import torch
from torch import Tensor

from cpcframe import Example, ViewSampler, validators
from cpcframe_audio.data.labels import LABEL_HOP


@attrs.frozen
class AudioWindowsConfig:
    """Options of ``audio_windows``.

    Attributes:
        window: samples per window (CPC: 20480 = 1.28 s at 16 kHz = 128 latents).
        align: window starts are multiples of this (the encoder's downsampling, 160),
            so a window's latents line up with 10 ms label frames.
        sample_rate: Hz of the files ``cpcframe embed`` reads (resampled to it).
    """

    window: int = attrs.field(default=20480, validator=validators.positive)
    align: int = attrs.field(default=LABEL_HOP, validator=validators.positive)
    sample_rate: int = attrs.field(default=16000, validator=validators.positive)

    def __attrs_post_init__(self) -> None:
        if self.align > self.window:
            raise ValueError(f"align={self.align} is larger than window={self.window}")


class AudioWindows(ViewSampler):
    """One view per utterance: a ``(1, window)`` float32 crop at a random aligned offset.

    ``example.data`` is a ``(channels, samples)`` (or ``(samples,)``) waveform; several
    channels are averaged to mono. The offset is drawn with the given generator only,
    so a resumed run cuts the very same windows. Batches are ``(B, 1, window)``.
    """

    num_views = 1

    def __init__(self, config: AudioWindowsConfig = AudioWindowsConfig()):
        self.config = config

    def min_length(self) -> int:
        return self.config.window

    def inference_chunk(self) -> int:
        """Embedding and probes encode long files in windows of the training length."""
        return self.config.window

    def example(self) -> Example:
        """A random mono utterance of two windows (contract tests)."""
        g = torch.Generator().manual_seed(0)
        return Example(0.1 * torch.randn(1, 2 * self.config.window, generator=g), key="example")

    def inference_views(self, path: Path, run_dir: Path | None = None) -> list[tuple[str, Tensor]]:
        """A whole audio file, mono at ``sample_rate`` Hz, as one ``(1, S)`` view keyed by its stem.

        Read with soundfile (flac, wav, ogg...); another rate is resampled. Files shorter
        than ``align`` samples give no latent and are refused.
        """
        from cpcframe_audio.data.decode import AudioDecodeError, read_audio

        try:
            wave = read_audio(Path(path), self.config.sample_rate)
        except AudioDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if wave.shape[0] < self.config.align:
            raise ValueError(f"{path}: {wave.shape[0]} samples, fewer than one latent ({self.config.align})")
        return [(Path(path).stem, torch.from_numpy(wave)[None])]

    def sample(self, example: Example, generator: torch.Generator) -> tuple[Tensor]:
        wave = torch.as_tensor(example.data)
        if wave.dim() == 1:
            wave = wave[None]
        if wave.dim() != 2:
            raise ValueError(f"audio_windows expects a (channels, samples) waveform for "
                             f"{example.key!r}, got shape {tuple(wave.shape)}")
        if wave.shape[0] > 1:
            wave = wave.float().mean(0, keepdim=True)
        window, align = self.config.window, self.config.align
        samples = wave.shape[1]
        if samples < window:
            # The dataset drops utterances shorter than min_length(); getting one here
            # means a dataset that ignores DatasetRequest.min_length.
            raise ValueError(f"utterance {example.key!r} has {samples} samples, fewer than "
                             f"the window of {window}")
        starts = (samples - window) // align + 1  # aligned offsets that fit
        start = int(torch.randint(starts, (1,), generator=generator)) * align
        return (wave[:, start:start + window].to(torch.float32).contiguous(),)


def build_audio_windows(config: AudioWindowsConfig) -> AudioWindows:
    """Random windows of raw audio at offsets aligned to the encoder stride."""
    return AudioWindows(config)
