"""A run that is not learning says so; a resumed run reports its whole length (issue 17,
parts 2 and 6)."""

from __future__ import annotations

import json

import pytest
import torch

from cpcframe.config.loader import load_recipe
from cpcframe.contrast import Contrast
from cpcframe.runs import RunDir
from cpcframe.training.learning import COLLAPSED_SPREAD, LearningWatch, latent_spread
from cpcframe.training.trainer import Trainer, TrainingInterrupted

from stop_at import StopAt
from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


def test_latent_spread_is_zero_for_constant_latents_and_near_one_for_noise():
    def contrast(keys):
        B, L, D = keys.shape
        return Contrast(queries=torch.randn(B, 2, D), keys=keys, positives=torch.zeros(2, 1, dtype=torch.long),
                        steps=torch.zeros(2, dtype=torch.long), step_names=("k1",), groups=torch.arange(B))
    constant = torch.ones(4, 5, 8) + 1e-4 * torch.randn(4, 5, 8)
    assert latent_spread([contrast(constant)]) < 1e-6
    assert latent_spread([contrast(torch.randn(64, 5, 8))]) > 0.9


def test_watch_warns_once_after_plateau_steps_and_recovers():
    watch = LearningWatch(plateau_steps=100, num_negatives=127)
    assert watch.observe(50, {"acc": 0.008, "loss": 4.85, "latent_spread": 0.3}) is None
    assert watch.status == "at_chance"  # too early to say
    text = watch.observe(100, {"acc": 0.009, "loss": 4.84, "latent_spread": 0.3})
    assert text and "not learning" in text and "normalize_input" in text and "warmup_steps" in text
    assert "0.0078" in text  # chance = 1/128
    assert watch.observe(110, {"acc": 0.009, "loss": 4.84}) is None  # said once
    assert watch.summary()["status"] == "not_learning" and "message" in watch.summary()
    watch.observe(200, {"acc": 0.2, "loss": 3.0})
    assert watch.summary()["status"] == "learning"


def test_watch_names_collapse():
    watch = LearningWatch(plateau_steps=10, num_negatives=8)
    text = watch.observe(10, {"acc": 0.1, "loss": 2.2, "latent_spread": COLLAPSED_SPREAD / 10})
    assert watch.status == "collapsed" and "collapsed" in text


def test_watch_without_sampled_negatives_takes_the_first_record_as_chance():
    watch = LearningWatch(plateau_steps=2, num_negatives=0)
    watch.observe(1, {"acc": 0.05})
    watch.observe(2, {"acc": 0.06})
    assert watch.status == "not_learning"


def test_a_run_at_chance_warns_and_says_so_in_summary_and_final_line(registry, tmp_path, capsys):
    from cpcframe.cli import main

    out = tmp_path / "run"
    # lr 1e-12: the weights do not move, the accuracy stays at chance (1/9).
    status = main(["run", str(TOY), "--out", str(out), "--no-report", "--set", "train.lr=1e-12",
                   "--set", "train.steps=6", "--set", "train.plateau_steps=4", "--set", "train.log_every=2"])
    assert status == 0
    captured = capsys.readouterr()
    assert captured.err.count("cpcframe: warning: the run is not learning") == 1, captured.err
    assert "NOT LEARNING" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learning"]["status"] == "not_learning"
    assert summary["learning"]["chance_acc"] == pytest.approx(1 / 9, abs=1e-4)
    assert "latent_spread" in summary["metrics"]


def test_a_learning_run_is_not_warned(registry, tmp_path, capsys):
    recipe = load_recipe(TOY, registry, ["train.steps=40", "train.plateau_steps=30", "train.lr=1e-2",
                                         "train.log_every=10"])
    summary = Trainer(recipe, registry, RunDir(tmp_path), progress=False).run()
    assert summary.learning["status"] == "learning", summary
    assert "not learning" not in capsys.readouterr().err


def test_resumed_summary_reports_the_whole_run(registry, tmp_path, capsys):
    from cpcframe.cli import main

    recipe = load_recipe(TOY, registry, ["train.steps=10", "train.checkpoint_every=100"])
    with pytest.raises(TrainingInterrupted):
        StopAt(recipe, registry, RunDir(tmp_path), progress=False).run()
    capsys.readouterr()
    first = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["train_seconds"]
    assert first > 0
    assert main(["run", str(tmp_path), "--resume", "--quiet", "--no-report"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["step"] == 10 and summary["resumed_at"] == 5 and summary["session_steps"] == 5
    assert summary["seconds"] == pytest.approx(first + summary["session_seconds"], rel=0.05, abs=0.05)
    assert summary["seconds"] > summary["session_seconds"]
    line = capsys.readouterr().out
    assert "trained 10 steps in" in line and "5 of them now" in line and "resumed at step 5" in line
