"""End to end: a shortened ``recipes/quickstart_image.toml`` trains AMDIM on synthetic shapes
(with broken files in the folder), probes it against its random init, writes the
matching-score pictures, and the trained run embeds image files (``cpcframe embed``,
``cpcframe.load``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import cpcframe
from cpcframe.runs import load_features
from cpcframe_image.data.synthetic import make_image, write_shapes

from testpaths import ROOT

RECIPE = ROOT / "recipes" / "quickstart_image.toml"
# Shortened: 100 steps of 16 images instead of 300 of 32 (10-35 s on one core, by machine load).
SHORT = ["--set", "train.steps=100", "--set", "data.batch_size=16", "--set", "train.log_every=10",
         "--set", "train.checkpoint_every=100"]


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    # One thread: on a busy 2-core machine OpenMP threads mostly wait for each other.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cpcframe", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(run_dir, result)`` of the shortened quickstart on 4 x 100 shapes plus 2 broken files."""
    base = tmp_path_factory.mktemp("quickstart_image")
    data = write_shapes(base / "shapes", per_class=100)
    (data / "circle" / "zz_empty.png").write_bytes(b"")
    (data / "square" / "zz_text.png").write_text("not an image")
    run = base / "run"
    result = cli("run", str(RECIPE), "--out", str(run), "--quiet", "--set", f"data.dataset.root={data}", *SHORT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run, result


@pytest.mark.timeout(300)
def test_trained_encoder_beats_random_init_in_its_probe(trained):
    """The loss falls, and the probe on the frozen global feature beats the same
    architecture at random init (measured: 88.7 / 90.0 / 91.3 % against 77.5 / 78.8 /
    77.5 % for seeds 0 / 1 / 2)."""
    run, result = trained
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 100
    assert log[-1]["loss"] < log[0]["loss"] - 0.5, (log[0]["loss"], log[-1]["loss"])
    scores = json.loads((run / "probe.json").read_text())["classification"]
    assert set(scores) == {"amdim", "random_init"}
    assert scores["amdim"] > scores["random_init"] + 0.05, scores
    assert scores["amdim"] > 0.8, scores
    assert "amdim" in result.stdout and "random_init" in result.stdout  # the printed table
    details = json.loads((run / "probe_image_details.json").read_text())
    assert details["train_images"] == 320 and details["test_images"] == 80
    assert details["classes"] == 4 and details["feature_dim"] == 64


def test_broken_files_are_skipped_and_counted_in_the_summary(trained):
    run, result = trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 100
    assert summary["skipped"] == {"empty file": 1, "not an image": 1}
    assert "skipped data" in result.stdout


def test_run_writes_matching_score_pictures(trained):
    run, _ = trained
    pictures = sorted((run / "pictures").glob("match_*.png"))
    assert len(pictures) == 4  # probe.pictures = 4 in the recipe
    for path in pictures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_trained_run_embeds_image_files(trained, tmp_path):
    run, _ = trained
    from PIL import Image

    rng = np.random.default_rng(5)
    for name, kind, size in (("a", "circle", 32), ("b", "cross", 48)):  # b is resized to 32
        Image.fromarray(make_image(kind, rng, size)).save(tmp_path / f"{name}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "f.npz"
    result = cli("embed", str(run), str(tmp_path / "a.png"), str(tmp_path / "broken.png"),
                 str(tmp_path / "b.png"), "--out", str(out), "--level", "latent")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "broken.png" in result.stderr and "unreadable: 1" in result.stdout
    features = load_features(out)
    assert sorted(features) == ["a/1", "a/5", "a/7", "b/1", "b/5", "b/7"]
    assert features["a/1"].shape == (1, 1, 64) and features["a/5"].shape == (5, 5, 64)
    assert features["a/7"].shape == (7, 7, 64)

    model = cpcframe.load(run)
    views = model.view_sampler().inference_views(tmp_path / "a.png")
    assert [k for k, _ in views] == ["a"] and views[0][1].shape == (3, 32, 32)
    direct = model.encode(views[0][1][None], level="latent")
    np.testing.assert_allclose(features["a/1"], direct["1"][0].numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(features["a/1"], features["b/1"])
    embedded = model.embed(tmp_path / "b.png")
    np.testing.assert_allclose(embedded["b/7"], features["b/7"], rtol=1e-5, atol=1e-5)
    assert isinstance(direct["5"], torch.Tensor)


def test_probe_command_on_the_finished_run_repeats_the_numbers(trained):
    run, _ = trained
    before = json.loads((run / "probe.json").read_text())
    again = cli("probe", str(run), "--baselines")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "classification" in again.stdout and "random_init" in again.stdout
    assert json.loads((run / "probe.json").read_text()) == before
