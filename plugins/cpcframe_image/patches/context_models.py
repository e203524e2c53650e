"""``pixelcnn``: a masked, PixelCNN-style context network over a grid of patch latents (CPC v1,
van den Oord et al. 2018, section 3.2: "a PixelCNN-style autoregressive model ... to make
predictions about the latent activations in following rows").

``(B, H, W, C) -> (B, H, W, hidden)``. Causality is by rows: the context at row ``i`` depends
on rows ``<= i`` only (all columns of them), never on a row below, because every spatial
convolution is *row-causal*: a ``kernel_rows x kernel_cols`` kernel padded
``kernel_rows - 1`` rows above and none below, so output row ``i`` reads input rows
``i - kernel_rows + 1 .. i``. Everything else is 1x1 or per-location (layer norm over
channels), so no layer can look down; stacking ``layers`` residual blocks grows the
receptive field upwards only. (No batch norm: its statistics would mix rows.)
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cpcframe import ContextModel, validators


@attrs.frozen
class PixelCNNConfig:
    """Options of ``pixelcnn``.

    Attributes:
        hidden: output (and inner) channels.
        layers: residual blocks.
        kernel_rows: rows each spatial kernel spans (the current row and ``kernel_rows - 1``
            above); the context sees ``layers·(kernel_rows - 1)`` rows up (default 10: all of
            a 7-row grid).
        kernel_cols: columns each spatial kernel spans (odd; centred).
    """

    hidden: int = attrs.field(default=256, validator=validators.positive)
    layers: int = attrs.field(default=5, validator=validators.positive)
    kernel_rows: int = attrs.field(default=3, validator=validators.positive)
    kernel_cols: int = attrs.field(default=3, validator=validators.positive)

    def __attrs_post_init__(self) -> None:
        if self.kernel_cols % 2 == 0:
            raise ValueError(f"kernel_cols={self.kernel_cols} must be odd (kernels are centred on the column)")


class RowCausalConv(nn.Conv2d):
    """A conv whose output row ``i`` sees input rows ``<= i`` (pads above only)."""

    def __init__(self, n_in: int, n_out: int, rows: int, cols: int):
        super().__init__(n_in, n_out, (rows, cols), padding=0)
        self.pad = (cols // 2, cols // 2, rows - 1, 0)  # (left, right, top, bottom)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.pad))


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each location of a ``(B, C, H, W)`` map."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CausalBlock(nn.Module):
    """``x + conv1x1(relu(row_causal(relu(conv1x1(relu(norm(x)))))))``."""

    def __init__(self, channels: int, rows: int, cols: int):
        super().__init__()
        self.norm = ChannelNorm(channels)
        self.reduce = nn.Conv2d(channels, channels, 1)
        self.spatial = RowCausalConv(channels, channels, rows, cols)
        self.expand = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.reduce(F.relu(self.norm(x)))
        h = self.spatial(F.relu(h))
        return x + self.expand(F.relu(h))


class PixelCNNContext(ContextModel):
    """Row-causal context over a ``(B, H, W, C)`` grid; see the module docstring."""

    def __init__(self, config: PixelCNNConfig, input_dim: int):
        super().__init__()
        self.config = config
        self.input_dim = input_dim
        self.project = nn.Conv2d(input_dim, config.hidden, 1)
        self.blocks = nn.Sequential(*[CausalBlock(config.hidden, config.kernel_rows, config.kernel_cols)
                                      for _ in range(config.layers)])
        self.out_norm = ChannelNorm(config.hidden)
        self.output_dim = config.hidden

    def example_input(self, batch_size: int = 2) -> Tensor:
        return torch.randn(batch_size, 5, 4, self.input_dim, requires_grad=True)

    def forward(self, latents: Tensor) -> Tensor:
        if not isinstance(latents, Tensor) or latents.dim() != 4:
            shape = tuple(latents.shape) if isinstance(latents, Tensor) else type(latents).__name__
            raise ValueError(f"pixelcnn expects a grid of latents (B, H, W, C), got {shape}")
        x = self.project(latents.permute(0, 3, 1, 2))  # (B, C, H, W)
        x = self.out_norm(self.blocks(x))
        return x.permute(0, 2, 3, 1)


def build_pixelcnn(config: PixelCNNConfig, *, input_dim: int) -> PixelCNNContext:
    """CPC images: masked (row-causal) PixelCNN-style context over the patch grid."""
    return PixelCNNContext(config, input_dim)
