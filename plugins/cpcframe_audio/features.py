"""Frozen frame features of whole utterances: a model's latents/context, or MFCCs.

Every extractor maps a ``(1, S)`` waveform to ``(T, D)`` float32 frames on the CPU,
with a known hop (``downsampling`` samples), so probes can align frames with 10 ms labels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cpcframe import encode_in_chunks
from cpcframe_audio.data.labels import LABEL_HOP


def model_hop(model) -> int:
    """Samples per latent of ``model``'s encoder (160 for CPC audio)."""
    return int(getattr(model.encoder, "downsampling", LABEL_HOP))


def encode_utterance(model, wave: Tensor, *, level: str = "context", chunk: int = 0,
                     batch_size: int = 16, device: torch.device | str = "cpu") -> Tensor:
    """``(1, S)`` waveform -> ``(S // hop, D)`` frozen features of ``model``.

    With ``chunk > 0`` the utterance is cut into consecutive chunks of ``chunk`` samples
    (rounded down to a multiple of the hop) encoded as a batch, ``batch_size`` chunks at
    a time, plus the remainder, so memory is bounded for any length and the context
    model sees sequences as long as in training. ``chunk = 0`` encodes it whole. The
    same function as ``cpcframe embed`` (:func:`cpcframe.encode_in_chunks`), so equal
    ``chunk`` gives equal features.

    Raises:
        ValueError: the utterance is shorter than one latent.
    """
    hop = model_hop(model)
    if wave.shape[-1] < hop:
        raise ValueError(f"utterance of {wave.shape[-1]} samples is shorter than one latent ({hop})")
    return encode_in_chunks(lambda piece: model.encode(piece.to(device), level=level),
                            wave.reshape(1, -1).to(torch.float32), hop=hop, chunk=chunk, batch_size=batch_size)


def mfcc_utterance(wave: Tensor, sample_rate: int = 16000, coefficients: int = 13) -> Tensor:
    """``(1, S)`` -> ``(frames, 3·coefficients)``: Kaldi MFCCs with deltas and delta-deltas.

    25 ms windows every 10 ms, centred on the label frames (``snip_edges=False``: frame
    ``i`` is centred at sample ``160·i + 80``), the classic baseline of the CPC paper.
    """
    import torchaudio.compliance.kaldi as kaldi
    import torchaudio.functional as F

    wave = wave.reshape(1, -1).to(torch.float32) * 32768.0  # Kaldi's int16 scale
    mfcc = kaldi.mfcc(wave, sample_frequency=float(sample_rate), frame_length=25.0, frame_shift=10.0,
                      num_ceps=coefficients, snip_edges=False, dither=0.0)  # (frames, c)
    d1 = F.compute_deltas(mfcc.T[None])[0].T
    d2 = F.compute_deltas(d1.T[None])[0].T
    return torch.cat([mfcc, d1, d2], dim=1)


def label_positions(num_labels: int, hop: int, num_frames: int) -> Tensor:
    """Feature row of each 10 ms label frame: the frame whose span holds the label's centre.

    Label ``i`` is centred at sample ``160·i + 80``; a feature frame ``t`` of hop ``h``
    spans ``[h·t, h·(t+1))``. For ``h = 160`` this is the identity.
    """
    centres = torch.arange(num_labels) * LABEL_HOP + LABEL_HOP // 2
    return (centres // hop).clamp(max=num_frames - 1)
