"""``sensor_windows``: one random, aligned window of a recording per example (CPC's crop)."""

from __future__ import annotations

import torch
from torch import Tensor

from cpcframe import Example, ViewSampler
from cpcframe_example_sensors.config import SensorWindowsConfig


class SensorWindows(ViewSampler):
    """``(C, S)`` recording -> one view ``(C, window)``; collated ``(B, C, window)``.

    The start is a multiple of ``align`` drawn uniformly from the valid ones; with
    ``gain_jitter`` each channel is scaled by its own ``1 + U(-j, j)``. All randomness
    comes from the ``generator`` the core seeds from ``(seed, step, position)``, so a
    resumed run sees the very same windows.
    """

    num_views = 1

    def __init__(self, config: SensorWindowsConfig):
        self.window = config.window
        self.align = config.align
        self.gain_jitter = config.gain_jitter

    def min_length(self) -> int:
        return self.window

    def example(self) -> Example:
        return Example(torch.randn(3, 3 * self.window), group=0, key="example", labels=None)

    def sample(self, example: Example, generator: torch.Generator) -> tuple[Tensor]:
        data: Tensor = example.data
        if data.dim() != 2 or data.shape[1] < self.window:
            raise ValueError(f"sensor_windows needs a (C, S >= {self.window}) recording, "
                             f"got shape {tuple(data.shape)} for {example.key!r}")
        slots = (data.shape[1] - self.window) // self.align + 1
        start = int(torch.randint(slots, (1,), generator=generator)) * self.align
        view = data[:, start:start + self.window]  # (C, window)
        if self.gain_jitter:
            u = torch.rand(data.shape[0], 1, generator=generator)  # (C, 1) in [0, 1)
            view = view * (1.0 + self.gain_jitter * (2.0 * u - 1.0))
        return (view.contiguous(),)
