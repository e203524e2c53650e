"""CPC on image patches: the patch encoder, the row-causal PixelCNN and the grid critic."""

from __future__ import annotations

import pytest
import torch

from cpcframe import Batch, InfoNCEConfig
from cpcframe.infonce import info_nce
from cpcframe_image.patches.critics import GridCritic, GridCriticConfig
from cpcframe_image.patches.encoders import PatchResNet, PatchResNetConfig
from cpcframe_image.patches.context_models import PixelCNNConfig, PixelCNNContext


@pytest.mark.parametrize("bottleneck,stem,norm", [(False, "small", "layer"), (True, "imagenet", "batch")])
def test_patch_resnet_gives_one_vector_per_patch(bottleneck, stem, norm):
    torch.manual_seed(0)
    enc = PatchResNet(PatchResNetConfig(width=8, blocks=(1, 1), bottleneck=bottleneck, stem=stem, norm=norm))
    x = torch.randn(2, 3, 4, 3, 16, 16)
    z = enc(x)
    assert z.shape == (2, 3, 4, enc.output_dim)
    assert enc.output_dim == (8 * 2 * (4 if bottleneck else 1))
    # Patches are encoded independently under layer norm: changing one patch changes one vector.
    if norm == "layer":
        x2 = x.clone()
        x2[1, 2, 3] += 1.0
        changed = (enc(x2) - z).abs().sum(-1) > 1e-6
        assert changed.sum() == 1 and changed[1, 2, 3]


def test_patch_resnet_rejects_images():
    with pytest.raises(ValueError, match="G_h, G_w"):
        PatchResNet(PatchResNetConfig(width=8, blocks=(1,)))(torch.randn(2, 3, 32, 32))


def make_pixelcnn(layers=3):
    torch.manual_seed(0)
    return PixelCNNContext(PixelCNNConfig(hidden=16, layers=layers, kernel_rows=2, kernel_cols=3), input_dim=8)


@pytest.mark.parametrize("row", [0, 2, 4, 6])
def test_pixelcnn_context_at_row_i_ignores_rows_below(row):
    """Perturbing rows > i leaves the context of rows <= i unchanged; rows below do change."""
    model = make_pixelcnn()
    z = torch.randn(2, 7, 7, 8)
    c = model(z)
    z2 = z.clone()
    z2[:, row + 1:] = torch.randn_like(z2[:, row + 1:]) * 5
    c2 = model(z2)
    torch.testing.assert_close(c2[:, : row + 1], c[:, : row + 1], rtol=0, atol=0)
    if row < 6:
        assert not torch.allclose(c2[:, row + 1:], c[:, row + 1:])


def test_pixelcnn_gradient_of_row_i_is_zero_below_and_nonzero_above():
    """d c_i / d z_r = 0 for every row r > i; rows within the receptive field (``layers``
    blocks x 1 row up each, here 4) have a gradient."""
    model = make_pixelcnn(layers=4)
    z = torch.randn(1, 7, 5, 8, requires_grad=True)
    c = model(z)
    w = torch.randn(c.shape[2:])  # a random read-out (a plain sum of a layer-normed vector is constant)
    for i in range(7):
        (grad,) = torch.autograd.grad((c[:, i] * w).sum(), z, retain_graph=True)
        per_row = grad.abs().sum(dim=(0, 2, 3))  # (rows,)
        assert (per_row[i + 1:] == 0).all(), f"row {i} depends on rows below: {per_row}"
        seen = per_row[max(0, i - 4): i + 1]
        assert (seen > 1e-6).all(), f"row {i} should see rows {max(0, i - 4)}..{i}: {per_row}"


def test_pixelcnn_sees_the_whole_width_of_earlier_rows():
    model = make_pixelcnn(layers=4)
    z = torch.randn(1, 5, 5, 8, requires_grad=True)
    out = model(z)[0, 4, 0]
    (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), z)
    assert grad[0, 2].abs().sum(-1).gt(1e-6).sum() >= 3  # 2 rows up: columns 0, 1, 2 of 5


def test_grid_critic_layout():
    critic = GridCritic(GridCriticConfig(steps=2), latent_dim=4, context_dim=6)
    positives, steps = critic.layout(3, 2, torch.device("cpu"))
    # query q = (i·W + j)·K + (k-1); W = 2, K = 2
    expected = []
    for i in range(3):
        for j in range(2):
            for k in (1, 2):
                expected.append((i + k) * 2 + j if i + k < 3 else -1)
    assert positives[:, 0].tolist() == expected
    assert steps.tolist() == [0, 1] * 6


def test_grid_critic_queries_are_linear_maps_of_the_context():
    torch.manual_seed(0)
    critic = GridCritic(GridCriticConfig(steps=3), latent_dim=4, context_dim=6)
    z = torch.randn(2, 5, 3, 4)
    c = torch.randn(2, 5, 3, 6)
    (contrast,) = critic([z], [c], Batch(views=(z,), groups=torch.zeros(2, dtype=torch.long)))
    B, H, W, K = 2, 5, 3, 3
    assert contrast.queries.shape == (B, H * W * K, 4) and contrast.keys.shape == (B, H * W, 4)
    i, j, k = 1, 2, 3
    q = (i * W + j) * K + (k - 1)
    w_k = critic.predictors.weight.view(K, 4, 6)[k - 1]
    torch.testing.assert_close(contrast.queries[0, q], w_k @ c[0, i, j])
    assert contrast.positives[q, 0] == (i + k) * W + j
    torch.testing.assert_close(contrast.keys[0, contrast.positives[q, 0]], z[0, i + k, j])
    loss = info_nce(contrast, InfoNCEConfig(negatives="batch")).loss
    loss.backward()
    assert torch.isfinite(loss) and critic.predictors.weight.grad.abs().sum() > 0


def test_whole_patch_model_never_uses_rows_below_for_a_prediction():
    """End to end: queries from row i are unchanged when patches below row i change."""
    torch.manual_seed(0)
    enc = PatchResNet(PatchResNetConfig(width=8, blocks=(1,)))
    ctx = PixelCNNContext(PixelCNNConfig(hidden=8, layers=2), input_dim=enc.output_dim)
    critic = GridCritic(GridCriticConfig(steps=2), enc.output_dim, ctx.output_dim)
    x = torch.randn(1, 4, 3, 3, 8, 8)
    batch = Batch(views=(x,), groups=torch.zeros(1, dtype=torch.long))

    def queries(view):
        z = enc(view)
        return critic([z], [ctx(z)], batch)[0].queries.view(1, 4, 3, 2, -1)

    x2 = x.clone()
    x2[:, 2:] = torch.randn_like(x2[:, 2:])
    torch.testing.assert_close(queries(x2)[:, :2], queries(x)[:, :2], rtol=0, atol=0)
