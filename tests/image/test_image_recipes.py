"""The image recipes hold the papers' settings, and CPC on image patches runs end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from cpcframe.build import build_model
from cpcframe.config.loader import load_recipe
from cpcframe_image.data.synthetic import write_shapes

from testpaths import ROOT

RECIPES = ROOT / "recipes"


@pytest.mark.parametrize("name, size, ndf, n_rkhs, depth", [("amdim_cifar10", 32, 128, 1024, 10),
                                                             ("amdim_stl10", 64, 192, 1536, 8)])
def test_amdim_recipes_hold_the_papers_settings(registry, name, size, ndf, n_rkhs, depth):
    from cpcframe_image.amdim.encoders import scale_sizes

    r = load_recipe(RECIPES / f"{name}.toml", registry)
    enc = r.model.encoder.config
    assert (enc.image_size, enc.ndf, enc.n_rkhs, enc.n_depth) == (size, ndf, n_rkhs, depth)
    assert r.data.views.config.image_size == size
    assert scale_sizes(size) == {"1": 1, "5": 5, "7": 7}
    assert r.model.critic.config.pairs == ("1t5", "1t7", "5t5")
    assert (r.loss.negatives, r.loss.clip, r.loss.score_penalty) == ("other_sequences", 20.0, 0.04)
    assert r.data.batch_size == 200 and r.train.lr == 2e-4
    assert r.model.context.name == "identity" and r.probe.name == "image_linear"


def test_cpc_patch_recipe_is_the_papers_grid(registry):
    r = load_recipe(RECIPES / "cpc_patches_imagenet.toml", registry)
    views = r.data.views.config
    assert (views.image_size, views.patch, views.stride, views.grid) == (256, 64, 32, 7)
    assert r.model.encoder.config.blocks == (3, 4, 23) and r.model.encoder.config.bottleneck
    assert r.model.context.name == "pixelcnn" and r.model.critic.config.steps == 5


@pytest.mark.timeout(300)
def test_cpc_patches_train_and_probe_end_to_end(tmp_path):
    """The ImageNet patch recipe at toy size: 7x7 grids of 8x8 patches of 32x32 shapes."""
    data = write_shapes(tmp_path / "shapes", per_class=12)
    run = tmp_path / "run"
    sets = ["data.views.image_size=32", "data.views.resize=0", "data.views.patch=8", "data.views.stride=4",
            "model.encoder.width=8", "model.encoder.blocks=[1]", "model.encoder.bottleneck=false",
            "model.encoder.stem=small", "model.context.hidden=16", "model.context.layers=2",
            "model.critic.steps=3", "data.batch_size=4", "data.num_workers=0", "train.steps=3",
            "train.precision=fp32", "train.device=cpu", "train.log_every=1", "probe.max_train=0",
            "probe.baselines=true", f"data.dataset.root={data}", 'probe.classifiers=["linear", "mlp"]',
            "probe.mlp.hidden=16", "probe.mlp.min_steps=20"]
    args = [a for s in sets for a in ("--set", s)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "cpcframe", "run", str(RECIPES / "cpc_patches_imagenet.toml"),
                             "--out", str(run), "--quiet", *args], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=280)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"acc/k1", "acc/k2", "acc/k3"} <= set(log[-1])  # one prediction per row offset
    scores = json.loads((run / "probe.json").read_text())["classification"]
    assert set(scores) == {"cpc", "cpc_mlp", "random_init", "random_init_mlp"}  # both classifiers
    details = json.loads((run / "probe_image_details.json").read_text())
    assert 0.0 <= details["cpc_mlp_train_accuracy"] <= 1.0
    assert not (run / "pictures").exists()  # matching-score maps are AMDIM's only


@pytest.mark.timeout(300)
def test_amdim_mixture_representation_trains_through_the_cli(tmp_path):
    """``model.critic.mixture_heads = 3``: every global-source pair reports one step per head,
    and the heads' weights are trained (they are saved and differ from a fresh model's)."""
    import cpcframe

    data = write_shapes(tmp_path / "shapes", per_class=6)
    run = tmp_path / "run"
    sets = ["model.critic.mixture_heads=3", "model.critic.entropy_weight=0.5", "model.encoder.ndf=8",
            "model.encoder.n_rkhs=32", "data.batch_size=8", "train.steps=3", "train.log_every=1",
            f"data.dataset.root={data}"]
    args = [a for s in sets for a in ("--set", s)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "cpcframe", "run", str(RECIPES / "quickstart_image.toml"),
                             "--out", str(run), "--quiet", "--no-probe", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(entry["loss"]) for entry in log)
    # Global sources (1t5, 1t7) in both directions: one step per head; 5t5 has no heads.
    heads = {f"acc/{pair}_{d}/h{j}" for pair in ("1t5", "1t7") for d in ("12", "21") for j in range(3)}
    assert heads <= set(log[-1]) and {"acc/5t5_12", "acc/5t5_21"} <= set(log[-1])
    loaded = cpcframe.load(run)
    torch.manual_seed(loaded.recipe.seed)  # the trainer's initial weights
    initial = build_model(loaded.recipe, loaded.registry).critic.heads.state_dict()
    trained = loaded.model.critic.heads.state_dict()
    assert trained and set(trained) == set(initial)
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)
