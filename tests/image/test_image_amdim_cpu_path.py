"""The encoder's CPU GEMM path (``cpu_gemm``) gives the convolution path's maps and gradients.

The convolution path (``cpu_gemm.ENABLED = False``: channels-first ``nn.Conv2d`` layers,
what a GPU runs) is the slow reference; same weights, same inputs, float64 so that only
the order of summation differs.
"""

from __future__ import annotations

import copy

import pytest
import torch
from cpcframe_image.amdim import cpu_gemm
from cpcframe_image.amdim.encoders import AmdimEncoder, AmdimEncoderConfig
from cpcframe_image.amdim.layers import ConvResNxN, RKHSHead


def _run(encoder, x, enabled, monkeypatch):
    monkeypatch.setattr(cpu_gemm, "ENABLED", enabled)
    x = x.clone().requires_grad_()
    maps = encoder(x)
    g = torch.Generator().manual_seed(1)
    loss = sum((m * torch.randn(m.shape, generator=g, dtype=m.dtype)).sum() for m in maps.values())
    loss.backward()
    grads = {n: p.grad.clone() for n, p in encoder.named_parameters()}
    return maps, x.grad, grads


@pytest.mark.parametrize("backend", ["onednn", "patch_gemm"])
@pytest.mark.parametrize("image_size,use_bn", [(32, False), (32, True), (64, False), (40, False), (128, False)])
def test_cpu_path_equals_convolution_path(image_size, use_bn, backend, monkeypatch):
    monkeypatch.setattr(cpu_gemm, "BACKEND", backend)  # the spatial convolutions' (else measured)
    torch.manual_seed(0)
    encoder = AmdimEncoder(AmdimEncoderConfig(image_size=image_size, ndf=8, n_rkhs=24, n_depth=3,
                                              use_bn=use_bn)).double().train()
    # Non-zero second convs (the init zeroes them) so every branch matters.
    with torch.no_grad():
        for m in encoder.modules():
            if isinstance(m, (ConvResNxN, RKHSHead)):
                m.conv2.weight.normal_(0, 0.1)
    reference = copy.deepcopy(encoder)
    x = torch.randn(6, 3, image_size, image_size, dtype=torch.float64)
    fast = _run(encoder, x, True, monkeypatch)
    slow = _run(reference, x, False, monkeypatch)
    assert fast[0].keys() == slow[0].keys()
    for k in slow[0]:
        assert fast[0][k].shape == slow[0][k].shape
        torch.testing.assert_close(fast[0][k], slow[0][k], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast[1], slow[1], rtol=1e-10, atol=1e-10)
    for n in slow[2]:
        torch.testing.assert_close(fast[2][n], slow[2][n], rtol=1e-9, atol=1e-10, msg=n)
    # BatchNorm running statistics move the same way.
    for (n, a), (_, b) in zip(encoder.named_buffers(), reference.named_buffers()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=n)


def test_cpu_path_float32_within_tolerance(monkeypatch):
    torch.manual_seed(0)
    encoder = AmdimEncoder(AmdimEncoderConfig(image_size=32, ndf=16, n_rkhs=64, n_depth=2))
    reference = copy.deepcopy(encoder)
    x = torch.randn(4, 3, 32, 32)
    fast, slow = _run(encoder, x, True, monkeypatch), _run(reference, x, False, monkeypatch)
    for k in slow[0]:
        torch.testing.assert_close(fast[0][k], slow[0][k], rtol=1e-4, atol=1e-4)
    # float32 sums over ~10^4 terms: absolute tolerance relative to the largest gradient
    # (some are 0 analytically and only rounding noise: biases right before a BatchNorm)
    scale = max(float(g.abs().max()) for g in slow[2].values())
    for n in slow[2]:
        torch.testing.assert_close(fast[2][n], slow[2][n], rtol=1e-3, atol=1e-4 * scale)


def test_cpu_path_is_what_the_cpu_runs():
    assert cpu_gemm.ENABLED and cpu_gemm.active(torch.zeros(1))
    assert not cpu_gemm.active(torch.zeros(1, device="meta"))


@pytest.fixture
def measured(monkeypatch):
    """Inject the timings ``auto`` measures (``measured["patch_gemm"] = seconds``); records
    each measurement's candidates after running their trial passes for real."""
    from cpcframe import measured_choice

    measured_choice.clear_cache()
    timings = {"onednn": 1.0, "patch_gemm": 1.0, "calls": []}

    def fake_measure(candidates, *, device, repeats=3, timer=None):
        timings["calls"].append(sorted(candidates))
        for run in candidates.values():
            run()
        return {name: timings[name] for name in candidates}

    monkeypatch.setattr(measured_choice, "measure", fake_measure)
    yield timings
    measured_choice.clear_cache()


@pytest.mark.parametrize("faster", ["onednn", "patch_gemm"])
def test_auto_runs_the_measured_faster_spatial_convolution(measured, monkeypatch, faster):
    import torch.nn.functional as F

    measured[faster] = 0.5
    torch.manual_seed(0)
    encoder = AmdimEncoder(AmdimEncoderConfig(image_size=32, ndf=8, n_rkhs=24, n_depth=2)).train()
    x = torch.randn(3, 3, 32, 32)
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    expected = encoder(x)
    # Stem 3x3, the 4x4/2 and 2x2/2 block openers, the two top 3x3 blocks: one measurement each.
    assert len(measured["calls"]) == 5 and all(c == ["onednn", "patch_gemm"] for c in measured["calls"])
    assert all(p.grad is None for p in encoder.parameters())  # the trials leave no gradient
    for n, p in encoder.named_parameters():
        assert torch.equal(p.detach(), before[n]), n
    monkeypatch.setattr(cpu_gemm, "patch_conv" if faster == "onednn" else "_onednn",
                        lambda *a: (_ for _ in ()).throw(AssertionError("ran the slower backend")))
    if faster == "patch_gemm":
        monkeypatch.setattr(F, "conv2d", lambda *a, **k: (_ for _ in ()).throw(AssertionError("oneDNN ran")))
    again = encoder(x)
    for k in expected:
        torch.testing.assert_close(again[k], expected[k], rtol=1e-5, atol=1e-5)
    assert len(measured["calls"]) == 5  # cached


def test_auto_keeps_onednn_on_a_tie(measured):
    from cpcframe import measured_choice

    encoder = AmdimEncoder(AmdimEncoderConfig(image_size=32, ndf=8, n_rkhs=24, n_depth=2))
    with torch.no_grad():
        encoder(torch.randn(2, 3, 32, 32))
    choices = {k: v for k, v in measured_choice.cached_choices().items() if k[0][0] == "amdim_conv"}
    assert len(choices) == 5 and set(choices.values()) == {"onednn"}
