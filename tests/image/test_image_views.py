"""View samplers: AMDIM's two augmented views and CPC's grid of patches."""

from __future__ import annotations

import pytest
import torch

from cpcframe import Example
from cpcframe_image import augment as A
from cpcframe_image.amdim.views import AmdimViews, AmdimViewsConfig
from cpcframe_image.patches.views import ImagePatches, ImagePatchesConfig, cut_patches


def gradient_image(h=48, w=40) -> Example:
    """A structured uint8 image (gradients and a bright square) so augmentations show."""
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    x = torch.linspace(0, 1, w)[None, :].expand(h, w)
    img = torch.stack([x, y, (x + y) / 2])
    img[:, 10:20, 5:15] = 1.0
    return Example(data=(img * 255).round().to(torch.uint8), key="img")


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("crop", ["resized", "translate", "none"])
def test_amdim_views_shapes_determinism_and_difference(crop):
    sampler = AmdimViews(AmdimViewsConfig(image_size=32, crop=crop))
    ex = gradient_image()
    v1, v2 = sampler.sample(ex, gen(7))
    assert v1.shape == v2.shape == (3, 32, 32) and v1.dtype == torch.float32
    assert torch.isfinite(v1).all()
    w1, w2 = sampler.sample(ex, gen(7))
    assert torch.equal(v1, w1) and torch.equal(v2, w2), "same generator seed must give the same views"
    # The two views of one image are augmented independently, and other seeds differ.
    assert not torch.allclose(v1, v2)
    assert not torch.allclose(v1, sampler.sample(ex, gen(8))[0])
    batch = sampler.collate([sampler.sample(ex, gen(s)) for s in range(3)])
    assert len(batch) == 2 and batch[0].shape == (3, 3, 32, 32)


def test_amdim_views_only_use_the_given_generator():
    sampler = AmdimViews(AmdimViewsConfig(image_size=32))
    ex = gradient_image()
    torch.manual_seed(0)
    a = sampler.sample(ex, gen(3))
    torch.manual_seed(999)  # a different global RNG state must not matter
    b = sampler.sample(ex, gen(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_amdim_views_without_augmentation_are_the_normalised_image():
    cfg = AmdimViewsConfig(image_size=48, crop="none", jitter_p=0.0, grayscale_p=0.0, flip_p=0.0,
                           mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    ex = Example(data=torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8, generator=gen(0)))
    v1, v2 = AmdimViews(cfg).sample(ex, gen(0))
    torch.testing.assert_close(v1, ex.data.float() / 255)
    torch.testing.assert_close(v2, v1)


def test_grayscale_and_flip_are_applied():
    base = dict(image_size=48, crop="none", jitter_p=0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    ex = gradient_image(48, 48)
    gray, _ = AmdimViews(AmdimViewsConfig(**base, grayscale_p=1.0, flip_p=0.0)).sample(ex, gen(0))
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])
    flipped, _ = AmdimViews(AmdimViewsConfig(**base, grayscale_p=0.0, flip_p=1.0)).sample(ex, gen(0))
    torch.testing.assert_close(flipped, (ex.data.float() / 255).flip(-1))


def test_shared_flip_flips_both_views_together():
    cfg = AmdimViewsConfig(image_size=48, crop="none", jitter_p=0.0, grayscale_p=0.0, flip_p=0.5)
    ex = gradient_image(48, 48)
    for seed in range(8):
        v1, v2 = AmdimViews(cfg).sample(ex, gen(seed))
        torch.testing.assert_close(v1, v2)


def test_resized_crop_params_cover_the_requested_area():
    g = gen(0)
    for _ in range(50):
        top, left, h, w = A.resized_crop_params(60, 80, g, (0.3, 1.0), (0.7, 1.4))
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.25 <= h * w / (60 * 80) <= 1.0


def test_translate_reflect_shifts_content():
    img = torch.arange(2 * 6 * 6, dtype=torch.float32).view(2, 6, 6)
    out = A.translate_reflect(img, dx=2, dy=0)
    torch.testing.assert_close(out[:, :, 2:], img[:, :, :4])
    torch.testing.assert_close(out[:, :, 1], img[:, :, 1])  # reflection: column 1 mirrors around 0 -> 1


def test_eval_view_is_deterministic_and_centre_cropped():
    sampler = AmdimViews(AmdimViewsConfig(image_size=32, eval_resize=36))
    ex = gradient_image(72, 96)
    a, b = sampler.eval_view(ex), sampler.eval_view(ex)
    assert a.shape == (3, 32, 32) and torch.equal(a, b)


# ---- CPC patches ---------------------------------------------------------------------

def test_patch_grid_shapes_for_paper_and_small_images():
    paper = ImagePatches(ImagePatchesConfig())
    (view,) = paper.sample(paper.example(), gen(0))
    assert view.shape == (7, 7, 3, 64, 64)
    small = ImagePatches(ImagePatchesConfig(image_size=32, resize=0, patch=8, stride=4))
    (view,) = small.sample(Example(data=torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)), gen(0))
    assert view.shape == (7, 7, 3, 8, 8)
    assert small.collate([(view,), (view,)])[0].shape == (2, 7, 7, 3, 8, 8)


def test_patches_overlap_by_the_stride():
    image = torch.randn(3, 32, 32)
    grid = cut_patches(image, 8, 4)
    torch.testing.assert_close(grid[2, 3], image[:, 8:16, 12:20])
    # Horizontal neighbours share half their columns (50 % overlap).
    torch.testing.assert_close(grid[0, 0][:, :, 4:], grid[0, 1][:, :, :4])


def test_patch_views_are_seeded_and_random_crops_differ():
    sampler = ImagePatches(ImagePatchesConfig(image_size=32, resize=40, patch=8, stride=4))
    ex = Example(data=torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8, generator=gen(1)))
    a = sampler.sample(ex, gen(3))[0]
    assert torch.equal(a, sampler.sample(ex, gen(3))[0])
    assert any(not torch.equal(a, sampler.sample(ex, gen(s))[0]) for s in range(4, 8))
    assert torch.equal(sampler.eval_view(ex), sampler.eval_view(ex))


def test_patch_config_rejects_grids_that_do_not_tile():
    with pytest.raises(ValueError, match="multiple of stride"):
        ImagePatchesConfig(image_size=30, resize=0, patch=8, stride=4)


def test_inference_views_read_a_file_deterministically(tmp_path):
    """``cpcframe embed`` input: the file resized and centre-cropped like the probe's view."""
    from PIL import Image

    from cpcframe_image.data.decode import decode

    ex = gradient_image(48, 40)
    path = tmp_path / "photo.png"
    Image.fromarray(ex.data.permute(1, 2, 0).numpy()).save(path)
    amdim = AmdimViews(AmdimViewsConfig(image_size=32))
    [(key, view)] = amdim.inference_views(path)
    assert key == "photo" and view.shape == (3, 32, 32)
    torch.testing.assert_close(view, amdim.eval_view(Example(data=decode(path))))
    torch.testing.assert_close(view, amdim.inference_views(path)[0][1])
    patches = ImagePatches(ImagePatchesConfig(image_size=32, resize=36, patch=8, stride=4))
    [(key, grid)] = patches.inference_views(path)
    assert key == "photo" and grid.shape == (7, 7, 3, 8, 8)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n no data")
    with pytest.raises(OSError):
        amdim.inference_views(tmp_path / "bad.png")
