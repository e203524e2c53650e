"""One encoding of long sequence inputs, shared by ``cpcframe embed`` and the probes.

A model trained on fixed windows (CPC: 20480 samples) sees much longer sequences when a
whole recording is encoded at once, and its recurrent context model then drifts from
what it learned. So a long ``(C, L)`` input is cut into consecutive pieces of ``chunk``
positions (rounded down to a multiple of the encoder's hop), the pieces are encoded as
a batch and their features joined along time. ``cpcframe embed``, the speech probe and
ABX all call :func:`encode_in_chunks`, so equal settings give equal features.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from cpcframe.errors import UserError


def encoder_hop(model: torch.nn.Module) -> int:
    """Input positions per output frame of ``model``'s encoder (its ``downsampling``; 1 when
    it does not say)."""
    return int(getattr(getattr(model, "encoder", model), "downsampling", 1) or 1)


@torch.no_grad()
def encode_in_chunks(encode: Callable[[Tensor], Tensor], sequence: Tensor, *, hop: int, chunk: int,
                     batch_size: int = 16) -> Tensor:
    """``(C, L)`` input -> ``(L // hop, D)`` frames.

    Args:
        encode: batched input ``(n, C, l)`` -> features ``(n, l // hop, D)`` (e.g. the
            model's ``encode`` at a chosen level).
        sequence: one unbatched input, time on the last axis (a waveform ``(1, S)``).
        hop: input positions per frame; the input is cut to a multiple of it.
        chunk: positions per piece (rounded down to a multiple of ``hop``); ``0``, or an
            input no longer than one piece, is encoded whole.
        batch_size: pieces encoded together (memory stays bounded for any length).

    Raises:
        UserError: the input is not ``(C, L)`` or is shorter than one frame.
    """
    if sequence.dim() != 2:
        raise UserError(f"chunked encoding takes a (channels, length) input, got shape {tuple(sequence.shape)}")
    if hop < 1 or batch_size < 1 or chunk < 0:
        raise UserError(f"chunked encoding needs hop >= 1, batch_size >= 1 and chunk >= 0 "
                        f"(got {hop}, {batch_size}, {chunk})")
    length = (sequence.shape[-1] // hop) * hop
    if length == 0:
        raise UserError(f"an input of {sequence.shape[-1]} positions is shorter than one frame ({hop})")
    sequence = sequence[:, :length]
    chunk = (chunk // hop) * hop
    if chunk <= 0 or length <= chunk:
        pieces = [sequence[None]]  # (1, C, L)
    else:
        full = length // chunk
        # (C, full·chunk) -> (full, C, chunk): piece i is positions [i·chunk, (i+1)·chunk)
        body = sequence[:, :full * chunk].reshape(sequence.shape[0], full, chunk).transpose(0, 1)
        pieces = list(body.split(batch_size))
        if length > full * chunk:
            pieces.append(sequence[None, :, full * chunk:])
    frames = []
    for piece in pieces:
        feats = encode(piece.contiguous())  # (n, t, D)
        frames.append(feats.reshape(-1, feats.shape[-1]).float().cpu())
    return torch.cat(frames)  # (L // hop, D)
