"""Causal context models over ``(B, T, C)`` latents: GRU, LSTM, causal transformer.

(``identity``, the default for recipes without ``[model.context]``, is the core's: :mod:`cpcframe.identity`.)
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor, nn

from cpcframe import ContextModel, validators


@attrs.frozen
class RecurrentConfig:
    """Options of the ``gru`` and ``lstm`` context models (CPC: GRU, 256 units, 1 layer).

    Attributes:
        hidden_size: units of each layer; the context size ``H`` (CPC audio: 256; sentence
            CPC: 2400).
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers (unused with one layer).
    """

    hidden_size: int = attrs.field(default=256, validator=validators.positive)
    num_layers: int = attrs.field(default=1, validator=validators.positive)
    dropout: float = attrs.field(default=0.0, validator=attrs.validators.and_(
        attrs.validators.ge(0.0), attrs.validators.lt(1.0)))


class RecurrentContext(ContextModel):
    """``(B, T, C) -> (B, T, H)``: a unidirectional GRU or LSTM (van den Oord et al. 2018, g_ar)."""

    def __init__(self, config: RecurrentConfig, input_dim: int, cell: str):
        super().__init__()
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(input_dim, config.hidden_size, num_layers=config.num_layers,
                       batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.output_dim = config.hidden_size

    def example_input(self, batch_size: int = 2) -> Tensor:
        return torch.randn(batch_size, 12, self.rnn.input_size)

    def forward(self, latents: Tensor) -> Tensor:
        if latents.dim() != 3:
            raise ValueError(f"expected latents (B, T, C), got shape {tuple(latents.shape)}")
        out, _ = self.rnn(latents)
        return out


def build_gru(config: RecurrentConfig, *, input_dim: int) -> RecurrentContext:
    """GRU over time (the CPC paper's context network)."""
    return RecurrentContext(config, input_dim, "gru")


def build_lstm(config: RecurrentConfig, *, input_dim: int) -> RecurrentContext:
    """LSTM over time (CPC_audio's alternative)."""
    return RecurrentContext(config, input_dim, "lstm")


@attrs.frozen
class TransformerConfig:
    """Options of the ``transformer`` context model: a small causal transformer.

    Attributes:
        d_model: width of the transformer; the context size ``H``.
        num_layers: transformer layers.
        num_heads: attention heads (must divide ``d_model``).
        dim_feedforward: width of each layer's feed-forward block.
        dropout: dropout inside the layers.
    """

    d_model: int = attrs.field(default=256, validator=validators.positive)
    num_layers: int = attrs.field(default=2, validator=validators.positive)
    num_heads: int = attrs.field(default=4, validator=validators.positive)
    dim_feedforward: int = attrs.field(default=1024, validator=validators.positive)
    dropout: float = attrs.field(default=0.0, validator=attrs.validators.and_(
        attrs.validators.ge(0.0), attrs.validators.lt(1.0)))

    def __attrs_post_init__(self) -> None:
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")


class CausalTransformerContext(ContextModel):
    """``(B, T, C) -> (B, T, d_model)``: pre-norm transformer with a causal mask and
    sinusoidal positions, so ``c_t`` sees ``z_{<=t}`` only."""

    def __init__(self, config: TransformerConfig, input_dim: int):
        super().__init__()
        self.input = nn.Linear(input_dim, config.d_model)
        layer = nn.TransformerEncoderLayer(config.d_model, config.num_heads, config.dim_feedforward,
                                           config.dropout, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.output_dim = config.d_model

    @staticmethod
    def positions(length: int, dim: int, device: torch.device) -> Tensor:
        pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim))
        table = torch.zeros(length, dim, device=device)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
        return table

    def example_input(self, batch_size: int = 2) -> Tensor:
        return torch.randn(batch_size, 12, self.input.in_features)

    def forward(self, latents: Tensor) -> Tensor:
        if latents.dim() != 3:
            raise ValueError(f"expected latents (B, T, C), got shape {tuple(latents.shape)}")
        T = latents.shape[1]
        x = self.input(latents) + self.positions(T, self.output_dim, latents.device).to(latents.dtype)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=latents.device, dtype=x.dtype)
        return self.norm(self.layers(x, mask=mask, is_causal=True))


def build_transformer(config: TransformerConfig, *, input_dim: int) -> CausalTransformerContext:
    """Small causal transformer over time."""
    return CausalTransformerContext(config, input_dim)
