"""A run saved by cpcframe 0.1.0 still loads and computes what CPC's audio model computes.

A trained model is two files: the resolved ``recipe.toml`` and ``model.safetensors``.
``fixtures/recipe_v0_1_0.toml`` is a recipe as cpcframe 0.1.0 wrote it (the speech
quickstart at a tiny size). The weights are made here, under the tensor names and shapes
of 0.1.0's layout (``LAYOUT``), with safetensors directly rather than through cpcframe.
``cpcframe.load`` must accept both, and its features must equal a plain reference of the
paper's model written in this file (CPC_audio's convolutions and channel norm, then a
GRU), with each convolution backend. A renamed config key or parameter, or a change to
what the encoder computes, breaks this test: keep old runs loading, or say so in the
release notes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import cpcframe

RECIPE = Path(__file__).resolve().parent / "fixtures" / "recipe_v0_1_0.toml"
STRIDES, KERNELS, PADDING = (5, 4, 2, 2, 2), (10, 8, 4, 4, 4), (3, 2, 1, 1, 1)
C, H, K = 16, 8, 4  # encoder channels, GRU units, prediction steps in the recipe

#: 0.1.0's tensor names and shapes: conv -> ChannelNorm -> ReLU per layer, GRU, W_1..W_K.
LAYOUT: dict[str, tuple[int, ...]] = {}
for i, kernel in enumerate(KERNELS):
    LAYOUT[f"encoder.layers.{3 * i}.weight"] = (C, 1 if i == 0 else C, kernel)
    LAYOUT[f"encoder.layers.{3 * i}.bias"] = (C,)
    LAYOUT[f"encoder.layers.{3 * i + 1}.weight"] = (1, C, 1)
    LAYOUT[f"encoder.layers.{3 * i + 1}.bias"] = (1, C, 1)
LAYOUT.update({"context.rnn.weight_ih_l0": (3 * H, C), "context.rnn.weight_hh_l0": (3 * H, H),
               "context.rnn.bias_ih_l0": (3 * H,), "context.rnn.bias_hh_l0": (3 * H,),
               "critic.predictors.weight": (K * C, H)})


def weights() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {name: 0.3 * torch.randn(shape, generator=g) for name, shape in LAYOUT.items()}


def reference(w: dict[str, torch.Tensor], wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``z (B, T, C)`` and ``c (B, T, H)`` of the paper's model, written out plainly."""
    x = (wave - wave.mean(dim=(1, 2), keepdim=True)) / (wave.std(dim=(1, 2), keepdim=True) + 1e-5)
    for i, (stride, pad) in enumerate(zip(STRIDES, PADDING)):
        x = F.conv1d(x, w[f"encoder.layers.{3 * i}.weight"], w[f"encoder.layers.{3 * i}.bias"], stride, pad)
        # CPC_audio's ChannelNorm: over channels at each step, unbiased variance.
        x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True) + 1e-5)
        x = F.relu(x * w[f"encoder.layers.{3 * i + 1}.weight"] + w[f"encoder.layers.{3 * i + 1}.bias"])
    z = x[:, :, : wave.shape[-1] // 160].transpose(1, 2)
    gru = torch.nn.GRU(C, H, batch_first=True)
    gru.load_state_dict({k.removeprefix("context.rnn."): v for k, v in w.items() if k.startswith("context.")})
    with torch.no_grad():
        c, _ = gru(z)
    return z, c


@pytest.mark.parametrize("backend", ["auto", "conv1d", "shifted_gemm"])
def test_a_0_1_0_run_loads_and_computes_the_papers_model(tmp_path, backend):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(RECIPE, run / "recipe.toml")
    w = weights()
    save_file(w, str(run / "model.safetensors"))
    model = cpcframe.load(run, overrides=[f"model.encoder.conv_backend={backend}"])  # strict names
    assert {k: tuple(v.shape) for k, v in model.model.state_dict().items()} == LAYOUT
    t = torch.arange(3200) / 16000
    wave = (0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(3200, generator=torch.Generator()
                                                                          .manual_seed(1)))[None, None]
    z, c = reference(w, wave)
    torch.testing.assert_close(model.encode(wave, level="latent"), z, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.encode(wave, level="context"), c, rtol=1e-4, atol=1e-5)
