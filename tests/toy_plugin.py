"""A small plugin used by the core tests, loaded through ``CPCFRAME_PLUGINS=toy_plugin``.

It is deliberately a plain third-party-style module: the core treats it like any plugin.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import nn

import cpcframe
from cpcframe import Example, ViewSampler, validators


@attrs.frozen
class ToySequencesConfig:
    """Sequences of group-specific tones with random phone-like switches."""

    num_items: int = attrs.field(default=48, validator=validators.positive)
    length: int = attrs.field(default=1024, validator=validators.positive)
    num_groups: int = attrs.field(default=4, validator=validators.positive)
    corrupt_items: int = 0
    has_test_split: bool = True  # False: asking for split "test" is a UserError
    #: Items ``0 .. n-1`` fail when read (as a corrupt image does): counted, replaced by the next.
    unreadable_on_read: int = 0
    #: Send this signal (``SIGINT``, ``SIGTERM``) to the process while the corpus is built...
    signal_in_build: str = ""
    #: ... inside a bare ``except`` that swallows it, as some third-party imports do.
    swallow_signal: bool = False


class ToySequences(cpcframe.Dataset):
    def __init__(self, config: ToySequencesConfig, seed: int):
        self.test_split_available = config.has_test_split
        g = torch.Generator().manual_seed(seed + 17)
        self.items, self.groups, self.skipped, self.skipped_items = [], [], {}, []
        self.unreadable_on_read = config.unreadable_on_read
        for i in range(config.num_items):
            if i < config.corrupt_items:  # simulated unreadable files: skipped and counted
                self.skipped["unreadable"] = self.skipped.get("unreadable", 0) + 1
                self.skipped_items.append((f"toy-{i}", "unreadable"))
                continue
            group = i % config.num_groups
            base = 0.02 + 0.015 * group
            seg = torch.randint(0, 3, (config.length // 64 + 1,), generator=g).repeat_interleave(64)
            freq = base * (1 + 0.5 * seg[: config.length].float())
            x = torch.sin(2 * math.pi * torch.cumsum(freq, 0)) + 0.1 * torch.randn(config.length, generator=g)
            self.items.append(x[None])
            self.groups.append(group)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Example:
        while i < self.unreadable_on_read:  # a read failure: counted here, in whichever process reads
            key = f"toy-{i}"
            if key not in {k for k, _ in self.skipped_items}:
                self.skipped["unreadable on read"] = self.skipped.get("unreadable on read", 0) + 1
                self.skipped_items.append((key, "unreadable on read"))
            i += 1
        return Example(self.items[i], group=self.groups[i], key=f"toy-{i}")


def build_toy_sequences(config: ToySequencesConfig, *, request: cpcframe.DatasetRequest) -> ToySequences:
    """Synthetic tone sequences (tests); the "test" split holds other sequences."""
    if request.split == "test" and not config.has_test_split:
        raise cpcframe.UserError("toy_sequences: this corpus has no test split")
    if config.signal_in_build and request.split == "train":
        if config.swallow_signal:
            try:  # like `try: import gmpy2` + bare `except:` in a third-party import
                os.kill(os.getpid(), getattr(signal, config.signal_in_build))
                time.sleep(2)
            except:  # noqa: E722
                pass
        else:
            os.kill(os.getpid(), getattr(signal, config.signal_in_build))
            time.sleep(2)
    return ToySequences(config, request.seed + (100 if request.split == "test" else 0))


@attrs.frozen
class ToyCropConfig:
    window: int = attrs.field(default=256, validator=validators.positive)
    align: int = attrs.field(default=16, validator=validators.positive)


class ToyCrop(ViewSampler):
    num_views = 1

    def __init__(self, config: ToyCropConfig):
        self.window, self.align = config.window, config.align

    def min_length(self) -> int:
        return self.window

    def example(self) -> Example:
        return Example(torch.randn(1, 4 * self.window), group=0, key="toy")

    def sample(self, example: Example, generator: torch.Generator):
        length = example.data.shape[-1]
        slots = (length - self.window) // self.align + 1
        start = int(torch.randint(0, slots, (1,), generator=generator)) * self.align
        return (example.data[:, start:start + self.window],)

    def inference_views(self, path: Path, run_dir: Path | None = None):
        """A ``.npy`` file holding a 1-D signal -> one ``(1, S)`` view keyed by the file's stem."""
        signal = np.load(path, allow_pickle=False)
        if signal.ndim != 1 or signal.shape[0] < 16:
            raise ValueError(f"expected a 1-D signal of at least 16 samples, got shape {signal.shape}")
        return [(path.stem, torch.as_tensor(signal, dtype=torch.float32)[None])]


