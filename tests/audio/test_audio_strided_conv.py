"""The shifted-GEMM strided convolution against ``F.conv1d``, and the encoder's backends."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cpcframe_audio.encoders import AudioEncoderConfig, CPCAudioEncoder
from cpcframe_audio.strided_conv import (
    _ShiftedGemm,
    chunk_padding,
    conv1d_channels_last,
    im2col_is_cheaper,
    shifted_gemm_applies,
)

# (in_channels, out_channels, kernel, stride, padding, bias, length): the paper's layers in
# miniature, a kernel equal to its stride (one tap block), no padding (the right side is
# cropped), more padding than needed, and a length that leaves a partial last step. The
# first and the last two take the im2col path (few input channels), the others the shifted one.
LAYERS = [
    (1, 6, 10, 5, 3, True, 63),
    (4, 6, 8, 4, 2, True, 40),
    (4, 5, 4, 2, 1, False, 17),
    (3, 4, 3, 3, 0, True, 20),
    (3, 4, 6, 2, 0, True, 21),
    (2, 3, 4, 2, 3, True, 9),
    (1, 16, 4, 2, 1, False, 19),
    (2, 8, 6, 3, 0, True, 20),
]


def make_conv(c_in, c_out, k, s, p, bias):
    torch.manual_seed(0)
    return nn.Conv1d(c_in, c_out, k, stride=s, padding=p, bias=bias).double()


@pytest.mark.parametrize("c_in, c_out, k, s, p, bias, length", LAYERS)
def test_equals_conv1d_forward_and_backward(c_in, c_out, k, s, p, bias, length):
    conv = make_conv(c_in, c_out, k, s, p, bias)
    assert shifted_gemm_applies(conv)
    x = torch.randn(3, length, c_in, dtype=torch.float64, requires_grad=True)
    expected = conv(x.transpose(1, 2)).transpose(1, 2)
    g = torch.randn_like(expected)
    want = torch.autograd.grad(expected, [x, *conv.parameters()], g)
    got_y = conv1d_channels_last(x, conv)
    got = torch.autograd.grad(got_y, [x, *conv.parameters()], g)
    assert got_y.shape == expected.shape
    torch.testing.assert_close(got_y, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_im2col_serves_the_waveform_layer_only():
    """The paper's layers: the waveform layer (k·C_in = 10) copies its receptive fields,
    the 512-channel ones run as shifted GEMMs."""
    paper = [(10, 1), (8, 512), (4, 512), (4, 512), (4, 512)]
    strides = [5, 4, 2, 2, 2]
    chosen = [im2col_is_cheaper(k, c_in, k // s, 512) for (k, c_in), s in zip(paper, strides)]
    assert chosen == [True, False, False, False, False]
    assert [im2col_is_cheaper(k, c_in, k // s, c_out) for c_in, c_out, k, s, *_ in LAYERS] == \
        [True, False, False, False, False, False, True, True]


@pytest.mark.parametrize("taps, steps, bias", [(2, 5, True), (1, 4, True), (3, 2, False)])
def test_gradcheck_of_the_shifted_gemm(taps, steps, bias):
    """The hand-written backward against finite differences, for every input."""
    width, out_channels = 6, 4
    chunks = torch.randn(2, steps + taps - 1, width, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(width, taps * out_channels, dtype=torch.float64, requires_grad=True)
    b = torch.randn(out_channels, dtype=torch.float64, requires_grad=True) if bias else None
    assert torch.autograd.gradcheck(lambda c, w, *b: _ShiftedGemm.apply(c, w, b[0] if b else None, steps, taps),
                                    (chunks, weight, *([b] if bias else [])))


def test_kernel_not_a_multiple_of_the_stride_falls_back_to_conv1d():
    conv = make_conv(2, 3, 5, 2, 1, True)
    assert not shifted_gemm_applies(conv)
    x = torch.randn(2, 11, 2, dtype=torch.float64)
    torch.testing.assert_close(conv1d_channels_last(x, conv), conv(x.transpose(1, 2)).transpose(1, 2))


def test_too_short_input_is_a_clear_error():
    conv = make_conv(1, 2, 10, 5, 0, True)
    with pytest.raises(ValueError, match="needs at least 10 steps of input, got 7"):
        conv1d_channels_last(torch.randn(1, 7, 1, dtype=torch.float64), conv)


def encoder_pair(norm: str, **kw):
    torch.manual_seed(0)
    gemm = CPCAudioEncoder(AudioEncoderConfig(norm=norm, conv_backend="shifted_gemm", **kw)).double()
    native = CPCAudioEncoder(AudioEncoderConfig(norm=norm, conv_backend="conv1d", **kw)).double()
    native.load_state_dict(gemm.state_dict())
    return gemm, native


@pytest.mark.parametrize("norm", ["channel", "layer", "batch", "none"])
@pytest.mark.parametrize("samples", [1600, 1777])
def test_encoder_backends_agree(norm, samples):
    gemm, native = encoder_pair(norm, hidden=16)
    x = torch.randn(3, 1, samples, dtype=torch.float64)
    a, b = gemm(x), native(x)
    assert a.shape == b.shape == (3, samples // 160, 16)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(a)
    for pa, pb in zip(torch.autograd.grad(a, list(gemm.parameters()), g),
                      torch.autograd.grad(b, list(native.parameters()), g)):
        torch.testing.assert_close(pa, pb, rtol=1e-9, atol=1e-10)


@pytest.fixture
def measured(monkeypatch):
    """Inject the timings ``auto`` measures: ``measured["shifted_gemm"] = seconds``; records
    each measurement's candidates and checks that they run on the real input."""
    from cpcframe import measured_choice

    measured_choice.clear_cache()
    timings = {"conv1d": 1.0, "shifted_gemm": 1.0}
    calls = []

    def fake_measure(candidates, *, device, repeats=3, timer=None):
        calls.append(sorted(candidates))
        for run in candidates.values():
            run()  # the trial passes themselves run (they must leave no trace)
        return {name: timings[name] for name in candidates}

    monkeypatch.setattr(measured_choice, "measure", fake_measure)
    timings["calls"] = calls
    yield timings
    measured_choice.clear_cache()


