"""``sensor_conv``: CPC's strided convolutional g_enc for multichannel sensor signals.

van den Oord et al. 2018 (arXiv 1807.03748) encode raw audio with five strided 1-D
convolutions (total stride 160); sensors sampled at ~50 Hz need far less
downsampling, so the default is three layers of stride 2 (one latent per 8 steps).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cpcframe import Encoder, UserError
from cpcframe_example_sensors.config import SensorConvConfig


class ChannelNorm(nn.Module):
    """LayerNorm over channels at every time step of ``(B, C, T)``; never mixes steps."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class SensorConv(Encoder):
    """``(B, C_in, S) -> (B, S // downsampling, C)`` with ``C = hidden``.

    Layer ``i``: ``Conv1d(kernel_i, stride_i, padding (kernel_i - stride_i) / 2)``
    (exactly ``S / stride_i`` outputs when divisible), then channel norm and ReLU.
    """

    def __init__(self, config: SensorConvConfig):
        super().__init__()
        layers: list[nn.Module] = []
        channels = config.in_channels
        for kernel, stride in zip(config.kernels, config.strides):
            layers.append(nn.Conv1d(channels, config.hidden, kernel, stride, padding=(kernel - stride) // 2))
            if config.channel_norm:
                layers.append(ChannelNorm(config.hidden))
            layers.append(nn.ReLU())
            channels = config.hidden
        self.net = nn.Sequential(*layers)
        self.in_channels = config.in_channels
        self.downsampling = config.downsampling
        self.output_dim = config.hidden

    def example_input(self, batch_size: int = 2) -> Tensor:
        return torch.randn(batch_size, self.in_channels, 16 * self.downsampling)

    def forward(self, view: Tensor) -> Tensor:
        if view.dim() != 3 or view.shape[1] != self.in_channels:
            raise UserError(f"sensor_conv expects views (B, in_channels={self.in_channels}, S), got "
                            f"shape {tuple(view.shape)}; set model.encoder.in_channels to the number "
                            "of data.dataset.channels")
        return self.net(view).transpose(1, 2)  # (B, C, T) -> (B, T, C)
