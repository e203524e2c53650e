"""CPC's audio encoder ``g_enc``: strided 1-D convolutions over the raw waveform.

van den Oord et al. 2018 (arXiv 1807.03748), section 3.1: five convolutions with strides
(5, 4, 2, 2, 2), kernels (10, 8, 4, 4, 4), 512 channels and ReLUs; one latent every
``5·4·2·2·2 = 160`` samples (10 ms at 16 kHz). Padding follows CPC_audio's
``CPCEncoder`` (3, 2, 1, 1, 1 = ``ceil((kernel - stride) / 2)``) so that a window of
``S`` samples gives exactly ``S // 160`` latents.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cpcframe import Encoder, fastest, validators
from cpcframe_audio.norm_relu import layer_norm_relu_padded
from cpcframe_audio.strided_conv import chunk_padding, conv1d_channels_last, shifted_gemm_applies

NormKind = Literal["channel", "layer", "batch", "none"]
ConvBackend = Literal["auto", "shifted_gemm", "conv1d"]


@attrs.frozen
class AudioEncoderConfig:
    """Options of ``cpc_audio``.

    Attributes:
        hidden: channels of every convolution (CPC: 512); the latent size ``C``.
        strides: stride of each convolution; their product is the downsampling.
        kernels: kernel size of each convolution (same length as ``strides``).
        padding: padding of each convolution; empty = ``ceil((kernel - stride) / 2)``,
            CPC_audio's (3, 2, 1, 1, 1) for the paper's layers.
        norm: normalisation after each convolution: ``channel`` (CPC_audio's
            ``ChannelNorm``: per time step over channels, unbiased variance, its default),
            ``layer`` (``nn.LayerNorm`` over channels per time step), ``batch``
            (``BatchNorm1d``; mixes items of a batch, which lets CPC cheat through batch
            statistics on small batches) or ``none``. The paper does not say.
        sample_channels: input channels (1 = mono waveform).
        normalize_input: standardise each item's waveform (zero mean, unit variance over
            its samples) before the first convolution, as wav2vec 2.0 does. Off in the
            paper. At speech amplitudes (std ~0.05) the first layer's bias otherwise
            dominates its output, so every latent starts out nearly the same vector and
            learning is slow; small models trained briefly need it.
        conv_backend: how the convolutions are computed; the weights and results are the
            same. ``shifted_gemm`` runs each layer on channels-last ``(B, T, C)`` tensors as
            one matrix product plus shifted adds (:mod:`cpcframe_audio.strided_conv`;
            1.73x faster forward+backward than oneDNN's ``conv1d`` on a 2-core Xeon,
            1.3-1.5x on a 2-core AVX2 EPYC with the im2col waveform layer and fused norms;
            1.0-1.2x before them), ``conv1d`` calls ``F.conv1d`` (cuDNN on a GPU),
            ``auto`` times both on the machine it runs on, once per shape bucket, device,
            dtype and thread count, and keeps the faster (``conv1d`` on a tie;
            :mod:`cpcframe.measured_choice`).
    """

    hidden: int = attrs.field(default=512, validator=validators.positive)
    strides: tuple[int, ...] = attrs.field(default=(5, 4, 2, 2, 2), validator=validators.positive)
    kernels: tuple[int, ...] = attrs.field(default=(10, 8, 4, 4, 4), validator=validators.positive)
    padding: tuple[int, ...] = attrs.field(default=(), validator=validators.non_negative)
    norm: NormKind = attrs.field(default="channel",
                                 validator=attrs.validators.in_(("channel", "layer", "batch", "none")))
    sample_channels: int = attrs.field(default=1, validator=validators.positive)
    normalize_input: bool = False
    conv_backend: ConvBackend = attrs.field(default="auto", validator=attrs.validators.in_(get_args(ConvBackend)))

    def __attrs_post_init__(self) -> None:
        if not self.strides:
            raise ValueError("strides must name at least one convolution")
        if len(self.kernels) != len(self.strides):
            raise ValueError(f"kernels has {len(self.kernels)} entries but strides has "
                             f"{len(self.strides)}; give one kernel per stride")
        if self.padding and len(self.padding) != len(self.strides):
            raise ValueError(f"padding has {len(self.padding)} entries but strides has "
                             f"{len(self.strides)}; give one per stride, or none for the default")
        for i, (k, s) in enumerate(zip(self.kernels, self.strides)):
            if k < s:
                raise ValueError(f"kernels[{i}]={k} is smaller than strides[{i}]={s}: "
                                 "the convolution would skip samples")

    @property
    def paddings(self) -> tuple[int, ...]:
        return self.padding or tuple(math.ceil((k - s) / 2) for k, s in zip(self.kernels, self.strides))

    @property
    def downsampling(self) -> int:
        return math.prod(self.strides)


class ChannelNorm(nn.Module):
    """CPC_audio's ``ChannelNorm``: normalise ``(B, C, T)`` over ``C`` at every time step.

    Unlike batch norm it is per item and per time step, so it is causal and cannot leak
    information between the items that serve as each other's negatives.
    Parameters are shaped ``(1, C, 1)`` as in CPC_audio, so its checkpoints map 1:1.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        return self.forward_channels_last(x.transpose(1, 2)).transpose(1, 2)

    def forward_channels_last(self, x: Tensor) -> Tensor:
        """``(B, T, C) -> (B, T, C)``.

        Computed with one fused ``layer_norm`` over channels (about 3x faster on the CPU
        than separate mean/var kernels): with ``n = C``, the unbiased variance is
        ``var_b · n / (n - 1)``, so ``(x - m) / sqrt(var_u + eps)`` equals
        ``sqrt((n - 1) / n) · (x - m) / sqrt(var_b + eps · (n - 1) / n)``.
        """
        weight, bias, eps = self.layer_norm_arguments(x.shape[-1])
        return F.layer_norm(x, x.shape[-1:], weight, bias, eps=eps)

    def layer_norm_arguments(self, n: int) -> tuple[Tensor, Tensor, float]:
        """``(weight (C,), bias (C,), eps)`` of the ``layer_norm`` over ``n = C`` channels
        that equals this norm (:meth:`forward_channels_last`)."""
        factor = ((n - 1) / n) ** 0.5 if n > 1 else 1.0
        return self.weight.view(-1) * factor, self.bias.view(-1), self.eps * (n - 1) / n if n > 1 else self.eps


