"""Image models leave the lab the same way: export -> load -> the same features.

A briefly trained AMDIM run of the image quickstart (multi-scale features, no context
model) and an untrained CPC patch model (patch ResNet + PixelCNN context) of
``recipes/cpc_patches_imagenet.toml``, made small; neither gets an s3prl part.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cpcframe
from cpcframe.build import build_model
from cpcframe.config.loader import dump_recipe, load_recipe
from cpcframe.export.bundle import export_run
from cpcframe.export.layout import ExportDir
from cpcframe.runs import RunDir, save_weights
from cpcframe.training.trainer import Trainer
from cpcframe_image.data.synthetic import make_image, write_shapes

from exporting import markdown_tables, table_with
from testpaths import ROOT

QUICKSTART = ROOT / "recipes" / "quickstart_image.toml"
PATCHES = ROOT / "recipes" / "cpc_patches_imagenet.toml"
SMALL_PATCHES = ("model.encoder.blocks=[1, 1]", "model.encoder.width=8", "model.encoder.stem=\"small\"",
                 "data.views.image_size=64", "data.views.resize=72", "data.views.patch=32", "data.views.stride=16",
                 "model.context.hidden=16", "model.context.layers=1", "model.critic.steps=1")


@pytest.fixture(scope="module")
def amdim(tmp_path_factory):
    """``(run_dir, export)`` of the image quickstart trained 2 steps on 4 x 8 shapes."""
    from cpcframe.plugins import default_registry

    registry = default_registry()
    base = tmp_path_factory.mktemp("amdim")
    data = write_shapes(base / "shapes", per_class=8)
    recipe = load_recipe(QUICKSTART, registry, [f"data.dataset.root={data}", "train.steps=2",
                                                "data.batch_size=8", "train.checkpoint_every=2"])
    Trainer(recipe, registry, RunDir(base / "run"), progress=False).run()
    return base / "run", export_run(base / "run", base / "export")


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    """``(run_dir, export)`` of a small, untrained CPC patch model."""
    from cpcframe.plugins import default_registry

    registry = default_registry()
    base = tmp_path_factory.mktemp("patches")
    recipe = load_recipe(PATCHES, registry, SMALL_PATCHES)
    run = RunDir(base / "run")
    run.root.mkdir()
    run.recipe.write_text(dump_recipe(recipe))
    torch.manual_seed(0)
    save_weights(run.weights, build_model(recipe, registry))
    return run.root, export_run(run.root, base / "export")


def same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("which", ["amdim", "patches"])
def test_export_loads_to_the_same_features(which, request, tmp_path):
    run, exported = request.getfixturevalue(which)
    original, copy = cpcframe.load(run), cpcframe.load(exported.folder)
    torch.manual_seed(1)
    x = copy.model.encoder.example_input(2)
    for level in ("latent", "context"):
        assert same(copy.encode(x, level=level), original.encode(x, level=level))
    from PIL import Image

    Image.fromarray(make_image("circle", np.random.default_rng(5), 80)).save(tmp_path / "a.png")
    ours, theirs = copy.embed(tmp_path / "a.png"), original.embed(tmp_path / "a.png")
    assert ours.keys() == theirs.keys() and ours
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
    assert exported.manifest.modality == "image" and exported.manifest.s3prl is None
    assert "expert.py" not in exported.files and exported.note == ""


def test_amdim_card_names_the_method_and_its_scales(amdim):
    _, exported = amdim
    card = ExportDir(exported.folder).card.read_text()
    assert "trained with AMDIM" in card and "(no context model: c = z)" in card and "arXiv:1906.00910" in card
    assert "- image" in card and "- amdim" in card and "s3prl" not in card
    _, model = table_with(markdown_tables(card), "part")
    assert [r[1] for r in model.values()] == ["`amdim`", "`identity`", "`amdim`"]
    assert "`'1'`" not in card and "{'1': (2, 1, 1, 64), '5': (2, 5, 5, 64), '7': (2, 7, 7, 64)}" in card
    assert 'pip install "cpcframe[image,hub]"' in card and 'model.embed("picture.png")' in card
