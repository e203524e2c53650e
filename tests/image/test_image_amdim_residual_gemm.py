"""Runs of 1x1 residual layers as one function (``residual_gemm``) against the layers
written out for autograd."""

from __future__ import annotations

import pytest
import torch
from cpcframe_image.amdim.residual_gemm import ResidualChain, residual_chain


def _plain(x, weights):
    """The unfused CPU layers: a GEMM, the ReLU, the projection with the residual add."""
    for w1, w2 in weights:
        x = torch.addmm(x, torch.relu(x @ w1.flatten(1).t()), w2.flatten(1).t())
    return x


def _grads(fn, x, weights, dy):
    x = x.detach().clone().requires_grad_()
    weights = [tuple(w.detach().clone().requires_grad_() for w in pair) for pair in weights]
    y = fn(x, weights)
    y.backward(dy)
    return [y.detach(), x.grad] + [w.grad for pair in weights for w in pair]


def _weights(n, C, dtype, g):
    return [tuple(torch.randn(C, C, 1, 1, dtype=dtype, generator=g) / 4 for _ in range(2)) for _ in range(n)]


def test_chain_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, dtype=torch.float64, generator=g, requires_grad=True)
    ws = [torch.randn(5, 5, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(4)]
    assert torch.autograd.gradcheck(ResidualChain.apply, (x, *ws))


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_chain_equals_plain_layers(n, dtype, tol):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 16, dtype=dtype, generator=g)  # (B, H, W, C)
    weights = _weights(n, 16, dtype, g)
    dy = torch.randn(2, 3, 4, 16, dtype=dtype, generator=g)
    fused = _grads(residual_chain, x, weights, dy)
    plain = _grads(lambda a, w: _plain(a.flatten(0, 2), w).view(a.shape), x, weights, dy)
    assert fused[0].shape == (2, 3, 4, 16) and fused[2].shape == (16, 16, 1, 1)
    for f, p in zip(fused, plain):
        torch.testing.assert_close(f, p, rtol=tol, atol=tol)


def test_chain_leaves_the_incoming_gradient_alone():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 8, dtype=torch.float64, generator=g, requires_grad=True)
    ws = [torch.randn(8, 8, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(4)]
    dy = torch.randn(6, 8, dtype=torch.float64, generator=g)
    kept = dy.clone()
    ResidualChain.apply(x, *ws).backward(dy)
    assert torch.equal(dy, kept)


def test_chain_under_cpu_autocast_matches_plain_autocast():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 32, generator=g)
    weights = [tuple(torch.randn(32, 32, generator=g) / 6 for _ in range(2)) for _ in range(2)]
    dy = torch.randn(64, 32, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = _grads(lambda a, w: ResidualChain.apply(a, *[t for p in w for t in p]), x, weights, dy)
        plain = _grads(_plain, x, weights, dy)
    assert fused[0].dtype == plain[0].dtype == torch.bfloat16
    assert fused[1].dtype == torch.float32 and all(w.dtype == torch.float32 for w in fused[2:])
    for f, p in zip(fused, plain):
        torch.testing.assert_close(f.float(), p.float(), rtol=2e-2, atol=2e-2 * float(p.abs().max()))
