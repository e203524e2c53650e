"""AMDIM's encoder: the 1x1 / 5x5 / 7x7 maps at the paper's input sizes, no padding (local
features are local), and the ndf / n_rkhs / n_depth knobs (Bachman et al. 2019, 3.5)."""

from __future__ import annotations

import pytest
import torch

from cpcframe_image.amdim.encoders import AmdimEncoder, AmdimEncoderConfig, family, scale_sizes
from cpcframe_image.amdim.layers import ConvResNxN


def tiny(image_size: int, **kw) -> AmdimEncoder:
    options = dict(image_size=image_size, ndf=4, n_rkhs=16, n_depth=1) | kw
    return AmdimEncoder(AmdimEncoderConfig(**options)).eval()


@pytest.mark.parametrize("size", [32, 64, 128])  # CIFAR, STL-10, ImageNet
def test_paper_sizes_give_1x1_5x5_7x7_maps_in_n_rkhs(size):
    assert scale_sizes(size) == {"1": 1, "5": 5, "7": 7}
    enc = tiny(size)
    out = enc(torch.randn(2, 3, size, size))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "1": (2, 1, 1, 16), "5": (2, 5, 5, 16), "7": (2, 7, 7, 16)}
    assert enc.output_dim == 16


@pytest.mark.parametrize("size, family_, sizes", [(48, 32, {"1": 5, "5": 9, "7": 11}),
                                                   (96, 64, {"1": 5, "5": 9, "7": 11})])
def test_other_sizes_give_what_the_input_gives_and_pool_the_global_vector(size, family_, sizes):
    assert family(size) == family_
    assert scale_sizes(size) == sizes
    out = tiny(size)(torch.randn(2, 3, size, size))
    assert out["1"].shape == (2, 1, 1, 16)  # mean-pooled into one global vector
    assert out["5"].shape[1:3] == (sizes["5"],) * 2 and out["7"].shape[1:3] == (sizes["7"],) * 2


def test_knobs_set_widths_and_depth():
    small, wide = tiny(32, ndf=4, n_depth=1), tiny(32, ndf=8, n_depth=3)
    count = lambda m: sum(isinstance(x, ConvResNxN) for x in m.modules())  # noqa: E731
    assert count(wide) > count(small)
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in small.parameters())
    assert wide.layers[0].conv.out_channels == 8


def test_no_padding_keeps_a_local_feature_local():
    """Changing the bottom-right corner of the image leaves the top-left 7x7 location
    unchanged: it sees only its receptive field (no padding, no global statistics in eval)."""
    enc = tiny(32)
    x = torch.randn(1, 3, 32, 32)
    y = x.clone()
    y[..., 24:, 24:] = torch.randn(1, 3, 8, 8)
    a, b = enc(x)["7"], enc(y)["7"]
    assert torch.allclose(a[0, 0, 0], b[0, 0, 0])
    assert not torch.allclose(a[0, -1, -1], b[0, -1, -1])
    assert not torch.allclose(enc(x)["1"], enc(y)["1"])  # the global feature sees everything


def test_wrong_input_size_and_too_small_images_are_precise_errors():
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\).*model.encoder.image_size"):
        tiny(32)(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="too small"):
        AmdimEncoderConfig(image_size=24)


def test_gradients_reach_the_stem_through_every_scale():
    enc = tiny(32).train()
    out = enc(torch.randn(4, 3, 32, 32))
    for scale in ("1", "5", "7"):
        enc.zero_grad()
        out[scale].pow(2).mean().backward(retain_graph=True)
        assert enc.layers[0].conv.weight.grad.abs().sum() > 0, scale