def _forbid(name):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"auto called {name}")

    return forbidden


@pytest.mark.parametrize("faster, forbidden", [("shifted_gemm", "conv1d"), ("conv1d", "shifted_gemm")])
def test_auto_runs_whichever_backend_measured_faster(measured, monkeypatch, faster, forbidden):
    measured[faster] = 0.5
    encoder = CPCAudioEncoder(AudioEncoderConfig(hidden=8))
    x = torch.randn(2, 1, 800)
    expected = encoder(x)  # measures (both trial passes run), then uses the faster one
    assert measured["calls"] == [["conv1d", "shifted_gemm"]]
    import cpcframe_audio.encoders as encoders

    if forbidden == "conv1d":
        monkeypatch.setattr(F, "conv1d", _forbid("F.conv1d"))
    else:
        monkeypatch.setattr(encoders, "conv1d_channels_last", _forbid("the shifted GEMM"))
    torch.testing.assert_close(encoder(x), expected, rtol=1e-5, atol=1e-6)
    assert len(measured["calls"]) == 1  # cached: not measured again


def test_auto_keeps_conv1d_on_a_tie_and_measures_per_shape_bucket(measured):
    encoder = CPCAudioEncoder(AudioEncoderConfig(hidden=8))
    with torch.no_grad():
        encoder(torch.randn(2, 1, 800))
        encoder(torch.randn(2, 1, 900))  # same bucket (1024 samples): no new measurement
        assert len(measured["calls"]) == 1
        encoder(torch.randn(2, 1, 1600))  # next bucket
        encoder(torch.randn(3, 1, 800))  # another batch bucket
    assert len(measured["calls"]) == 3
    from cpcframe import measured_choice

    assert set(measured_choice.cached_choices().values()) == {"conv1d"}  # equal timings: the native one


def test_auto_measurement_leaves_no_gradient_and_no_batch_norm_update(measured):
    torch.manual_seed(0)
    encoder = CPCAudioEncoder(AudioEncoderConfig(hidden=8, norm="batch"))
    reference = CPCAudioEncoder(AudioEncoderConfig(hidden=8, norm="batch", conv_backend="conv1d"))
    reference.load_state_dict(encoder.state_dict())
    x = torch.randn(2, 1, 800)
    out = encoder(x)  # train mode: the trials ran forward+backward of both backends first
    assert all(p.grad is None for p in encoder.parameters())
    torch.testing.assert_close(out, reference(x), rtol=1e-5, atol=1e-6)
    for (name, a), b in zip(encoder.named_buffers(), reference.buffers()):
        torch.testing.assert_close(a, b, msg=name)  # running stats updated once, by the real pass


def test_bf16_autocast_computes_in_bf16_and_keeps_fp32_gradients():
    torch.manual_seed(0)
    encoder = CPCAudioEncoder(AudioEncoderConfig(hidden=32, conv_backend="shifted_gemm"))
    native = CPCAudioEncoder(AudioEncoderConfig(hidden=32, conv_backend="conv1d"))
    native.load_state_dict(encoder.state_dict())
    x = 0.1 * torch.randn(2, 1, 3200)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = encoder(x), native(x)
        inner = conv1d_channels_last(x.transpose(1, 2), encoder.layers[0])
    assert inner.dtype == torch.bfloat16
    torch.testing.assert_close(a.float(), b.float(), rtol=0.05, atol=0.05)
    a.float().square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in encoder.parameters())
    encoder.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # backward() called under autocast too
        encoder(x).float().square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in encoder.parameters())


@pytest.mark.parametrize("c_in, c_out, k, s, p, bias, length", LAYERS)
def test_a_pre_padded_input_gives_the_same_result(c_in, c_out, k, s, p, bias, length):
    """What the encoder does between layers: the previous layer wrote the zero padding."""
    conv = make_conv(c_in, c_out, k, s, p, bias)
    x = torch.randn(2, length, c_in, dtype=torch.float64)
    padding = chunk_padding(length, conv)
    padded = F.pad(x, (0, 0, *padding))
    torch.testing.assert_close(conv1d_channels_last(padded, conv, padded=padding), conv1d_channels_last(x, conv),
                               rtol=0, atol=0)


def test_a_wrongly_padded_input_is_a_clear_error():
    conv = make_conv(2, 3, 4, 2, 1, True)
    with pytest.raises(ValueError, match=r"input padded by \(0, 0\), but this convolution needs \(1, 1\)"):
        conv1d_channels_last(torch.randn(1, 10, 2, dtype=torch.float64), conv, padded=(0, 0))
    odd = make_conv(2, 3, 5, 2, 1, True)
    with pytest.raises(ValueError, match="pre-padded input needs a convolution that runs as a shifted GEMM"):
        conv1d_channels_last(torch.randn(1, 10, 2, dtype=torch.float64), odd, padded=(1, 1))