def build_toy_crop(config: ToyCropConfig) -> ToyCrop:
    """Random aligned crops (tests)."""
    return ToyCrop(config)


@attrs.frozen
class ToyConvConfig:
    channels: int = attrs.field(default=32, validator=validators.positive)
    #: Return NaN latents from this many training forward calls on (0 = never): tests divergence.
    nan_after: int = 0
    #: From this many training forward calls on, the latents are finite but their
    #: gradient is NaN: the loss stays finite while the update makes the weights NaN.
    nan_grad_after: int = 0


class _NaNGradient(torch.autograd.Function):
    """Identity forward; NaN backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.full_like(grad, float("nan"))


class ToyConv(cpcframe.Encoder):
    """``(B, 1, S) -> (B, S // 16, channels)``."""

    def __init__(self, config: ToyConvConfig):
        super().__init__()
        c = config.channels
        self.net = nn.Sequential(nn.Conv1d(1, c, 8, 4, 2), nn.ReLU(), nn.Conv1d(c, c, 4, 4), nn.ReLU())
        self.output_dim = c
        self.nan_after = config.nan_after
        self.nan_grad_after = config.nan_grad_after
        self.calls = 0

    def example_input(self, batch_size: int = 2):
        return torch.randn(batch_size, 1, 256)

    def forward(self, view):
        z = self.net(view).transpose(1, 2)
        if self.training:
            self.calls += 1
            if self.nan_after and self.calls >= self.nan_after:
                z = z * float("nan")
            if self.nan_grad_after and self.calls >= self.nan_grad_after:
                z = _NaNGradient.apply(z)
        return z


def build_toy_conv(config: ToyConvConfig) -> ToyConv:
    """Two strided convolutions (tests)."""
    return ToyConv(config)


@attrs.frozen
class ToyConv2dConfig:
    channels: int = attrs.field(default=16, validator=validators.positive)


class ToyConv2d(cpcframe.Encoder):
    """``(B, 1, S) -> (B, S // 16, channels)`` through 2-D convolutions: the crop is folded
    into a ``(B, 1, S // 16, 16)`` image (rows of 16 samples), so ``train.channels_last``
    has 4-D weights and activations to act on."""

    def __init__(self, config: ToyConv2dConfig):
        super().__init__()
        c = config.channels
        self.net = nn.Sequential(nn.Conv2d(1, c, (1, 4), stride=(1, 4)), nn.ReLU(),
                                 nn.Conv2d(c, c, (1, 4), stride=(1, 4)), nn.ReLU())
        self.output_dim = c

    def example_input(self, batch_size: int = 2):
        return torch.randn(batch_size, 1, 256)

    def forward(self, view):
        B, _, S = view.shape
        image = view.reshape(B, 1, S // 16, 16)
        return self.net(image).mean(dim=3).transpose(1, 2)  # (B, c, S/16, 1) -> (B, S/16, c)


def build_toy_conv2d(config: ToyConv2dConfig) -> ToyConv2d:
    """2-D convolutions over the folded crop (tests of channels-last)."""
    return ToyConv2d(config)


@cpcframe.hookimpl
def register_datasets(register):
    register("toy_sequences", build_toy_sequences, ToySequencesConfig)


@cpcframe.hookimpl
def register_view_samplers(register):
    register("toy_crop", build_toy_crop, ToyCropConfig)


@cpcframe.hookimpl
def register_encoders(register):
    register("toy_conv", build_toy_conv, ToyConvConfig)
    register("toy_conv2d", build_toy_conv2d, ToyConv2dConfig)
