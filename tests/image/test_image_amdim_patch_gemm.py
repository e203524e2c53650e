"""Spatial convolutions as one GEMM over patches (``patch_gemm``) against ``F.conv2d``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from cpcframe_image.amdim.patch_gemm import PatchConv, patch_conv


def _run(fn, x, w, b, stride, dy_seed=3):
    x, w = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    b = None if b is None else b.detach().clone().requires_grad_()
    y = fn(x, w, b, stride)  # (B, Ho, Wo, O)
    dy = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(dy_seed))
    y.backward(dy)
    return y.detach(), x.grad, w.grad, None if b is None else b.grad


def _conv2d(x, w, b, stride):
    return F.conv2d(x.permute(0, 3, 1, 2), w, b, stride).permute(0, 2, 3, 1)


# (H, C, O, kernel, stride, bias): AMDIM's stem, strided block openers (overlapping 4/2,
# tiling 2/2, 2/2 on an odd map that leaves a border), 3x3 layers on small maps.
CASES = [(9, 3, 4, 3, 1, True), (10, 4, 6, 4, 2, False), (8, 4, 6, 2, 2, False),
         (7, 3, 5, 2, 2, False), (5, 6, 4, 3, 1, True), (3, 5, 7, 3, 1, False)]


@pytest.mark.parametrize("H,C,O,k,s,bias", CASES)
def test_patch_conv_equals_conv2d(H, C, O, k, s, bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, H, H, C, dtype=torch.float64, generator=g)
    w = torch.randn(O, C, k, k, dtype=torch.float64, generator=g)
    b = torch.randn(O, dtype=torch.float64, generator=g) if bias else None
    fast, ref = _run(patch_conv, x, w, b, s), _run(_conv2d, x, w, b, s)
    assert fast[0].shape == ref[0].shape and fast[0].is_contiguous()
    for f, r in zip(fast, ref):
        if r is not None:
            torch.testing.assert_close(f, r, rtol=1e-12, atol=1e-12)


def test_patch_conv_gradcheck():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 6, 2, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: PatchConv.apply(*a, 2), (x, w, b))


def test_patch_conv_under_cpu_autocast_matches_conv2d_autocast():
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(4, 7, 7, 16, generator=g), torch.randn(8, 16, 3, 3, generator=g) / 12
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast, ref = _run(patch_conv, x, w, None, 1), _run(_conv2d, x, w, None, 1)
    assert fast[0].dtype == ref[0].dtype == torch.bfloat16 and fast[2].dtype == torch.float32
    for f, r in zip(fast[:3], ref[:3]):
        torch.testing.assert_close(f.float(), r.float(), rtol=2e-2, atol=2e-2 * float(r.abs().max()))
