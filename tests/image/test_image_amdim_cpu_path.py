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


@pytest.mark.parametrize("image_size,use_bn", [(32, False), (32, True), (64, False), (40, False)])
def test_cpu_path_equals_convolution_path(image_size, use_bn, monkeypatch):
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