class _LayerNormChannels(nn.Module):
    """``nn.LayerNorm`` over channels of a ``(B, C, T)`` tensor, per time step."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)

    def forward_channels_last(self, x: Tensor) -> Tensor:
        return self.norm(x)

    def layer_norm_arguments(self, n: int) -> tuple[Tensor | None, Tensor | None, float]:
        return self.norm.weight, self.norm.bias, self.norm.eps


class _BatchNormChannels(nn.BatchNorm1d):
    """``BatchNorm1d`` with the channels-last entry point of the other norms."""

    def forward_channels_last(self, x: Tensor) -> Tensor:
        return self(x.transpose(1, 2)).transpose(1, 2)


class _NoNorm(nn.Identity):
    def forward_channels_last(self, x: Tensor) -> Tensor:
        return x


def _norm_relu(norm: nn.Module, y: Tensor, padding: tuple[int, int] | None) -> Tensor:
    """``relu(norm(y))`` of a channels-last ``(B, T, C)`` ``y``, zero-padded along ``T`` by
    ``padding``; the layer norms run fused (:mod:`cpcframe_audio.norm_relu`)."""
    if isinstance(norm, (ChannelNorm, _LayerNormChannels)):
        weight, bias, eps = norm.layer_norm_arguments(y.shape[-1])
        return layer_norm_relu_padded(y, weight, bias, eps, padding or (0, 0))
    h = F.relu(norm.forward_channels_last(y))
    return h if padding is None else F.pad(h, (0, 0, *padding))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "channel":
        return ChannelNorm(channels)
    if kind == "layer":
        return _LayerNormChannels(channels)
    if kind == "batch":
        return _BatchNormChannels(channels)
    return _NoNorm()


class CPCAudioEncoder(Encoder):
    """``(B, 1, S)`` float waveform -> ``(B, S // downsampling, hidden)`` latents ``z``.

    Also accepts ``(B, S)``. Each layer is conv -> norm -> ReLU. The convolutions' output
    may hold one more step than ``S // downsampling`` when ``S`` is not a multiple of it
    (a partly padded last step); it is dropped so the length is the same for every ``S``.

    Attributes:
        output_dim: ``hidden``.
        downsampling: samples per latent (160 for the paper's layers: 10 ms at 16 kHz).
    """

    def __init__(self, config: AudioEncoderConfig = AudioEncoderConfig()):
        super().__init__()
        self.config = config
        self.output_dim = config.hidden
        self.downsampling = config.downsampling
        layers: list[nn.Module] = []
        in_channels = config.sample_channels
        for kernel, stride, pad in zip(config.kernels, config.strides, config.paddings):
            layers += [nn.Conv1d(in_channels, config.hidden, kernel, stride=stride, padding=pad),
                       _norm(config.norm, config.hidden), nn.ReLU()]
            in_channels = config.hidden
        self.layers = nn.Sequential(*layers)

    def example_input(self, batch_size: int = 2) -> Tensor:
        """``(batch_size, channels, 4 * downsampling)`` random waveforms (contract tests)."""
        return torch.randn(batch_size, self.config.sample_channels, 4 * self.downsampling)

    def output_length(self, samples: int) -> int:
        """Latents for a waveform of ``samples`` samples."""
        return samples // self.downsampling

    def forward(self, view: Tensor) -> Tensor:
        if not isinstance(view, Tensor):
            raise TypeError(f"cpc_audio expects a waveform tensor (B, 1, S), got {type(view).__name__}")
        if view.dim() == 2:
            view = view[:, None, :]
        if view.dim() != 3 or view.shape[1] != self.config.sample_channels:
            raise ValueError(f"cpc_audio expects a waveform (B, {self.config.sample_channels}, S), "
                             f"got shape {tuple(view.shape)}")
        T = self.output_length(view.shape[-1])
        if T < 1:
            raise ValueError(f"cpc_audio needs at least {self.downsampling} samples per item, "
                             f"got {view.shape[-1]}")
        if self.config.normalize_input:
            mean = view.mean(dim=(1, 2), keepdim=True)
            std = view.std(dim=(1, 2), keepdim=True)
            view = (view - mean) / (std + 1e-5)
        return self._layers(view, self._shifted_gemm(view))[:, :T]

    def _layers(self, view: Tensor, shifted_gemm: bool) -> Tensor:
        """``(B, channels, S) -> (B, T', C)`` channels-last, ``T' >= T``, by either backend."""
        if not shifted_gemm:
            return self.layers(view).transpose(1, 2)  # (B, C, T') -> (B, T', C)
        h = view.transpose(1, 2)  # (B, S, channels)
        convs, norms = list(self.layers[0::3]), list(self.layers[1::3])  # conv, norm, ReLU
        padded = None
        for i, (conv, norm) in enumerate(zip(convs, norms)):
            y = conv1d_channels_last(h, conv, padded=padded)  # (B, T', C)
            following = convs[i + 1] if i + 1 < len(convs) else None
            # The next shifted GEMM's zero padding is written with this layer's output.
            padded = (chunk_padding(y.shape[1], following)
                      if following is not None and shifted_gemm_applies(following) else None)
            h = _norm_relu(norm, y, padded)  # (B, left + T' + right, C)
        return h

    def _shifted_gemm(self, view: Tensor) -> bool:
        """Whether this call runs the shifted-GEMM backend: as configured, or for ``auto``
        the faster of the two on this machine, measured once per shape bucket
        (:func:`cpcframe.measured_choice.fastest`; ``F.conv1d`` is kept on a tie)."""
        backend = self.config.conv_backend
        if backend != "auto":
            return backend == "shifted_gemm"
        if not any(shifted_gemm_applies(conv) for conv in self.layers[0::3]):
            return False
        device = view.device.type
        autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        key = ("cpc_audio", self.config, _bucket(view.shape[0]), _bucket(view.shape[-1]), view.dtype,
               autocast, grad)
        choice = fastest(key, {"conv1d": lambda: self._trial(view, False, grad),
                               "shifted_gemm": lambda: self._trial(view, True, grad)}, device=view.device)
        return choice == "shifted_gemm"

    def _trial(self, view: Tensor, shifted_gemm: bool, grad: bool) -> None:
        """One forward (and, when training, backward) pass of a backend on ``view`` that
        leaves no trace: no parameter gradient is accumulated and batch-norm statistics
        are restored."""
        saved = [(b, b.clone()) for b in self.buffers()]
        try:
            out = self._layers(view.detach(), shifted_gemm)
            if grad:
                params = [p for p in self.parameters() if p.requires_grad]
                torch.autograd.grad(out.float().sum(), params)
        finally:
            with torch.no_grad():
                for buffer, value in saved:
                    buffer.copy_(value)


def _bucket(n: int) -> int:
    """``n`` rounded up to a power of two: one measured choice covers nearby shapes."""
    return 1 << max(0, (n - 1).bit_length())


def build_cpc_audio_encoder(config: AudioEncoderConfig) -> CPCAudioEncoder:
    """CPC's strided-convolution waveform encoder (one 512-d latent per 10 ms)."""
    return CPCAudioEncoder(config)
