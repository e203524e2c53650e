"""The ``Encoder`` interface: raw view -> latent features ``z`` (g_enc in CPC)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Union

from torch import Tensor, nn

from cpcframe.batch import View

#: What encoders and context models return. A single tensor is channels-last:
#: ``(B, T, C)`` for sequences, ``(B, H, W, C)`` for grids. A mapping holds several
#: scales, e.g. AMDIM's ``{"1": (B, 1, 1, C), "5": (B, 5, 5, C), "7": (B, 7, 7, C)}``.
Features = Union[Tensor, Mapping[str, Tensor]]


class Encoder(nn.Module, ABC):
    """Maps a batched view to latent features.

    Implementations document their input view and output layout, e.g. the CPC audio
    encoder maps a ``(B, 1, S)`` waveform to ``(B, S // 160, 512)`` latents.

    Attributes:
        output_dim: ``C``, the channel size of every returned feature map.
    """

    output_dim: int

    @abstractmethod
    def forward(self, view: View) -> Features:
        """Encode ``view`` (``(B, ...)``) into channels-last features."""

    def example_input(self, batch_size: int = 2) -> View:
        """A small valid batched view, used by the contract tests every component must pass."""
        raise NotImplementedError(f"{type(self).__name__} does not implement example_input()")
