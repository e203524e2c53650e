"""The CPC audio model (van den Oord et al. 2018, section 3.1) as registered components."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audiodata import LIBRISPEECH_RECIPE
from cpcframe.build import build_model, build_view_sampler
from cpcframe.config.loader import load_recipe
from cpcframe.errors import UserError
from cpcframe_audio.encoders import AudioEncoderConfig, ChannelNorm, CPCAudioEncoder


def paper_model(*sets: str, context: str = "", tmp_path=None):
    """The paper's recipe with ``--set`` overrides; ``context`` replaces its [model.context]."""
    from cpcframe.plugins import default_registry

    registry = default_registry()
    path = LIBRISPEECH_RECIPE
    if context:
        text = path.read_text()
        start = text.index("[model.context]")
        end = text.index("[model.critic]")
        path = tmp_path / "recipe.toml"
        path.write_text(text[:start] + "[model.context]\n" + context + "\n\n" + text[end:])
    recipe = load_recipe(path, registry, list(sets))
    return recipe, build_model(recipe, registry), build_view_sampler(recipe, registry)


def test_paper_configuration():
    recipe, model, views = paper_model()
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv1d)]
    assert [c.stride[0] for c in convs] == [5, 4, 2, 2, 2]
    assert [c.kernel_size[0] for c in convs] == [10, 8, 4, 4, 4]
    assert [c.out_channels for c in convs] == [512] * 5 and convs[0].in_channels == 1
    assert sum(isinstance(m, nn.ReLU) for m in model.encoder.modules()) == 5
    assert isinstance(model.context.rnn, nn.GRU) and model.context.rnn.hidden_size == 256
    assert model.critic.steps == 12
    assert model.critic.predictors.in_features == 256 and model.critic.predictors.out_features == 12 * 512
    assert recipe.loss.num_negatives == 128 and recipe.loss.negatives == "batch"
    assert recipe.train.lr == 2e-4 and recipe.data.batch_size == 8
    assert views.config.window == 20480 and views.config.align == 160
    # One latent per 160 samples: a 20480-sample window gives 128 latents of 512.
    wave = torch.randn(2, 1, 20480) * 0.1
    with torch.no_grad():
        z = model.encoder(wave)
        c = model.context(z)
    assert z.shape == (2, 128, 512) and c.shape == (2, 128, 256)


@pytest.mark.parametrize("samples", [160, 1600, 1601, 1759, 3200])
def test_one_latent_per_160_samples(samples):
    enc = CPCAudioEncoder(AudioEncoderConfig(hidden=8))
    assert enc(torch.randn(1, 1, samples)).shape == (1, samples // 160, 8)


def test_latents_are_local_and_causal_enough():
    """Latent t depends on samples near [160 t, 160 (t+1)) only (receptive field 465 samples)."""
    enc = CPCAudioEncoder(AudioEncoderConfig(hidden=8)).eval()
    x = torch.randn(1, 1, 3200)
    y = x.clone()
    y[..., 2400:] += 1.0  # change the last 800 samples (latents 15..19)
    with torch.no_grad():
        a, b = enc(x)[0], enc(y)[0]
    changed = (a - b).abs().amax(1) > 1e-6
    assert not changed[:12].any() and changed[16:].all()


@pytest.mark.parametrize("norm, kind", [("channel", ChannelNorm), ("layer", nn.LayerNorm),
                                        ("batch", nn.BatchNorm1d), ("none", None)])
def test_norm_choice(norm, kind):
    enc = CPCAudioEncoder(AudioEncoderConfig(hidden=8, norm=norm))
    found = [m for m in enc.modules() if isinstance(m, (ChannelNorm, nn.LayerNorm, nn.BatchNorm1d))]
    if kind is None:
        assert found == []
    else:
        assert len(found) == 5 and all(isinstance(m, kind) for m in found)
    z = enc(torch.randn(3, 1, 1600))
    z.sum().backward()
    assert z.shape == (3, 10, 8) and enc.layers[0].weight.grad is not None


def test_channel_norm_matches_cpc_audio_definition():
    norm = ChannelNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 6, 7) * 3 + 1
    mean, var = x.mean(1, keepdim=True), x.var(1, keepdim=True)  # unbiased, as CPC_audio
    expected = (x - mean) * torch.rsqrt(var + norm.eps) * norm.weight + norm.bias
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    # Per item and time step: other items never change an item's output.
    y = x.clone()
    y[1] += 5 * torch.randn(6, 7)
    torch.testing.assert_close(norm(y)[0], norm(x)[0])


TRANSFORMER = 'name = "transformer"\nd_model = 64\nnum_layers = 1\ndim_feedforward = 128'


@pytest.mark.parametrize("sets, context, check", [
    (("model.context.name=lstm", "model.context.hidden_size=64"), "",
     lambda m: isinstance(m.context.rnn, nn.LSTM) and m.context.output_dim == 64),
    ((), TRANSFORMER, lambda m: m.context.output_dim == 64 and len(m.context.layers.layers) == 1),
    (("model.encoder.hidden=32", "model.context.hidden_size=16", "model.critic.steps=4",
      "model.encoder.norm=layer"), "",
     lambda m: m.critic.predictors.out_features == 4 * 32 and m.context.output_dim == 16),
])
def test_options(sets, context, check, tmp_path):
    # Raw input: the recipe's normalize_input standardises each whole window (one mean and
    # std per item), which would let the future's level reach c_t in the causality check.
    _, model, _ = paper_model("model.encoder.hidden=32", "model.encoder.normalize_input=false", *sets,
                              context=context, tmp_path=tmp_path)
    assert check(model)
    with torch.no_grad():
        c = model.encode(torch.randn(2, 1, 3200) * 0.1)
    assert c.shape == (2, 20, model.context.output_dim)
    if context:  # causal: the future does not change c_t
        x = torch.randn(1, 1, 3200)
        y = x.clone()
        y[..., 1600:] = 0
        with torch.no_grad():
            a, b = model.encode(x), model.encode(y)
        torch.testing.assert_close(a[:, :7], b[:, :7])
        assert not torch.allclose(a[:, -1], b[:, -1])


def test_config_errors():
    with pytest.raises(ValueError, match="kernels has 2 entries"):
        AudioEncoderConfig(kernels=(10, 8))
    with pytest.raises(ValueError, match="smaller than strides"):
        AudioEncoderConfig(kernels=(4, 8, 4, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, 1, S\)"):
        CPCAudioEncoder(AudioEncoderConfig(hidden=4))(torch.randn(2, 3, 1600))
    with pytest.raises(UserError, match="model.encoder.norm"):
        paper_model("model.encoder.norm=group")
