"""The fused 1x1 residual layer (``residual_gemm``) against the layer written out for autograd."""

from __future__ import annotations

import pytest
import torch
from cpcframe_image.amdim.residual_gemm import Residual1x1, residual_1x1


def _plain(x, w1, w2):
    """The unfused CPU layer: a GEMM, the ReLU, the projection with the residual add."""
    return torch.addmm(x, torch.relu(x @ w1.t()), w2.t())


def _grads(fn, x, w1, w2, dy):
    x, w1, w2 = (t.detach().clone().requires_grad_() for t in (x, w1, w2))
    y = fn(x, w1, w2)
    y.backward(dy)
    return y.detach(), x.grad, w1.grad, w2.grad


def test_fused_layer_gradcheck():
    g = torch.Generator().manual_seed(0)
    x, w1, w2 = (torch.randn(s, dtype=torch.float64, generator=g, requires_grad=True)
                 for s in ((7, 5), (5, 5), (5, 5)))
    assert torch.autograd.gradcheck(Residual1x1.apply, (x, w1, w2))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_fused_layer_equals_plain_layer(dtype, tol):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 16, dtype=dtype, generator=g)  # (B, H, W, C)
    w1, w2 = (torch.randn(16, 16, 1, 1, dtype=dtype, generator=g) / 4 for _ in range(2))
    dy = torch.randn(2, 3, 4, 16, dtype=dtype, generator=g)
    fused = _grads(residual_1x1, x, w1, w2, dy)
    plain = _grads(lambda a, b, c: _plain(a.flatten(0, 2), b.flatten(1), c.flatten(1)).view(a.shape),
                   x, w1, w2, dy)
    assert fused[0].shape == (2, 3, 4, 16) and fused[2].shape == w1.shape
    for f, p in zip(fused, plain):
        torch.testing.assert_close(f, p, rtol=tol, atol=tol)


def test_fused_layer_under_cpu_autocast_matches_plain_autocast():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 32, generator=g)
    w1, w2 = (torch.randn(32, 32, generator=g) / 6 for _ in range(2))
    dy = torch.randn(64, 32, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = _grads(Residual1x1.apply, x, w1, w2, dy)
        plain = _grads(_plain, x, w1, w2, dy)
    assert fused[0].dtype == plain[0].dtype == torch.bfloat16
    assert fused[2].dtype == fused[3].dtype == torch.float32  # parameter gradients stay fp32
    for f, p in zip(fused, plain):
        torch.testing.assert_close(f.float(), p.float(), rtol=2e-2, atol=2e-2 * float(p.abs().max()))
