"""``train.validate_every``: held-out InfoNCE metrics that never disturb training."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from cpcframe.config.loader import load_recipe
from cpcframe.errors import UserError
from cpcframe.runs import RunDir, load_state
from cpcframe.training.trainer import Trainer, TrainingInterrupted

from testpaths import ROOT, TESTS, cli_env
from stop_at import StopAt as StopAtStep

TOY = TESTS / "core" / "toy_recipe.toml"
BASE = ["train.steps=6", "model.critic.dropout=0.2"]  # dropout: validation must run in eval mode


def run(registry, run_dir, *overrides, trainer_class=Trainer, resume=False):
    recipe = load_recipe(TOY, registry, BASE + list(overrides))
    trainer = trainer_class(recipe, registry, RunDir(run_dir), progress=False, resume=resume)
    summary = trainer.run()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return records, summary, trainer


def training_part(records):
    return [{k: v for k, v in r.items() if not k.startswith("val/") and k != "items_per_s"}
            for r in records if "loss" in r]


def test_validation_is_logged_and_leaves_training_unchanged(registry, tmp_path):
    plain, _, _ = run(registry, tmp_path / "plain")
    validated, summary, trainer = run(registry, tmp_path / "val", "train.validate_every=2",
                                      "train.validate_batches=3")
    assert training_part(validated) == training_part(plain)  # same RNG streams, bit for bit
    assert [r["step"] for r in validated if "val/loss" in r] == [2, 4, 6]
    first = next(r for r in validated if "val/loss" in r)
    assert {"val/loss", "val/acc", "val/acc/k1", "val/acc/k3", "val/loss/k2"} <= set(first)
    assert 0.0 <= first["val/acc"] <= 1.0 and first["val/loss"] > 0
    assert summary.metrics["val/loss"] == validated[-1]["val/loss"]
    assert trainer.model.training  # back in training mode


def test_validation_between_training_records_gets_records_of_its_own(registry, tmp_path):
    records, summary, _ = run(registry, tmp_path, "train.log_every=3", "train.validate_every=4",
                              "train.validate_batches=2")
    assert [(r["step"], "loss" in r, "val/loss" in r) for r in records] == [
        (3, True, False), (4, False, True), (6, True, True)]  # the last step always validates
    assert {"loss", "val/loss"} <= set(summary.metrics)
    assert (tmp_path / "curves.png").is_file()


def test_validation_uses_the_same_batches_and_negatives_every_time(registry, tmp_path):
    # A learning rate too small to move the weights: every validation must read the same.
    records, _, _ = run(registry, tmp_path, "train.lr=1e-30", "train.validate_every=2", "train.validate_batches=3")
    values = [r["val/loss"] for r in records if "val/loss" in r]
    assert len(values) == 3 and values[0] == values[1] == values[2]
    # ...and they are the test split's: the training loss at step 2 is another number.
    assert records[1]["loss"] != values[0]


class StopAt(StopAtStep):
    stop_at = 3


def test_resume_with_validation_equals_uninterrupted(registry, tmp_path):
    settings = ["train.validate_every=2", "train.validate_batches=2", "train.checkpoint_every=100"]
    full, _, _ = run(registry, tmp_path / "full", *settings)
    with pytest.raises(TrainingInterrupted):
        run(registry, tmp_path / "split", *settings, trainer_class=StopAt)
    assert load_state(tmp_path / "split" / "checkpoint.pt")["step"] == 3
    resumed, _, _ = run(registry, tmp_path / "split", *settings, resume=True)
    strip = [{k: v for k, v in r.items() if k != "items_per_s"} for r in full]
    assert [{k: v for k, v in r.items() if k != "items_per_s"} for r in resumed] == strip


def test_a_dataset_without_a_test_split_is_a_user_error(registry, tmp_path):
    with pytest.raises(UserError, match=r"train.validate_every needs the dataset's 'test' split: "
                                        r"toy_sequences: this corpus has no test split"):
        run(registry, tmp_path, "train.validate_every=2", "data.dataset.has_test_split=false")


class RecordsModes(Trainer):
    def setup(self):
        super().setup()
        self.calls = []  # (grad enabled, module in training mode) of every encoder call
        self.model.encoder.register_forward_hook(
            lambda m, i, o: self.calls.append((torch.is_grad_enabled(), m.training)))


def test_validation_runs_in_eval_mode_without_gradients(registry, tmp_path):
    _, _, trainer = run(registry, tmp_path, "train.validate_every=3", "train.validate_batches=2",
                        trainer_class=RecordsModes)
    assert trainer.calls.count((True, True)) == 6  # the training steps
    assert trainer.calls.count((False, False)) == 4  # two validations of two batches
    assert len(trainer.calls) == 10


def test_cli_reports_the_last_validation(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cpcframe", "run", str(TOY), "--out", str(tmp_path / "run"),
                           "--set", "train.steps=2", "--set", "train.validate_every=2",
                           "--set", "train.validate_batches=1"],
                          env=cli_env(), capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trained 2 steps" in proc.stdout and "validation loss" in proc.stdout
    assert "val_loss=" in proc.stderr  # the progress bar shows it too


def test_a_test_split_that_cannot_be_batched_fails_before_training(registry, tmp_path):
    # Batches of 5 groups of 4 items; the toy corpus has 4 groups (speakers).
    with pytest.raises(UserError, match="train.validate_every: the 'test' split cannot be batched: "
                                        "data: group_size=4 with a global batch of 20"):
        run(registry, tmp_path, "train.validate_every=100", "data.batch_size=20", "data.group_size=4")
    assert not (tmp_path / "metrics.jsonl").exists()
