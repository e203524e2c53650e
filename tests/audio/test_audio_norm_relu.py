"""The fused layer norm + ReLU + padding against the three unfused operations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cpcframe_audio.norm_relu import _LayerNormReLUPadded, layer_norm_relu_padded


def unfused(x, weight, bias, eps, padding):
    return F.pad(F.relu(F.layer_norm(x, x.shape[-1:], weight, bias, eps)), (0, 0, *padding))


def leaves(dtype, T=9, C=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, T, C, generator=g, dtype=dtype).requires_grad_()
    weight = (1 + 0.3 * torch.randn(C, generator=g, dtype=dtype)).requires_grad_()
    bias = (0.2 * torch.randn(C, generator=g, dtype=dtype)).requires_grad_()
    return x, weight, bias


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", [(0, 0), (2, 2), (3, 1), (1, -2), (0, -8)])
def test_equals_the_unfused_operations_exactly(dtype, padding):
    """Same ATen kernels, so outputs and all gradients are bit-identical, crops included."""
    a, b = leaves(dtype), leaves(dtype)
    got = layer_norm_relu_padded(*a, 1e-5, padding)
    want = unfused(*b, 1e-5, padding)
    assert got.shape == want.shape == (3, 9 + sum(padding), 6)
    assert torch.equal(got, want)
    grad = torch.randn(got.shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    got.backward(grad)
    want.backward(grad)
    for x, y in zip(a, b):
        assert torch.equal(x.grad, y.grad)


def test_padding_rows_are_zero_and_relu_applies():
    x, weight, bias = leaves(torch.float32)
    out = layer_norm_relu_padded(x, weight, bias, 1e-5, (2, 3))
    assert torch.all(out[:, :2] == 0) and torch.all(out[:, -3:] == 0)
    assert out.min() == 0 and out[:, 2:-3].max() > 0


def test_gradcheck():
    x, weight, bias = leaves(torch.float64, T=4, C=5)
    assert torch.autograd.gradcheck(lambda *t: _LayerNormReLUPadded.apply(*t, 1e-5, 1, 2), (x, weight, bias))


def test_only_the_needed_gradients_are_computed():
    x, weight, bias = leaves(torch.float32)
    weight.requires_grad_(False)
    layer_norm_relu_padded(x, weight, bias, 1e-5, (1, 1)).sum().backward()
    assert x.grad is not None and bias.grad is not None and weight.grad is None


def test_autocast_and_half_precision_run_unfused(monkeypatch):
    """Under autocast the unfused path keeps autocast's own rules for layer_norm."""
    monkeypatch.setattr(_LayerNormReLUPadded, "apply", lambda *a: pytest.fail("fused path under autocast"))
    x, weight, bias = leaves(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer_norm_relu_padded(x, weight, bias, 1e-5, (1, 1))
        want = unfused(x, weight, bias, 1e-5, (1, 1))
    assert out.dtype == want.dtype and torch.equal(out, want)
    half = layer_norm_relu_padded(x.detach().bfloat16(), weight.detach().bfloat16(), None, 1e-5, (0, 1))
    assert half.dtype == torch.bfloat16 and half.shape == (3, 10, 6)


def test_negative_left_padding_is_an_error():
    x, weight, bias = leaves(torch.float32)
    with pytest.raises(ValueError, match="left padding must be >= 0, got -1"):
        layer_norm_relu_padded(x, weight, bias, 1e-5, (-1, 0))
